"""Work on the next item while the caller works on this one: two cores busy where one waits on the store.

An import validates its next batch (Polars, email and phone checks) while the store writes this one; a decision
over the whole base makes its next range's rows ready for the driver while the store writes this range's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def one_ahead(work: Callable[[Item], Result], items: Sequence[Item]) -> Iterator[Result]:
    """``work(item)`` for each item in order, the next one's computed in a second thread while the caller uses this
    one's. At most two results are held at once; an error in ``work`` is raised where its result is taken."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="patron-ahead") as helper:
        upcoming: Future[Result] | None = helper.submit(work, items[0]) if items else None
        for index in range(len(items)):
            assert upcoming is not None
            ready = upcoming.result()
            upcoming = helper.submit(work, items[index + 1]) if index + 1 < len(items) else None
            yield ready
