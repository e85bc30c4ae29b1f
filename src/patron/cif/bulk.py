"""Writing a whole frame of rows with the driver's fastest path: SQLite's ``executemany``, PostgreSQL's ``COPY``.

SQLAlchemy's own ``executemany`` turns each row into a dictionary and each value through its type, which was most of
an import's time (bench/bench_import.py). Here each column is converted at once (a Polars expression where the type's
conversion is known, the type's own converter over the column where it is not: the sealed personal-data columns), and
the rows go to the driver as they are. The values stored are the ones SQLAlchemy would have stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Numeric,
    Select,
    String,
    Table,
    Text,
    any_,
    bindparam,
    func,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from patron.cif.sealed import stored_as_given

# How SQLAlchemy's SQLite dialect writes dates and times: a string that sorts and compares as the moment does.
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S%.6f"
_SQLITE_DATE = "%Y-%m-%d"
_SEPARATOR = "\x1f"  # ASCII's unit separator: no key holds it (one that does is sent as an array)


def _is(kind: TypeEngine[Any], *types: type[TypeEngine[Any]]) -> bool:
    """Whether ``kind`` is one of ``types`` as the driver sees it: a decorated type (sealed personal data) is not."""
    return type(kind) in types or (not hasattr(kind, "impl") and isinstance(kind, types))


def _column_for_driver(frame: pl.DataFrame, name: str, kind: TypeEngine[Any], dialect: Dialect) -> pl.Series:
    series = frame.get_column(name)
    if isinstance(kind, JSON):  # as text for both drivers (psycopg's own adapter cannot go into COPY's CSV)
        serialize = getattr(dialect, "_json_serializer", None) or json.dumps
        return pl.Series(name, [None if value is None else serialize(value) for value in series.to_list()], pl.String)
    if dialect.name == "sqlite":
        if _is(kind, DateTime):
            return series.cast(pl.Datetime("us")).dt.strftime(_SQLITE_DATETIME)
        if _is(kind, Date):
            return series.cast(pl.Date).dt.strftime(_SQLITE_DATE)
        if _is(kind, Numeric):
            return series.cast(pl.Float64)
        if _is(kind, Boolean):
            return series.cast(pl.Int64)
    process = kind._cached_bind_processor(dialect)
    if process is None or _is(kind, DateTime, Date, Numeric, Boolean) or stored_as_given(kind):
        return series
    return pl.Series(name, [None if value is None else process(value) for value in series.to_list()])


def _defaults_to_null(table: Table, name: str) -> bool:
    column = table.c[name]
    return column.nullable is True and column.default is None and column.server_default is None


@dataclass(frozen=True)
class DriverRows:
    """Rows of one table as its driver takes them: SQLite's tuples, or PostgreSQL's ``COPY`` text."""

    table: Table
    columns: tuple[str, ...]
    payload: list[tuple[Any, ...]] | str
    count: int


def driver_rows(dialect: Dialect, table: Table, frame: pl.DataFrame) -> DriverRows:
    """``frame`` (columns named as ``table``'s) converted for the driver, ready for ``insert_rows``. Nothing here
    touches the store, so the next batch can be prepared while the store writes this one."""
    # A column empty in every row is left to the table, as NULL is its default: binding values is most of the time.
    empty = [
        name
        for name in frame.columns
        if _defaults_to_null(table, name) and frame.get_column(name).null_count() == frame.height
    ]
    kept = frame.drop(empty)
    rows = pl.DataFrame([_column_for_driver(kept, name, table.c[name].type, dialect) for name in kept.columns])
    payload = rows.write_csv(include_header=False) if dialect.name == "postgresql" else rows.rows()
    return DriverRows(table, tuple(rows.columns), payload, frame.height)


def insert_rows(conn: Connection, rows: DriverRows) -> int:
    """Write rows prepared by ``driver_rows`` inside ``conn``'s transaction; returns the number of rows."""
    if rows.count == 0:
        return 0
    columns = ", ".join(f'"{name}"' for name in rows.columns)
    if isinstance(rows.payload, str):
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f'COPY "{rows.table.name}" ({columns}) FROM STDIN WITH (FORMAT csv)') as copy:
            copy.write(rows.payload)
        cursor.close()
    else:
        marks = ", ".join("?" for _ in rows.columns)
        conn.exec_driver_sql(f'INSERT INTO "{rows.table.name}" ({columns}) VALUES ({marks})', rows.payload)
    return rows.count


def insert_frame(conn: Connection, table: Table, frame: pl.DataFrame) -> int:
    """Insert every row of ``frame`` into ``table`` inside ``conn``'s transaction; returns the number of rows."""
    if frame.height == 0:
        return 0
    return insert_rows(conn, driver_rows(conn.dialect, table, frame))


def update_frame(conn: Connection, table: Table, frame: pl.DataFrame, *, keys: Sequence[str]) -> int:
    """Write each row of ``frame`` over the stored row its ``keys`` columns name: every other column of the frame
    is set (through its type, so sealed values are sealed), one statement for all rows; returns the number of rows."""
    if frame.height == 0:
        return 0
    values = [name for name in frame.columns if name not in keys]
    statement = (
        update(table)
        .where(*(table.c[name] == bindparam(f"key_{name}") for name in keys))
        .values({name: bindparam(f"new_{name}") for name in values})
    )
    names = [f"key_{name}" if name in keys else f"new_{name}" for name in frame.columns]
    conn.execute(statement, [dict(zip(names, row, strict=True)) for row in frame.iter_rows()])
    return frame.height


def insert_frame_with_ids(conn: Connection, table: Table, frame: pl.DataFrame) -> list[int]:
    """Insert every row of ``frame`` and return the new rows' ids, in the frame's order.

    PostgreSQL: the ids are taken from the table's sequence first and written with the rows, so concurrent writers
    cannot interleave. SQLite: the transaction holds the database's one write lock from its first insert, and each
    new row's id is the largest id plus one, so this insert's rows hold the ``height`` ids up to the largest.
    """
    if frame.height == 0:
        return []
    if conn.dialect.name == "postgresql":
        # The sequence is looked up once (a sub-select), not per row: per row it took 0.24 s of each 50,000 ids.
        query = text(
            "SELECT array_agg(nextval((SELECT pg_get_serial_sequence(:table, 'id'))::regclass)) "
            "FROM generate_series(1, :n)"
        )
        ids = list(conn.scalar(query, {"table": table.name, "n": frame.height}))
        insert_frame(conn, table, frame.with_columns(pl.Series("id", ids, dtype=pl.Int64)))
        return [int(value) for value in ids]
    insert_frame(conn, table, frame)
    largest = int(conn.exec_driver_sql(f'SELECT max(id) FROM "{table.name}"').scalar_one())
    return list(range(largest - frame.height + 1, largest + 1))


def stored_forms(conn: Connection, column: ColumnElement[Any], values: Sequence[Any]) -> list[Any]:
    """``values`` as ``column`` stores them: a sealed column's tokens, anything else as given."""
    process = column.type._cached_bind_processor(conn.dialect)
    if process is None or stored_as_given(column.type):
        return list(values)
    return [process(value) for value in values]


def one_of(
    conn: Connection, column: ColumnElement[Any], values: Sequence[Any], *, stored: bool = False
) -> ColumnElement[bool]:
    """``column IN values`` as one parameter however many values: an array on PostgreSQL, a JSON list read by
    ``json_each`` on SQLite. Twenty thousand keys as twenty thousand parameters cost more to send and parse than
    the lookup itself (psycopg split each such query for 40 ms). ``stored``: the values are already as the column
    stores them (``stored_forms``)."""
    kind = column.type
    given = list(values) if stored else stored_forms(conn, column, values)
    if conn.dialect.name == "postgresql":
        if given and all(isinstance(value, str) and _SEPARATOR not in value for value in given):
            # Texts as one text split by the server: psycopg turns a list into an array one element at a time in
            # Python (0.9 µs each, 3 s of a 700,000-line re-run's key lookups).
            return column == any_(func.string_to_array(literal(_SEPARATOR.join(given), Text()), _SEPARATOR))
        element = kind.impl_instance if isinstance(kind, TypeDecorator) else kind
        return column == any_(literal(given, ARRAY(element)))
    listed: Select[Any] = select(literal_column("value")).select_from(
        func.json_each(literal(json.dumps(given), String))
    )
    return column.in_(listed.scalar_subquery())


def frame_of(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """Rows given as dictionaries (few of them: a batch's new e-mail and phone identities) as a frame of ``columns``."""
    return pl.DataFrame({name: [row.get(name) for row in rows] for name in columns}, strict=False)
