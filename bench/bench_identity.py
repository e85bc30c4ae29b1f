"""Identity resolution at scale: generated person records (bench/identity_data.py, a fifth of them duplicates).

Batch: Patron's ``link`` on the SQLite store (train the Fellegi-Sunter model with Splink, score the blocked pairs,
cluster, merge every cluster with its undo ledger and store the blocking keys), timed end to end from the stored
records, side by side with Splink run directly on the same records (the same comparisons and blocking rules,
Splink's own clustering; nothing written anywhere). Pairwise precision and recall against the known truth.
Real time: one new record matched against the whole stored file (``match_record``: blocking-key lookup, scoring),
p50 and p99 over 200 probes, on SQLite and on the local PostgreSQL server.
Size: PATRON_BENCH_COPIES_IDENTITY (default 10) × 100,000 records.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import select

from bench.identity_data import write_people
from bench.postgres import scratch_database
from patron.cif import schema as s
from patron.cif.identity import model as fs
from patron.cif.identity.evaluate import pairwise_quality
from patron.cif.identity.realtime import match_record
from patron.cif.identity.records import normalised, record_frame
from patron.cif.identity.resolve import Thresholds, link, train_model
from patron.cif.importer import import_file
from patron.cif.store import make_engine, migrate
from patron.demo import demo_mapping

FEBRL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "febrl"
PROBES = 200
THRESHOLDS = Thresholds(0.95, 0.5)


def _stored_quality(engine: Any, truth: dict[str, str]) -> Any:
    identities = s.table_of(s.Identity)
    with engine.connect() as conn:
        rows = conn.execute(select(identities.c.value, identities.c.customer_id).where(identities.c.kind == "external"))
        found = {row.value: row.customer_id for row in rows}
    return pairwise_quality(found, truth)


def _file_records(path: Path) -> tuple[pl.DataFrame, list[str]]:
    """The generated file as person records (normalised as the store's), and each record's id."""
    raw = pl.read_csv(path, infer_schema=False)
    born = pl.col("date_of_birth")
    frame = raw.select(
        pl.int_range(raw.height, dtype=pl.Int64).alias("customer_id"), pl.col("given_name").alias("first_name"),
        pl.col("surname").alias("last_name"),
        pl.concat_str([born.str.slice(0, 4), born.str.slice(4, 2), born.str.slice(6, 2)], separator="-")
        .alias("birth_date"),
        pl.lit(None, pl.Utf8).alias("email"), pl.lit(None, pl.Utf8).alias("phone"),
        pl.col("address_1").alias("street"), pl.col("postcode").alias("postal_code"), pl.col("suburb").alias("city"),
    )  # fmt: skip
    return normalised(frame), raw["rec_id"].to_list()


def _splink_directly(path: Path, truth: dict[str, str]) -> tuple[float, Any]:
    """The same model run with Splink alone: train, predict, cluster (its connected components)."""
    records, ids = _file_records(path)
    frame = record_frame(records)
    started = time.perf_counter()
    model = fs.train(frame)
    linker = fs._linker(frame, {**model, **{k: v for k, v in fs._settings().items() if k != "comparisons"}})
    pairs = linker.inference.predict(threshold_match_probability=THRESHOLDS.review)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, THRESHOLDS.match)
    found = clusters.as_pyarrow_table().select(["customer_id", "cluster_id"]).to_pydict()
    seconds = time.perf_counter() - started
    cluster_of = {ids[int(c)]: k for c, k in zip(found["customer_id"], found["cluster_id"], strict=True)}
    return seconds, pairwise_quality(cluster_of, truth)


def _probes(path: Path) -> list[dict[str, Any]]:
    """Half corrupted copies of stored people, half people nobody stored."""
    records, _ = _file_records(path)
    rng = np.random.default_rng(11)
    probes = []
    for n in rng.integers(0, records.height, size=PROBES // 2):
        twin = records.row(int(n), named=True)
        if twin.get("last_name"):
            twin["last_name"] = twin["last_name"][:-1]
        probes.append(twin)
    probes += [{"first_name": f"zed{k}", "last_name": f"nobody{k}", "birth_date": "2001-01-01"}
               for k in range(PROBES // 2)]  # fmt: skip
    return probes


def _match_times(engine: Any, probes: list[dict[str, Any]]) -> tuple[float, float]:
    timings = []
    with engine.connect() as conn:
        match_record(conn, probes[0])  # the model's weights read once
        for probe in probes:
            started = time.perf_counter()
            match_record(conn, probe)
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), float(np.percentile(timings, 99))


def run(copies: int) -> list[dict[str, object]]:
    size = copies * 100_000
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        source = work / "people.csv"
        truth = write_people(source, size, FEBRL)
        engine = make_engine(f"sqlite:///{work / 'patron.db'}")
        migrate(engine)
        started = time.perf_counter()
        import_file(engine, source, demo_mapping("febrl"), rejects_dir=work)
        import_seconds = time.perf_counter() - started
        started = time.perf_counter()
        result = link(engine, thresholds=THRESHOLDS, actor="bench")
        link_seconds = time.perf_counter() - started
        ours = _stored_quality(engine, truth)
        splink_seconds, theirs = _splink_directly(source, truth)
        rows.append({
            "workload": "identity: de-duplicate person records (train, score, cluster, merge into the store)",
            "size": f"{size:,} records", "patron_s": link_seconds, "anchor": "Splink alone (no store)",
            "anchor_s": splink_seconds,
            "note": f"Patron P {ours.precision:.3f} R {ours.recall:.3f}, {result.merged:,} merged, "
                    f"{result.reviews:,} to review; Splink P {theirs.precision:.3f} R {theirs.recall:.3f}; "
                    f"import {import_seconds:.0f} s",
        })  # fmt: skip
        probes = _probes(source)
        p50, p99 = _match_times(engine, probes)
        rows.append({"workload": "identity: match one arriving record (SQLite)", "size": f"{size:,} stored",
                     "patron_s": p99 / 1000, "anchor": "", "anchor_s": None,
                     "note": f"p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(probes)} probes"})  # fmt: skip
        engine.dispose()
        rows.append(_postgres(work / "patron.db", probes, size))
    return rows


def _postgres(store: Path, probes: list[dict[str, Any]], size: int) -> dict[str, object]:
    """The same stored file on PostgreSQL: its customers, profiles and identities copied over from the SQLite store
    (the validated import into PostgreSQL is slower and is measured by the import benchmark), then a model trained
    there (its keys written with COPY) and the probes matched."""
    with scratch_database() as engine:
        migrate(engine)
        copy_tables(store, engine, ("customers", "customer_profiles", "identities"))
        train_model(engine, THRESHOLDS)
        p50, p99 = _match_times(engine, probes)
    return {"workload": "identity: match one arriving record (PostgreSQL)", "size": f"{size:,} stored",
            "patron_s": p99 / 1000, "anchor": "", "anchor_s": None,
            "note": f"p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(probes)} probes"}  # fmt: skip


def copy_tables(store: Path, engine: Any, tables: tuple[str, ...]) -> None:
    """Rows of a SQLite store into the same tables on PostgreSQL with COPY, ids kept and sequences moved on."""
    source = sqlite3.connect(store)
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()
        for table in tables:
            columns = [row[1] for row in source.execute(f'PRAGMA table_info("{table}")')]
            names = ", ".join(f'"{c}"' for c in columns)
            with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for row in source.execute(f'SELECT {names} FROM "{table}"'):
                    copy.write_row(row)
            if "id" in columns:
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM \"{table}\""
                )
    source.close()
