"""Work a page starts and follows: a thread of the server process per named piece of work, its state kept here
(running, done with what it says, or failed with why) until the same work is started again.

For work that takes seconds to a minute on one machine (a score run from the dashboard); a worker queue
(``jobs/queue.py``) runs the scheduled jobs. A second start while the work runs starts nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import Engine

from patron.cif.columns import utcnow
from patron.errors import PatronError

log = logging.getLogger("patron")


@dataclass(frozen=True)
class Work:
    name: str
    status: str  # running, done, failed
    started_at: dt.datetime
    message: str = ""  # what the done work says, or why it failed


_works: dict[str, Work] = {}


def work_on(engine: Engine, what: str) -> str:
    """The name of a piece of work on one store: the same work on another store is another piece of work."""
    return f"{what} on {engine.url.render_as_string(hide_password=True)}"


_guard = threading.Lock()


def start(name: str, work: Callable[[], str]) -> bool:
    """Run ``work`` (which returns what to tell the person) in a thread; False when ``name`` is already running."""
    with _guard:
        found = _works.get(name)
        if found is not None and found.status == "running":
            return False
        _works[name] = Work(name, "running", utcnow())

    def run() -> None:
        try:
            outcome = replace(_works[name], status="done", message=work())
        except PatronError as error:
            outcome = replace(_works[name], status="failed", message=error.message)
        except Exception as error:  # shown to the person who started it; the log has the traceback
            log.exception("background work %s failed", name)
            outcome = replace(_works[name], status="failed", message=f"it stopped: {error}")
        with _guard:
            _works[name] = outcome

    threading.Thread(target=run, name=f"work-{name}", daemon=True).start()
    return True


def state(name: str) -> Work | None:
    """The work's last state in this process (None: never started here)."""
    with _guard:
        return _works.get(name)
