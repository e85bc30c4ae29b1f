"""Fixtures: a real store per test, on SQLite (a fresh file) and on the local PostgreSQL server."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import shutil
import socket
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

# The background warmer recomputes analyses whenever the data changes: in tests that is every test's store, a
# thread racing each fixture's teardown. Its own test starts one on purpose (tests/test_warm.py).
os.environ["PATRON_WARM_ANALYSES"] = "false"
# A page waits for its analysis rather than saying it is computing, so a test sees the page it asked for; the
# computing state has its own tests (tests/test_warm.py), which shorten the wait.
os.environ["PATRON_PAGE_WAIT_SECONDS"] = "600"
# Passwords hashed at argon2's cheapest cost: at the production one (0.15 s a hash or a check) the users and
# sign-ins of the fixtures cost more than anything the tests check (tests/test_api.py: 62 s against 20 s, with the
# migrated store below). tests/test_sessions.py checks a change of cost.
os.environ["PATRON_PASSWORD_HASH_TIME_COST"] = "1"
os.environ["PATRON_PASSWORD_HASH_MEMORY_KIB"] = "1024"
os.environ["PATRON_PASSWORD_HASH_PARALLELISM"] = "1"
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, create_engine, insert, text

from patron.auth.trail import close_reads
from patron.cif.columns import table_of
from patron.cif.store import make_engine, migrate
from patron.schema import Base
from patron.segments.frame_cache import forget_features
from patron.value.schema import CustomerScore, ScoreRun

# Files a test's app writes (uploads, rejects, backups) go to a folder of the run's own, never into the checkout
# (the default, ./patron-data, is where a user's `make run` keeps them); a test may point it elsewhere. Made before
# any test reads the settings, by the run's first process, which removes it at the end; xdist's workers and the
# processes tests start inherit it.
TESTS_DATA_PREFIX = os.path.join(tempfile.gettempdir(), "patron-tests-")
MADE_DATA_DIR = not os.environ.get("PATRON_DATA_DIR", "").startswith(TESTS_DATA_PREFIX)
if MADE_DATA_DIR:
    os.environ["PATRON_DATA_DIR"] = tempfile.mkdtemp(prefix="patron-tests-")
TEST_DATA_DIR = os.environ["PATRON_DATA_DIR"]
ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("PATRON_SHARED_DATA_DIR", ROOT.parent / "shared" / "data"))
POSTGRES_ADMIN_URL = os.environ.get("PATRON_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if MADE_DATA_DIR:  # the run's first process, once its workers are done
        shutil.rmtree(TEST_DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this run's own on the local server, dropped at the end (leftovers never matter)."""
    name = f"patron_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_all(engine: Engine) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    forget_features()  # ids start again at 1: a kept frame's stamp could match a different store's


def copy_store(source: Path, target: Path) -> Path:
    """A SQLite store copied page by page (SQLite's backup: whole whatever the source's journal holds)."""
    with contextlib.closing(sqlite3.connect(source)) as origin, contextlib.closing(sqlite3.connect(target)) as copy:
        origin.backup(copy)
    return target


@pytest.fixture(scope="session")
def migrated_store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite store at the head migration, made once per test process: a test copies it (a few
    milliseconds) rather than running every migration (0.5-1 s)."""
    path = tmp_path_factory.mktemp("migrated") / "patron.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture
def fresh_sqlite(migrated_store_file: Path, tmp_path: Path) -> Callable[[], Engine]:
    """Makes a new empty SQLite store at the head migration in the test's folder (only when asked: the PostgreSQL
    runs of ``engine`` need none)."""

    def fresh() -> Engine:
        return make_engine(f"sqlite:///{copy_store(migrated_store_file, tmp_path / 'patron.db')}")

    return fresh


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, fresh_sqlite: Callable[[], Engine]) -> Iterator[Engine]:
    """The store under test: the same code path on a fresh SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        store = fresh_sqlite()
    else:
        store = make_engine(request.getfixturevalue("postgres_url"))
        _truncate_all(store)
    yield store
    close_reads(store)  # the read trail's thread must not open a connection after the dispose
    store.dispose()


@pytest.fixture
def sqlite_engine(fresh_sqlite: Callable[[], Engine]) -> Iterator[Engine]:
    store = fresh_sqlite()
    yield store
    store.dispose()


WriteFile = Callable[[str, str | bytes], Path]


@pytest.fixture
def write_file(tmp_path: Path) -> WriteFile:
    """Write a source file (text or raw bytes) into the test's folder and return its path."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write


def loaded_demo_file(factory: pytest.TempPathFactory, *names: str) -> Path:
    """A SQLite store holding the demo sets ``names``, loaded once per test run and shared by the xdist workers
    (Hillstrom alone takes 14 s to load, and four modules read it). Copy it (``copy_store``); never open it."""
    from patron.demo import load_demo  # noqa: PLC0415 - only the modules that use demo data load it

    # Each xdist worker has its own base folder inside the run's; without xdist the base folder is the run's.
    run_folder = factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else factory.getbasetemp()
    folder = run_folder / "demo-stores"
    folder.mkdir(exist_ok=True)
    path = folder / f"{'+'.join(names)}.db"
    with (folder / f"{path.stem}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker loads, one that asks meanwhile waits for it
        if not path.exists():
            loading = folder / f"{path.stem}.loading"
            for leftover in folder.glob(f"{loading.name}*"):  # of a run stopped while it loaded
                leftover.unlink()
            engine = make_engine(f"sqlite:///{loading}")
            migrate(engine)
            load_demo(engine, SHARED_DATA, names=names)
            engine.dispose()
            copy_store(loading, folder / f"{path.stem}.copying").replace(path)  # never a half-copied store
    return path


def demo_store(factory: pytest.TempPathFactory, *names: str) -> Iterator[Engine]:
    """A SQLite store of its own holding some demo sets, for a module's tests."""
    engine = make_engine(
        f"sqlite:///{copy_store(loaded_demo_file(factory, *names), factory.mktemp('demo') / 'patron.db')}"
    )
    yield engine
    engine.dispose()


def stored_score_run(
    engine: Engine, best_first: Sequence[int], *, p_alive: float = 0.5, clv_top: int = 1000, at_risk_top: int = 10
) -> int:
    """A score run written straight to the store: the customers ranked as given, tiers A, B, C …, a CLV of
    ``clv_top`` − rank and a value at risk of ``at_risk_top`` − rank (minor units). Its id."""
    with engine.begin() as conn:
        run = conn.execute(
            insert(table_of(ScoreRun)).values(
                as_of=dt.date(2024, 1, 1), source="crm", model="bgnbd", period="W", currency="USD", horizon_months=36,
                annual_discount_rate=0.1, default_margin_rate=0.3, parameters={}, log_likelihood=-1.0,
                customers=len(best_first), excluded={}, tier_cuts=[0.2, 0.5],
            ).returning(table_of(ScoreRun).c.id)
        ).scalar_one()  # fmt: skip
        for rank, customer in enumerate(best_first, start=1):
            conn.execute(
                insert(table_of(CustomerScore)).values(
                    run_id=run, customer_id=customer, frequency=1, recency=1.0, age=2.0, p_alive=p_alive,
                    expected_purchases=1.0, expected_margin_per_purchase_minor=100, clv_minor=clv_top - rank,
                    value_at_risk_minor=at_risk_top - rank, revenue_minor=100, tier="ABCDEFGH"[rank - 1], rank=rank,
                )
            )  # fmt: skip
    return int(run)


def needs(path: Path) -> pytest.MarkDecorator:
    """Skip where a file or folder of ../shared/data is missing (CI always has them)."""
    return pytest.mark.skipif(not path.exists(), reason=f"../shared/data is not beside the project ({path.name})")


NEEDS_SHARED_DATA = needs(SHARED_DATA)


class Inbox:
    """An SMTP server's handler: keeps each message; can be told to refuse from the n-th one on."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.refuse_after: int | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_after is not None and len(self.messages) >= self.refuse_after:
            return "451 4.3.0 try again later"
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def smtp_server(inbox: Inbox) -> Iterator[tuple[Inbox, int]]:
    """A local SMTP server (aiosmtpd) on a free port handing every message to ``inbox``, for a fixture to yield."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    yield from smtp_server(Inbox())
