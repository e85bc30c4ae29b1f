"""Import throughput: CDNOW ×N through Patron's validating importer, into SQLite and into PostgreSQL, first run,
bulk load into PostgreSQL (``--bulk``; on SQLite it is the batched import) and re-run of the same file (which
writes nothing), next to what a user might script instead: pandas ``read_csv`` + ``to_sql`` (no validation, no
identity resolution, no idempotency), a bare Polars read of the file, and the store's own floor: the rows Patron
wrote, written again by the bare driver with nothing else."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect

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


def _twice(engine: Engine, source: Path, rows: int, work: Path, *, bulk: bool = False) -> tuple[float, float]:
    """Seconds for the first import and for a re-run of the same file, checked to write everything, then nothing."""
    migrate(engine)
    seconds = []
    for expected in (rows, 0):
        started = time.perf_counter()
        result = import_file(engine, source, demo_mapping("cdnow"), rejects_dir=work, bulk=bulk)
        seconds.append(time.perf_counter() - started)
        assert result.written == expected, result.summary_line()
        assert result.rejected == 0, result.summary_line()
    return seconds[0], seconds[1]


# What a CDNOW import writes: its one category, one customer and one identity per customer, one order and one order
# line per line.
WRITTEN_TABLES = ("categories", "customers", "identities", "orders", "order_lines")
FLOOR_BATCH = 50_000  # rows per transaction, as the importer's batches


def _floor(written: Engine, fresh: Engine) -> float:
    """Seconds the bare driver takes to write the rows Patron wrote into a fresh store of the same schema (SQLite's
    ``executemany``, PostgreSQL's ``COPY``), 50,000 rows a transaction: what the store itself costs for them, with
    nothing read, validated or looked up. The columns are those Patron binds: the ones holding a value in some row
    (an empty one is left to the table's NULL), ids given on PostgreSQL (taken from the sequence first) and left to
    SQLite. The rows are read out first and not timed."""
    migrate(fresh)
    seconds = 0.0
    raw_written, raw_fresh = written.raw_connection(), fresh.raw_connection()
    postgres = written.dialect.name == "postgresql"
    try:
        source: Any = raw_written.driver_connection
        target: Any = raw_fresh.driver_connection
        for table in WRITTEN_TABLES:
            names = [column["name"] for column in inspect(written).get_columns(table)]
            counts = source.execute(f"SELECT {', '.join(f'count({name})' for name in names)} FROM {table}").fetchone()
            bound = [name for name, count in zip(names, counts, strict=True) if count and (postgres or name != "id")]
            listed = ", ".join(bound)
            if postgres:
                seconds += _copy_again(source, target, table, listed)
                continue
            rows = source.execute(f"SELECT {listed} FROM {table}").fetchall()
            marks = ", ".join("?" for _ in bound)
            started = time.perf_counter()
            for at in range(0, len(rows), FLOOR_BATCH):
                target.executemany(f"INSERT INTO {table} ({listed}) VALUES ({marks})", rows[at : at + FLOOR_BATCH])
                target.commit()
            seconds += time.perf_counter() - started
    finally:
        raw_written.close()
        raw_fresh.close()
    return seconds


def _copy_again(source: Any, target: Any, table: str, listed: str) -> float:
    with source.cursor() as cursor, cursor.copy(f"COPY (SELECT {listed} FROM {table}) TO STDOUT (FORMAT csv)") as copy:
        lines = b"".join(bytes(block) for block in copy).splitlines(keepends=True)
    source.commit()
    started = time.perf_counter()
    for at in range(0, len(lines), FLOOR_BATCH):
        with target.cursor() as cursor, cursor.copy(f"COPY {table} ({listed}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(b"".join(lines[at : at + FLOOR_BATCH]))
        target.commit()
    return time.perf_counter() - started


def run(copies: int) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        source = work / f"cdnow_x{copies}.txt"
        rows = replicate_cdnow(copies, source)
        engine = make_engine(f"sqlite:///{work / 'patron.db'}")
        sqlite_first, sqlite_again = _twice(engine, source, rows, work)
        sqlite_floor = _floor(engine, make_engine(f"sqlite:///{work / 'floor.db'}"))
        engine.dispose()
        with scratch_database() as postgres, scratch_database() as floor:
            postgres_first, postgres_again = _twice(postgres, source, rows, work)
            postgres_floor = _floor(postgres, floor)
        with scratch_database() as postgres:
            postgres_bulk, _ = _twice(postgres, source, rows, work, bulk=True)
        pandas_seconds = _pandas_import(source, work / "pandas.db")
        polars_seconds = _polars_read(source)
    size = f"x{copies} ({rows:,} lines)"
    pandas = "pandas read_csv+to_sql into SQLite (no validation)"
    polars = "Polars read_csv of the file (no store)"
    bare = "the same rows by the bare driver alone (executemany / COPY)"

    def row(workload: str, seconds: float, anchor: str, anchor_seconds: float) -> dict[str, object]:
        return {"workload": workload, "size": size, "patron_s": seconds, "anchor": anchor,
                "anchor_s": anchor_seconds, "note": f"{rows / seconds:,.0f} lines/s"}  # fmt: skip

    return [
        row("import CDNOW into SQLite (validated, idempotent)", sqlite_first, pandas, pandas_seconds),
        row("the same import, against SQLite's own floor", sqlite_first, bare, sqlite_floor),
        row("re-run of the same file into SQLite (writes nothing)", sqlite_again, polars, polars_seconds),
        row("import CDNOW into PostgreSQL (validated, idempotent)", postgres_first, pandas, pandas_seconds),
        row("the same import, against PostgreSQL's own floor", postgres_first, bare, postgres_floor),
        row("bulk load into PostgreSQL (--bulk: references checked at the end)", postgres_bulk, bare, postgres_floor),
        row("re-run of the same file into PostgreSQL (writes nothing)", postgres_again, polars, polars_seconds),
    ]
