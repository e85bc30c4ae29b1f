"""Every table Patron keeps, gathered on one metadata for migrations and whole-store checks."""

from __future__ import annotations

from patron.auth import schema as auth
from patron.cif import schema as cif
from patron.cif.identity import schema as identity
from patron.cif.schema import Base
from patron.engage import schema as engage
from patron.predict import schema as predict
from patron.privacy import schema as privacy
from patron.segments import schema as segments
from patron.service import schema as service
from patron.strategy import schema as strategy
from patron.value import schema as value

__all__ = [
    "Base",
    "auth",
    "cif",
    "engage",
    "identity",
    "predict",
    "privacy",
    "segments",
    "service",
    "strategy",
    "value",
]
