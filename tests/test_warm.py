"""The analyses kept warm: a server process recomputes them in the background when the data changes."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Engine

from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cif.stamp import data_stamp, is_current
from patron.jobs.warm import WARMED, Warmer, warm
from tests.conftest import WriteFile

ORDERS = {
    "source": {"system": "shop", "currency": "USD", "date_format": "%Y-%m-%d"},
    "orders": {"customer": "customer", "order_id": "order", "ordered_at": "date", "revenue": "amount"},
}


def _until(condition: Callable[[], bool], seconds: float = 60.0) -> bool:
    """Poll ``condition`` (a callable) until it holds or ``seconds`` pass: the warmer runs in its own thread."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_an_empty_store_warms_to_its_refusals(engine: Engine) -> None:
    assert set(warm(engine)) == set(WARMED)  # every analysis asked for; "no orders yet" is an answer, not an error


def test_the_warmer_recomputes_when_the_data_changes(engine: Engine, write_file: WriteFile) -> None:
    header = "customer,order,date,amount\n"
    import_file(engine, write_file("a.csv", header + "ann,o1,2024-01-05,40\nbob,o2,2024-02-05,90\n"),
                parse_mapping(ORDERS), rejects_dir=write_file("x", "").parent)  # fmt: skip
    warmer = Warmer(engine, every=0.05)
    warmer.start()
    try:
        assert _until(lambda: is_current(engine, "features"))
        before = data_stamp(engine)
        import_file(engine, write_file("b.csv", header + "cid,o3,2024-03-05,70\n"), parse_mapping(ORDERS),
                    rejects_dir=write_file("y", "").parent)  # fmt: skip
        assert data_stamp(engine) != before
        assert _until(lambda: is_current(engine, "features"))  # kept again, for the new data, without being asked
    finally:
        warmer.stop()
