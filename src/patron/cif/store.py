"""Opening the store: one engine per URL, SQLite tuned for a concurrent embedded workload, migrations on init."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from patron.cif.schema import Customer, Order, OrderLine
from patron.errors import NotFoundError
from patron.settings import get_settings

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run during an import; the busy timeout makes concurrent writers wait instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # 64 MiB of page cache instead of SQLite's 2 MiB: an import's key lookups and index inserts stay in memory.
    cursor.execute("PRAGMA cache_size=-65536")
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
    from alembic.config import Config  # noqa: PLC0415  (Alembic only when a migration is due: 0.13 s of a command)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The newest migration's revision, read off the file names (``0017_...py`` is revision ``0017``): Alembic's
    own answer means importing every migration script, a third of a CLI command's start-up."""
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"))


def at_head(engine: Engine) -> bool:
    """Whether the store's schema is the newest migration's: one small read."""
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == head_revision()
    except DBAPIError:  # no schema at all yet
        return False


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent; a store already there is only looked at)."""
    if not at_head(engine):
        from alembic import command  # noqa: PLC0415

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


REFRESH_STATISTICS_AFTER = 10_000  # rows written at once: imports, score runs, offer decisions


def refresh_statistics(store: Engine | Connection, *, rows_written: int) -> None:
    """Let the query planner see what a large write (``REFRESH_STATISTICS_AFTER`` rows or more) brought in.

    On PostgreSQL a fresh import leaves the table statistics stale until autovacuum gets round to them, and with
    stale ones a one-customer lookup was planned as a full scan of the order lines (12 ms instead of 0.2 ms,
    bench/bench_api.py). SQLite's ``PRAGMA optimize`` does the same where it thinks it helps. Given a connection, it
    runs inside its transaction (a bulk load's, whose growing tables the planner must see too).
    """
    if rows_written < REFRESH_STATISTICS_AFTER:
        return
    if isinstance(store, Engine):
        with store.begin() as conn:
            refresh_statistics(conn, rows_written=rows_written)
        return
    store.exec_driver_sql("ANALYZE" if store.dialect.name == "postgresql" else "PRAGMA optimize")


_LOOKUP_ENGINES: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
T = TypeVar("T")


def for_lookups(engine: Engine) -> Engine:
    """The engine for short read-only lookups: on PostgreSQL its own pool, without transactions or pings.

    Each costs a round trip (BEGIN, the ROLLBACK when a connection goes back to the pool, the ping on checkout),
    and a lookup is otherwise one statement: a profile took 2.8 ms with a transaction and 1.1 ms without on the
    test machine. Each statement still reads one consistent snapshot. Without the ping a dropped connection shows
    as an error on first use, so ``read_once_more`` retries such a read on a fresh connection. SQLite has no round
    trips to save and keeps its one engine.
    """
    if engine.dialect.name != "postgresql":
        return engine
    found = _LOOKUP_ENGINES.get(engine)
    if found is None:
        settings = get_settings()
        found = create_engine(
            engine.url, isolation_level="AUTOCOMMIT", pool_size=settings.pool_size, max_overflow=settings.max_overflow
        )
        _LOOKUP_ENGINES[engine] = found
        event.listen(engine, "engine_disposed", lambda _engine: found.dispose())
    return found


def read_once_more(engine: Engine, read: Callable[[Connection], T]) -> T:
    """Run a read-only lookup on the lookup engine, again on a fresh connection if the first one had dropped."""
    lookups = for_lookups(engine)
    try:
        with lookups.connect() as conn:
            return read(conn)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    with lookups.connect() as conn:
        return read(conn)


def id_by_key(engine: Engine, key_column: Any, key: str, *, what: str, field: str) -> int:
    """The id of the row whose ``key_column`` holds ``key`` (a campaign key, a segment name), or a NotFoundError
    saying ``there is no <what> '<key>'``."""
    table = key_column.table
    with engine.connect() as conn:
        found = conn.scalar(select(table.c.id).where(key_column == key))
    if found is None:
        raise NotFoundError(f"there is no {what} {key!r}", field=field)
    return int(found)
