"""Results kept in memory while the data under them is unchanged: what pages and live counts read again and again.

Building a feature frame, a customer base or a strategy analysis reads every customer's facts (a second or more
on a base of a hundred thousand); people ask for the same one many times between two changes of the data. Each
process keeps the last result per key and reuses it while the store's **data stamp** is unchanged: one read of the
newest id of every table whose rows change what those results hold (imports, through which every change of a
customer's record goes, the API's included; orders; interactions; campaigns; score runs; merges; erasures;
customer links) and the number of campaign responses (keyed by campaign and person, no id). A change that adds no
such row (a merge split) shows within ``MAX_AGE_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as StillRunning
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, column, func, select, table

from patron.cif import schema as s
from patron.cif import stored_results
from patron.cif.columns import table_of
from patron.cif.identity.schema import IdentityMerge
from patron.errors import PatronError

T = TypeVar("T")
MAX_AGE_SECONDS = 600.0
# Tables of the layers above (value, privacy) are named here, not imported.
_STAMPED = (
    table_of(s.Customer), table_of(s.ImportRun), table_of(s.Order), table_of(s.Interaction), table_of(s.Campaign),
    table("score_runs", column("id")), table_of(IdentityMerge), table("erasures", column("id")),
    table("customer_links", column("id")),
)  # fmt: skip
_STAMP = select(
    *(select(func.max(stamped.c.id)).scalar_subquery() for stamped in _STAMPED),
    select(func.count()).select_from(table_of(s.CampaignResponse)).scalar_subquery(),
)


@dataclass(frozen=True)
class _Kept:
    stamp: tuple[object, ...]
    built_at: float
    value: Any


_kept: dict[tuple[str, Hashable], _Kept] = {}
_locks: dict[tuple[str, Hashable], threading.Lock] = {}
_guard = threading.Lock()
# A page's patience: how long it waits for an analysis that must be computed before it says it is computing
# (None: wait for it, as the CLI, the API and the warmer do).
_patience: ContextVar[float | None] = ContextVar("patience", default=None)
_computing: dict[tuple[str, Hashable], Future[_Kept]] = {}
_computer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="patron-analysis")


class StillComputing(Exception):
    """An analysis a page needs is being computed for the data as it is now; the page says so and looks again."""

    def __init__(self, key: Hashable) -> None:
        name = key[0] if isinstance(key, tuple) else key
        self.what = str(name).replace("_", " ")
        super().__init__(f"the {self.what} is being computed")


@contextmanager
def waiting_at_most(seconds: float) -> Iterator[None]:
    """Inside: an analysis that must be computed first is computed in the background, and after ``seconds``
    without its result ``kept`` raises ``StillComputing`` instead of making the caller wait."""
    token = _patience.set(seconds)
    try:
        yield
    finally:
        _patience.reset(token)


def data_stamp(engine: Engine) -> tuple[object, ...]:
    """The newest id of each table that changes the kept results: equal stamps, the same results."""
    with engine.connect() as conn:
        return tuple(conn.execute(_STAMP).one())


def kept(engine: Engine, key: Hashable, compute: Callable[[], T], *, stored: bool = False) -> T:
    """``compute()``'s result for ``key`` on this store, computed again only when the data stamp has moved.

    One computation per key at a time: a second request for the same key waits for the first one's result. A
    refusal (``PatronError``: too few segments, no scores yet) is kept like a result: the same data, the same answer.
    Inside ``waiting_at_most`` a computation runs in the background and the caller waits only that long.
    ``stored``: the result is also stored in the store for this stamp (``cif/stored_results.py``), and a process
    that has not computed it reads it from there first.
    """
    slot = (engine.url.render_as_string(hide_password=False), key)
    stamp = data_stamp(engine)
    if stored:
        compute = _through_the_store(engine, key, stamp, compute)
    patience = _patience.get()
    if patience is not None and not _is_fresh(_kept.get(slot), stamp):
        with _guard:
            running = _computing.get(slot)
            if running is None or running.done():
                running = _computer.submit(_computed, slot, stamp, compute)
                _computing[slot] = running
        try:
            found = running.result(timeout=patience)
        except StillRunning:
            raise StillComputing(key) from None
    else:
        found = _computed(slot, stamp, compute)
    if isinstance(found.value, PatronError):
        raise found.value
    value: T = found.value
    return value


def _through_the_store(
    engine: Engine, key: Hashable, stamp: tuple[object, ...], compute: Callable[[], T]
) -> Callable[[], T]:
    def read_or_compute() -> T:
        found, value = stored_results.load(engine, key, stamp)
        if found:
            result: T = value
            return result
        result = compute()  # a refusal raises past the store: kept in memory, never stored
        stored_results.save(engine, key, stamp, result)
        return result

    return read_or_compute


def _is_fresh(found: _Kept | None, stamp: tuple[object, ...]) -> bool:
    return found is not None and found.stamp == stamp and time.monotonic() - found.built_at <= MAX_AGE_SECONDS


def _computed(slot: tuple[str, Hashable], stamp: tuple[object, ...], compute: Callable[[], object]) -> _Kept:
    with _guard:
        lock = _locks.setdefault(slot, threading.Lock())
    with lock:
        found = _kept.get(slot)
        if not _is_fresh(found, stamp):
            try:
                outcome: Any = compute()
            except PatronError as refusal:
                outcome = refusal
            found = _Kept(stamp, time.monotonic(), outcome)
            _kept[slot] = found
    assert found is not None
    return found


def is_current(engine: Engine, key: Hashable) -> bool:
    """Whether a result for ``key`` is kept for the data as it is now (asking for it would not compute)."""
    found = _kept.get((engine.url.render_as_string(hide_password=False), key))
    return found is not None and found.stamp == data_stamp(engine)


def forget_kept() -> None:
    """Drop every kept result (tests, whose stores start their ids again at 1, and a restore)."""
    with _guard:
        _kept.clear()
        _computing.clear()
