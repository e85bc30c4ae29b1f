"""Import throughput: CDNOW ×N through Patron's validating importer into SQLite, next to the plain pandas route
(``read_csv`` + ``to_sql``: no validation, no identity resolution, no idempotency) a user might script instead."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

from bench.cdnow_data import replicate_cdnow
from patron.cif.importer import import_file
from patron.cif.store import make_engine, migrate
from patron.demo import demo_mapping


def _pandas_import(source: Path, database: Path) -> float:
    import pandas as pd  # noqa: PLC0415  (benchmark-only dependency)

    started = time.perf_counter()
    frame = pd.read_csv(source, sep=r"\s+", dtype={"customer_id": str, "date": str})
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    with sqlite3.connect(database) as conn:
        frame[["customer_id"]].drop_duplicates().to_sql("customers", conn, index=False, chunksize=20_000)
        frame.to_sql("orders", conn, index=False, chunksize=20_000)
    return time.perf_counter() - started


def run(copies: int) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        source = work / f"cdnow_x{copies}.txt"
        rows = replicate_cdnow(copies, source)
        engine = make_engine(f"sqlite:///{work / 'patron.db'}")
        migrate(engine)
        started = time.perf_counter()
        result = import_file(engine, source, demo_mapping("cdnow"), rejects_dir=work)
        patron_seconds = time.perf_counter() - started
        engine.dispose()
        assert result.written == rows, result.summary_line()
        pandas_seconds = _pandas_import(source, work / "pandas.db")
    return [
        {
            "workload": "import CDNOW into SQLite (validated, idempotent)",
            "size": f"x{copies} ({rows:,} lines)",
            "patron_s": patron_seconds,
            "anchor": "pandas read_csv+to_sql (no validation)",
            "anchor_s": pandas_seconds,
            "note": f"{rows / patron_seconds:,.0f} rows/s",
        }
    ]
