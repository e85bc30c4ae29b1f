"""Several small statements about one customer, read in one round trip where round trips are what costs.

On SQLite each statement runs in turn: a read is in-process work of tens of microseconds. On PostgreSQL every
statement is a round trip to the server (about half a millisecond on the test machine), and a real-time lookup
made ten of them. So there the statements become scalar subqueries of one ``SELECT``, each aggregated to JSON
(``json_agg`` over the statement as written, its ORDER BY included), and the values come back to Python types
through the statements' own column types: encrypted columns are decrypted, timestamps, dates and decimals parsed.
The caller gets the same rows either way (tests/test_realtime_store.py compares them).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Connection, Select, func, literal_column, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

Rows = list[dict[str, Any]]


class PartReads:
    """Named statements sharing their bound parameters, read together."""

    def __init__(self, **statements: Select[Any]) -> None:
        self.statements = statements
        self._combined: Select[Any] | None = None

    def fetch(
        self, conn: Connection, parameters: dict[str, Any], *, one_round_trip: bool | None = None
    ) -> dict[str, Rows]:
        """Every statement's rows by name; ``one_round_trip`` defaults to whether the store is PostgreSQL."""
        if one_round_trip is None:
            one_round_trip = conn.dialect.name == "postgresql"
        if not one_round_trip:
            return {
                name: [dict(row) for row in conn.execute(statement, parameters).mappings()]
                for name, statement in self.statements.items()
            }
        if self._combined is None:
            self._combined = self._one_statement()
        row = conn.execute(self._combined, parameters).one()
        return {
            name: [_decoded(statement, item, conn.dialect) for item in row._mapping[name]]
            for name, statement in self.statements.items()
        }

    def _one_statement(self) -> Select[Any]:
        parts = []
        for name, statement in self.statements.items():
            alias = f"part_{name}"
            rows = select(func.json_agg(literal_column(alias))).select_from(statement.subquery(alias))
            parts.append(func.coalesce(rows.scalar_subquery(), text("'[]'::json"), type_=JSON).label(name))
        return select(*parts)


def _decoded(statement: Select[Any], item: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    types = {column.key: column.type for column in statement.selected_columns}
    return {key: _native(types.get(key), value, dialect) for key, value in item.items()}


def _native(kind: TypeEngine[Any] | None, value: Any, dialect: Dialect) -> Any:
    if value is None or kind is None:
        return value
    if isinstance(kind, TypeDecorator):
        return kind.process_result_value(value, dialect)
    try:
        python_type = kind.python_type
    except NotImplementedError:
        return value
    if python_type is dt.datetime:
        return dt.datetime.fromisoformat(value)
    if python_type is dt.date:
        return dt.date.fromisoformat(value)
    if python_type is Decimal:
        return Decimal(str(value))
    return value
