"""Nothing lost under faults: an import killed with SIGKILL and re-run, and eight processes writing the same
events at once (with re-sends) into SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from patron.cif import schema as s
from patron.cif.backup import backup_store, restore_store
from patron.cif.events import EventIn, ingest_events
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cif.store import make_engine, migrate
from patron.errors import SourceFileError
from tests.conftest import SHARED_DATA, WriteFile

pytestmark = pytest.mark.slow
COPIES = 5  # CDNOW ×5: 348,295 lines, 117,850 customers
CDNOW_LINES, CDNOW_CUSTOMERS = 69_659, 23_570


def _replicated_cdnow(path: Path) -> None:
    lines = (SHARED_DATA / "cdnow" / "CDNOW_master.txt").read_text().splitlines()
    with path.open("w") as out:
        out.write("customer_id date number_of_cds dollar_value\n")
        for copy in range(COPIES):
            out.writelines(
                f"{copy:02d}{line.split()[0]} {' '.join(line.split()[1:])}\n" for line in lines if line.strip()
            )


def _count(engine: Engine, model: type[s.Base]) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(model)) or 0)


def test_an_import_killed_at_random_points_ends_complete_and_without_duplicates(tmp_path: Path) -> None:
    source = tmp_path / "cdnow_copies.txt"
    _replicated_cdnow(source)
    url = f"sqlite:///{tmp_path / 'patron.db'}"
    env = {**os.environ, "PATRON_DATABASE_URL": url, "PATRON_DATA_DIR": str(tmp_path / "data")}
    mapping = Path(__file__).resolve().parent.parent / "src" / "patron" / "demo" / "mappings" / "cdnow.toml"
    patron = Path(sys.executable).parent / "patron"
    command = [str(patron), "import", str(source), "--mapping", str(mapping)]
    rng = random.Random(20261123)
    engine = make_engine(url)
    migrate(engine)  # as the import command would: the progress is read from the orders table
    expected = CDNOW_LINES * COPIES
    for kill in range(3):
        # Kill k comes once the orders reach a random point in 5-15 % + k × 20 % of the file, after a random 0-1 s
        # more (so it lands anywhere in a batch of 50,000 lines, or as the process starts when the point was passed
        # already): the last kill comes before 60 % of the file plus 1 s, so work is left to do on any machine that
        # imports fewer than 139,000 lines a second (the assertion below says so if one ever does).
        target = int(rng.uniform(0.05, 0.15) * expected + kill * 0.2 * expected)
        linger = rng.uniform(0.0, 1.0)
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while _count(engine, s.Order) < target:
            assert process.poll() is None, "the import ended before it was killed"
            time.sleep(0.1)
        time.sleep(linger)
        process.send_signal(signal.SIGKILL)
        process.wait()
        with engine.connect() as conn:  # after every kill: a consistent store
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
        assert _count(engine, s.Order) < expected
    finished = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert _count(engine, s.Order) == CDNOW_LINES * COPIES
    assert _count(engine, s.Customer) == CDNOW_CUSTOMERS * COPIES
    with engine.connect() as conn:
        twice = conn.execute(
            select(s.Order.source, s.Order.order_key)
            .group_by(s.Order.source, s.Order.order_key)
            .having(func.count() > 1)
        ).all()
        assert twice == []
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    engine.dispose()


EVENTS_PER_PROCESS = 10_000
PROCESSES = 8
RESENT = 0.1


def _send(url: str, worker: int) -> tuple[int, int]:
    """One writer: its own events in batches of 500, each followed by a tenth of the next writer's (racing it)."""
    engine = make_engine(url)
    moment = dt.datetime(2026, 1, 1, 12)
    created = duplicates = 0

    def batch(owner: int, numbers: range) -> list[EventIn]:
        return [
            EventIn(customer="crm:1", idempotency_key=f"w{owner}-{n}", source="load", occurred_at=moment,
                    channel="web", type="visit")
            for n in numbers
        ]  # fmt: skip

    neighbour = (worker + 1) % PROCESSES
    again = int(500 * RESENT)
    for start in range(0, EVENTS_PER_PROCESS, 500):
        for events in (batch(worker, range(start, start + 500)), batch(neighbour, range(start, start + again))):
            result = ingest_events(engine, events)
            created += result.created
            duplicates += result.duplicates
    engine.dispose()
    return created, duplicates


@pytest.mark.xdist_group("concurrency")
def test_eight_writers_with_resends_store_every_event_exactly_once(engine: Engine, write_file: WriteFile) -> None:
    people = write_file("people.csv", "id,name\n1,Only Customer\n")
    mapping = {"source": {"system": "crm", "format": "csv"}, "customers": {"external_id": "id", "display_name": "name"}}
    import_file(engine, people, parse_mapping(mapping))
    url = engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = pool.starmap(_send, [(url, worker) for worker in range(PROCESSES)])
    with engine.connect() as conn:
        stored = conn.scalar(select(func.count()).select_from(s.Interaction).where(s.Interaction.source == "load"))
        distinct = conn.scalar(
            select(func.count(func.distinct(s.Interaction.idempotency_key))).where(s.Interaction.source == "load")
        )
    assert stored == distinct == PROCESSES * EVENTS_PER_PROCESS
    assert sum(created for created, _ in results) == PROCESSES * EVENTS_PER_PROCESS
    sent = PROCESSES * EVENTS_PER_PROCESS * (1 + RESENT)
    assert sum(c + d for c, d in results) == sent


def test_a_backup_taken_while_another_process_writes_restores_a_sound_store(
    tmp_path: Path, write_file: WriteFile
) -> None:
    url = f"sqlite:///{tmp_path / 'patron.db'}"
    engine = make_engine(url)
    migrate(engine)
    people = write_file("people.csv", "id,name\n" + "".join(f"{n},Person {n}\n" for n in range(1, 2001)))
    mapping = {"source": {"system": "crm", "format": "csv"}, "customers": {"external_id": "id", "display_name": "name"}}
    import_file(engine, people, parse_mapping(mapping))
    context = multiprocessing.get_context("spawn")
    writer = context.Process(target=_send, args=(url, 0))  # keeps writing events during the backup
    writer.start()
    time.sleep(1.0)
    backup = backup_store(engine, tmp_path / "backups" / "patron.bak")
    writer.join()
    # Writer 0 sends its own 10,000 and a tenth of writer 1's (who never ran here): all of them are new.
    assert _count(engine, s.Interaction) == EVENTS_PER_PROCESS * (1 + RESENT)
    with sqlite3.connect(backup) as copy:
        in_backup = copy.execute("SELECT count(*) FROM interactions").fetchone()[0]
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert 0 <= in_backup <= _count(engine, s.Interaction)

    restore_store(engine, backup)
    restored = make_engine(url)
    assert _count(restored, s.Customer) == 2000
    assert _count(restored, s.Interaction) == in_backup
    restored.dispose()
    with pytest.raises(SourceFileError, match="not a SQLite database"):
        restore_store(engine, write_file("fake.db", "this is not a database"))
