"""The migrations create exactly the schema the models declare, on both stores."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, inspect

from patron.cif.store import alembic_config
from patron.schema import Base


def test_models_and_migrations_agree(engine: Engine) -> None:
    command.check(alembic_config(engine))  # raises if autogenerate would emit any operation
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def test_money_is_never_a_float_column() -> None:
    money = [
        column for table in Base.metadata.tables.values() for column in table.columns if column.name.endswith("_minor")
    ]
    assert money, "expected money columns"
    assert all(column.type.python_type is int for column in money)
