"""The read trail: every read of a customer's personal data becomes an audit event, written in batches.

A profile lookup is a read, but writing its audit row in its own transaction made it a write as well: on SQLite
the server processes then queue for the one write lock, and that queue was most of the lookup's p99
(bench/bench_api.py: 10-13 ms without it, 18-30 ms with it, at 500 lookups/s). So reads are stamped with their
time when they happen and a background thread per process and store writes them together, at most
``FLUSH_SECONDS`` later. Changes (erasure, export, retention) are still audited synchronously, in their own
transaction. What this costs: a process killed with SIGKILL loses at most that interval's read events; a clean
stop (the server's shutdown, the interpreter's exit) writes them first.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from typing import Any

from sqlalchemy import Engine

from patron.cif.ledger import audit_row, audited

FLUSH_SECONDS = 0.05
IDLE_ROUNDS = 100  # the thread ends after this many empty rounds (5 s) and starts again with the next read
_log = logging.getLogger(__name__)


class ReadTrail:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = False

    def record(self, actor: str, interface: str, customer_id: int | None, action: str = "read_pii") -> None:
        event = audit_row(actor=actor, interface=interface, action=action, entity="customer", entity_id=customer_id)
        with self._lock:
            self._pending.append(event)
            self._closing = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="patron-read-trail", daemon=True)
                self._thread.start()

    def flush(self) -> int:
        """Write what is pending now; returns the events written."""
        batch = self._take()
        self._write(batch)
        return len(batch)

    def close(self) -> None:
        """Write what is pending and stop the thread, so nothing reaches for the store after it is disposed."""
        with self._lock:
            self._closing = True
            thread = self._thread
        self.flush()
        if thread is not None:
            thread.join(timeout=5)

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:
            batch, self._pending = self._pending, []
        return batch

    def _write(self, batch: list[dict[str, Any]]) -> None:
        if batch:
            with self._engine.begin() as conn:
                audited(conn, batch)

    def _run(self) -> None:
        idle = 0
        while idle < IDLE_ROUNDS:
            time.sleep(FLUSH_SECONDS)
            if self._closing:
                return
            batch = self._take()
            try:
                self._write(batch)
            except Exception:  # the store went away (a test's file, a closed pool): say so, do not kill the server
                _log.exception("could not write %d read events to the audit log", len(batch))
                return
            idle = 0 if batch else idle + 1


_TRAILS: weakref.WeakKeyDictionary[Engine, ReadTrail] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def trail_for(engine: Engine) -> ReadTrail:
    with _REGISTRY_LOCK:
        trail = _TRAILS.get(engine)
        if trail is None:
            trail = _TRAILS[engine] = ReadTrail(engine)
        return trail


def close_reads(engine: Engine) -> None:
    """Before a store is disposed (a test's, a job's): its pending reads written, its trail's thread stopped."""
    trail_for(engine).close()


def flush_reads(engine: Engine | None = None) -> int:
    """Write pending read events now (of one store, or of all): before exporting the log, on shutdown."""
    trails = [trail_for(engine)] if engine is not None else list(_TRAILS.values())
    return sum(trail.flush() for trail in trails)


atexit.register(flush_reads)
