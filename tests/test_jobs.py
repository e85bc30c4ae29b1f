"""Background jobs through the real Redis server: a worker scores, refreshes segments and fires scheduled triggers."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import Engine, func, select

from patron.cif.columns import table_of
from patron.cif.importer import import_file
from patron.cif.store import make_engine, migrate
from patron.demo import demo_mapping
from patron.engage.schema import TriggerFiring
from patron.engage.triggers import create_trigger, fire_for_base
from patron.errors import InvalidInputError
from patron.jobs.queue import enqueue, schedule
from patron.segments.rules import create_segment, list_segments
from patron.service.schema import Case
from patron.settings import get_settings
from patron.value.scoring import latest_run_id, run_scores
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.slow
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A SQLite store with CDNOW's orders, named in the settings so that jobs (which read them) find it."""
    url = f"sqlite:///{tmp_path / 'patron.db'}"
    monkeypatch.setenv("PATRON_DATABASE_URL", url)
    monkeypatch.setenv("PATRON_REDIS_URL", REDIS_URL)
    get_settings.cache_clear()
    engine = make_engine(url)
    migrate(engine)
    import_file(engine, SHARED_DATA / "cdnow" / "CDNOW_master.txt", demo_mapping("cdnow"))
    yield engine
    engine.dispose()
    get_settings.cache_clear()


@pytest.fixture
def queue() -> Iterator[Queue]:
    """A queue of this test's own on the local Redis server, emptied afterwards."""
    connection = Redis.from_url(REDIS_URL)
    own = Queue(f"patron-test-{uuid.uuid4().hex[:8]}", connection=connection)
    yield own
    own.empty()  # type: ignore[no-untyped-call]
    own.delete(delete_jobs=True)
    connection.close()


def _run_all(queue: Queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def _cases_from(engine: Engine, source: str) -> int:
    cases = table_of(Case)
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(cases).where(cases.c.source == source)) or 0)


def test_a_worker_scores_the_base_and_fires_the_triggers_waiting_for_fresh_scores(store: Engine, queue: Queue) -> None:
    create_trigger(
        store, "fading A customer", on_event="scored", condition='tier == "A" and p_alive < 0.3',
        action="open_case", params={"subject": "Retention call: a valuable customer is fading"},
    )  # fmt: skip
    job = enqueue("score", queue, model="bgnbd")
    _run_all(queue)

    assert job.is_finished, job.latest_result()
    outcome = job.return_value()
    assert outcome is not None
    assert outcome["run_id"] == latest_run_id(store)
    assert outcome["customers"] == 23_570
    scores = run_scores(store, outcome["run_id"])
    fading = scores.filter((pl.col("tier") == "A") & (pl.col("p_alive") < 0.3)).height
    assert 0 < fading < scores.filter(pl.col("tier") == "A").height
    assert outcome["fired"] == fading == _cases_from(store, "trigger")

    # The same run again fires nobody twice.
    assert fire_for_base(store, "scored", f"run-{outcome['run_id']}") == []
    assert _cases_from(store, "trigger") == fading


def test_daily_triggers_fire_once_per_customer_and_day(store: Engine, queue: Queue) -> None:
    create_trigger(
        store, "lapsed a year", on_event="daily", condition="days_since_last_order > 365 and orders >= 10",
        action="open_case", params={"subject": "Win-back call"},
    )  # fmt: skip
    first = enqueue("daily", queue, day="1998-06-30")
    again = enqueue("daily", queue, day="1998-06-30")
    next_day = enqueue("daily", queue, day="1998-07-01")
    _run_all(queue)

    fired = first.return_value()
    assert fired is not None
    assert fired["fired"] > 0
    # No offers defined; no scores and no customer links: every strategy analysis refuses, and none is stored.
    assert again.return_value() == {"day": "1998-06-30", "fired": 0, "offers_decided": 0, "analyses_stored": []}
    later = next_day.return_value()
    assert later is not None
    assert later["fired"] >= fired["fired"]  # a new day is a new occurrence; nobody un-lapses without orders
    firings = table_of(TriggerFiring)
    with store.connect() as conn:
        per_day: dict[str, int] = dict(
            conn.execute(select(firings.c.occurrence, func.count()).group_by(firings.c.occurrence)).all()
        )
    assert per_day == {"1998-06-30": fired["fired"], "1998-07-01": later["fired"]}


def test_the_scheduler_registers_the_periodic_jobs_and_what_it_enqueues_a_worker_runs(
    store: Engine, queue: Queue
) -> None:
    create_segment(store, "big spenders", "revenue > 500")
    cron = schedule(queue.connection, queue.name)
    jobs = {job.func_name.rsplit(".", 1)[-1]: job for job in cron.get_jobs()}
    settings = get_settings()
    assert {name: job.cron for name, job in jobs.items()} == {
        "score": settings.score_cron,
        "refresh_segments": settings.segments_cron,
        "daily_triggers": settings.daily_cron,
    }
    for job in jobs.values():
        assert dt.timedelta(0) < job.get_next_enqueue_time() - dt.datetime.now(dt.UTC) <= dt.timedelta(days=1)

    # What the scheduler does when the segments' time comes: enqueue; then a worker runs it.
    jobs["refresh_segments"].enqueue(queue.connection)
    assert queue.count == 1
    _run_all(queue)
    (segment,) = list_segments(store)
    assert segment["member_count"] > 0


def test_an_unknown_job_is_refused(queue: Queue) -> None:
    with pytest.raises(InvalidInputError, match="no job 'rescore'"):
        enqueue("rescore", queue)
    assert queue.count == 0
