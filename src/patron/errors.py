"""Domain errors with machine-readable codes; each interface (CLI, API, pages) translates them at its edge."""

from __future__ import annotations


class PatronError(Exception):
    """Base of every error Patron reports to a user: a code to test against, a message to read."""

    code = "patron_error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def as_dict(self) -> dict[str, str | None]:
        return {"detail": self.message, "code": self.code, "field": self.field}


class NotFoundError(PatronError):
    code = "not_found"


class ConflictError(PatronError):
    code = "conflict"


class MappingError(PatronError):
    """The mapping file or the source file's shape is wrong; raised before anything is written."""

    code = "invalid_mapping"


class SourceFileError(PatronError):
    """The source file cannot be read at all (missing, empty, no header)."""

    code = "invalid_source"


class InvalidInputError(PatronError):
    """Input that cannot be analysed as given (no purchases, a bad date range, a bad parameter)."""

    code = "invalid_input"


class FitError(PatronError):
    """A statistical model could not be fitted: the optimiser did not converge or the data cannot identify it.

    ``kind`` says which: ``"edge"`` (``field`` ran to the edge of the parameter space), ``"flat"`` (the likelihood
    is flat in ``field``), or ``"failed"`` (anything else). A model with a nested limit at that edge (BG/NBD and
    Pareto/NBD without drop-out are the NBD) can forecast with the limit instead; see ``value/fits.py``.
    """

    code = "fit_failed"

    def __init__(
        self, message: str, *, field: str | None = None, kind: str = "failed", estimates: dict[str, float] | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.kind = kind
        self.estimates = estimates or {}  # where the optimiser stopped, for "edge" and "flat"
