"""Analyses kept warm: a server process recomputes the analyses its pages open most as soon as the data under
them changes, so the first person to open a page after an import or a score run does not wait for it.

The results live where every page reads them (``cif/stamp.py``, keyed by the data stamp); this module only asks
for them in the background. A page asked for while its analysis is being computed waits for that one computation.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable

from sqlalchemy import Engine

from patron.cif.facts import scope_choices
from patron.cif.stamp import data_stamp
from patron.errors import PatronError
from patron.segments.frame_cache import current_features
from patron.strategy.plans import STORED as STORED_ANALYSES
from patron.strategy.plans import budget_plan, network_summary, portfolio_plan, price_sensitivity
from patron.value.base import customer_base

log = logging.getLogger("patron")


def _shown_source(engine: Engine) -> str | None:
    """The order source a page shows before anyone picks one (the largest)."""
    _, scope = scope_choices(engine, None)
    return None if scope is None else scope.source


# The pages' default views: the dashboard and the value lists (customer base), the segment builder (feature
# frame), and the strategy pages.
WARMED: dict[str, Callable[[Engine], object]] = {
    "customer base": lambda engine: customer_base(engine, source=_shown_source(engine)),
    "feature frame": current_features,
    "budget": lambda engine: budget_plan(engine, source=_shown_source(engine)),
    "portfolio": lambda engine: portfolio_plan(engine, source=_shown_source(engine)),
    "price_sensitivity": price_sensitivity,
    "network": network_summary,
}


# The ones also stored in the store (strategy/plans.STORED says which): the jobs compute them after a score run.
STORED = tuple(name for name in WARMED if name in STORED_ANALYSES)


def warm(engine: Engine, names: Iterable[str] | None = None) -> dict[str, float]:
    """Compute (or find current) every warmed analysis, or those ``names``; seconds each took. A refusal (no
    scores yet) is kept too."""
    took = {}
    for name, analysis in WARMED.items() if names is None else ((name, WARMED[name]) for name in names):
        started = time.perf_counter()
        with contextlib.suppress(PatronError):  # kept as the page's answer: "run `patron value score` first"
            analysis(engine)
        took[name] = time.perf_counter() - started
    return took


class Warmer:
    """A daemon thread that looks at the data stamp every ``every`` seconds and warms the analyses when it moved."""

    def __init__(self, engine: Engine, *, every: float) -> None:
        self._engine, self._every = engine, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="patron-warmer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        seen: tuple[object, ...] | None = None
        while not self._stop.is_set():
            try:
                stamp = data_stamp(self._engine)
                if stamp != seen:
                    took = warm(self._engine)
                    seen = stamp
                    log.info("analyses warmed in %.1f s", sum(took.values()))
            except Exception:  # a store that went away for a moment: try again at the next look
                log.exception("warming the analyses failed")
            self._stop.wait(self._every)
