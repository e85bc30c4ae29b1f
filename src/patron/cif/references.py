"""A bulk load's references checked once, set-based, at its end instead of row by row.

PostgreSQL checks a foreign key with a trigger on every row written: a lookup and a lock of the row referred to.
Copying CDNOW ×10's 696,590 order lines, as the importer wrote them, into a fresh store took 17.6 s into the table
with its foreign keys and 4.2 s without them (2026-12-03; docs/BENCHMARKS.md). ``checked_at_end`` drops the
foreign keys of the tables a load writes, inside the load's transaction, and adds them again before it commits:
adding a foreign key checks every row with one query. The constraints come back exactly as the catalogue held
them, and a load that fails (a row referring to nothing included) rolls back with its transaction, constraints and
all. While the transaction runs, the tables are locked for everyone else: this is for a first load of a large file,
not for a store people are working in.

SQLite's check of a reference is one index lookup in the same process (a fifth of an order's insert): there a bulk
load is a batched import (``importer.import_file``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, text


@dataclass(frozen=True)
class ForeignKey:
    table: str
    name: str
    definition: str  # as pg_get_constraintdef gives it: columns, referenced table, ON DELETE, DEFERRABLE


_FOREIGN_KEYS = text(
    "SELECT cl.relname, co.conname, pg_get_constraintdef(co.oid) FROM pg_constraint co "
    "JOIN pg_class cl ON cl.oid = co.conrelid "
    "WHERE co.contype = 'f' AND cl.relname = ANY(:tables) AND cl.relnamespace = to_regnamespace(current_schema()) "
    "ORDER BY cl.relname, co.conname"
)


def foreign_keys(conn: Connection, tables: Sequence[str]) -> list[ForeignKey]:
    """The foreign keys of ``tables`` (PostgreSQL), as the catalogue defines them."""
    return [ForeignKey(*row) for row in conn.execute(_FOREIGN_KEYS, {"tables": list(tables)})]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def checked_at_end(conn: Connection, tables: Sequence[str]) -> Iterator[None]:
    """Inside ``conn``'s transaction: the foreign keys of ``tables`` are checked once when the block ends without
    an error, not on every row written in it (PostgreSQL; on SQLite this does nothing)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    keys = foreign_keys(conn, tables)
    for key in keys:
        conn.exec_driver_sql(f"ALTER TABLE {_quoted(key.table)} DROP CONSTRAINT {_quoted(key.name)}")
    yield
    for key in keys:
        conn.exec_driver_sql(f"ALTER TABLE {_quoted(key.table)} ADD CONSTRAINT {_quoted(key.name)} {key.definition}")
