"""Opening the store: one engine per URL, SQLite tuned for a concurrent embedded workload, migrations on init."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from patron.cif.schema import Customer, Order, OrderLine
from patron.settings import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run during an import; the busy timeout makes concurrent writers wait instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (default: from settings); creates the SQLite folder when needed."""
    url = url or get_settings().resolved_database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    settings = get_settings()
    return create_engine(url, pool_pre_ping=True, pool_size=settings.pool_size, max_overflow=settings.max_overflow)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    command.upgrade(alembic_config(engine), "head")


def is_initialised(engine: Engine) -> bool:
    return inspect(engine).has_table("customers")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction: committed on success, rolled back on any error."""
    with engine.begin() as connection:
        yield connection


def store_counts(engine: Engine) -> dict[str, int]:
    """Headline counts for summaries and the empty-store check."""
    with engine.connect() as connection:
        customers = connection.scalar(select(func.count()).select_from(Customer)) or 0
        orders = connection.scalar(select(func.count()).select_from(Order)) or 0
        lines = connection.scalar(select(func.count()).select_from(OrderLine)) or 0
    return {"customers": customers, "orders": orders, "order_lines": lines}


def refresh_statistics(engine: Engine) -> None:
    """Let the query planner see what a large import brought in.

    On PostgreSQL a fresh import leaves the table statistics stale until autovacuum gets round to them, and with
    stale ones a one-customer lookup was planned as a full scan of the order lines (12 ms instead of 0.2 ms,
    bench/bench_api.py). SQLite's ``PRAGMA optimize`` does the same where it thinks it helps.
    """
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE" if engine.dialect.name == "postgresql" else "PRAGMA optimize")


_LOOKUP_ENGINES: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def for_lookups(engine: Engine) -> Engine:
    """The engine for short read-only lookups: on PostgreSQL without a transaction around them.

    A transaction costs two extra round trips (BEGIN, and the ROLLBACK when the connection goes back to the pool):
    a profile lookup took 2.8 ms with them and 1.1 ms without on the test machine. Each statement still reads one
    consistent snapshot, which is all a lookup made of one statement needs. SQLite has no round trips to save.
    """
    if engine.dialect.name != "postgresql":
        return engine
    found = _LOOKUP_ENGINES.get(engine)
    if found is None:
        found = _LOOKUP_ENGINES[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return found
