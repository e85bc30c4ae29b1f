"""Import throughput: CDNOW ×N through Patron's validating importer, into SQLite and into PostgreSQL, first run and
re-run of the same file (which writes nothing), next to what a user might script instead: pandas ``read_csv`` +
``to_sql`` (no validation, no identity resolution, no idempotency) and, for scale, a bare Polars read of the file."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine

from bench.cdnow_data import replicate_cdnow
from bench.postgres import scratch_database
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


def _polars_read(source: Path) -> float:
    import polars as pl  # noqa: PLC0415

    started = time.perf_counter()
    frame = pl.read_csv(source, separator=" ", schema_overrides={"customer_id": pl.String, "date": pl.String})
    frame.with_columns(pl.col("date").str.strptime(pl.Date, "%Y%m%d"))
    return time.perf_counter() - started


def _twice(engine: Engine, source: Path, rows: int, work: Path) -> tuple[float, float]:
    """Seconds for the first import and for a re-run of the same file, checked to write everything, then nothing."""
    migrate(engine)
    seconds = []
    for expected in (rows, 0):
        started = time.perf_counter()
        result = import_file(engine, source, demo_mapping("cdnow"), rejects_dir=work)
        seconds.append(time.perf_counter() - started)
        assert result.written == expected, result.summary_line()
        assert result.rejected == 0, result.summary_line()
    return seconds[0], seconds[1]


def run(copies: int) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        source = work / f"cdnow_x{copies}.txt"
        rows = replicate_cdnow(copies, source)
        engine = make_engine(f"sqlite:///{work / 'patron.db'}")
        sqlite_first, sqlite_again = _twice(engine, source, rows, work)
        engine.dispose()
        with scratch_database() as postgres:
            postgres_first, postgres_again = _twice(postgres, source, rows, work)
        pandas_seconds = _pandas_import(source, work / "pandas.db")
        polars_seconds = _polars_read(source)
    size = f"x{copies} ({rows:,} lines)"
    pandas = "pandas read_csv+to_sql into SQLite (no validation)"
    polars = "Polars read_csv of the file (no store)"
    return [
        {"workload": "import CDNOW into SQLite (validated, idempotent)", "size": size, "patron_s": sqlite_first,
         "anchor": pandas, "anchor_s": pandas_seconds, "note": f"{rows / sqlite_first:,.0f} lines/s"},
        {"workload": "re-run of the same file into SQLite (writes nothing)", "size": size, "patron_s": sqlite_again,
         "anchor": polars, "anchor_s": polars_seconds, "note": f"{rows / sqlite_again:,.0f} lines/s"},
        {"workload": "import CDNOW into PostgreSQL (validated, idempotent)", "size": size, "patron_s": postgres_first,
         "anchor": pandas, "anchor_s": pandas_seconds, "note": f"{rows / postgres_first:,.0f} lines/s"},
        {"workload": "re-run of the same file into PostgreSQL (writes nothing)", "size": size,
         "patron_s": postgres_again, "anchor": polars, "anchor_s": polars_seconds,
         "note": f"{rows / postgres_again:,.0f} lines/s"},
    ]  # fmt: skip
