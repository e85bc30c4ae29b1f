"""Several small statements about one customer, read in one round trip where round trips are what costs.

On SQLite each statement runs in turn: a read is in-process work of tens of microseconds. On PostgreSQL every
statement is a round trip to the server (about half a millisecond on the test machine), and a real-time lookup
made ten of them. So there the statements become scalar subqueries of one ``SELECT``, each aggregated to JSON
(``json_agg`` over the statement as written), and the values come back to Python types through the statements' own
column types: encrypted columns are decrypted, timestamps, dates and decimals parsed. A subquery's ORDER BY does
not bind the aggregate that reads it (PostgreSQL only says it "usually works"), so each row carries its position by
the statement's own order, and ``json_agg(... ORDER BY position)`` keeps it.
The caller gets the same rows either way (tests/test_cif_views.py compares them).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Connection, Select, func, literal_column, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

Rows = list[dict[str, Any]]
POSITION = "part_position"


class PartReads:
    """Named statements sharing their bound parameters, read together."""

    def __init__(self, **statements: Select[Any]) -> None:
        self.statements = statements
        self._combined: Select[Any] | None = None
        # Each part's column types, for turning its JSON values back into Python ones (looked up per row read).
        self._types = {
            name: {column.key: column.type for column in statement.selected_columns}
            for name, statement in statements.items()
        }

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
            name: [_decoded(types, item, conn.dialect) for item in row._mapping[name]]
            for name, types in self._types.items()
        }

    def _one_statement(self) -> Select[Any]:
        from sqlalchemy.dialects.postgresql import aggregate_order_by  # noqa: PLC0415  (PostgreSQL only)

        parts = []
        for name, statement in self.statements.items():
            alias = f"part_{name}"
            ordered = statement.add_columns(
                func.row_number().over(order_by=statement._order_by_clauses).label(POSITION)
            )
            part = ordered.subquery(alias)
            rows = select(func.json_agg(aggregate_order_by(literal_column(alias), part.c[POSITION]))).select_from(part)
            parts.append(func.coalesce(rows.scalar_subquery(), text("'[]'::json"), type_=JSON).label(name))
        return select(*parts)


def _decoded(types: dict[str | None, TypeEngine[Any]], item: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    return {key: _native(types.get(key), value, dialect) for key, value in item.items() if key != POSITION}


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
