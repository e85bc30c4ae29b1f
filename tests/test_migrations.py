"""The migrations create exactly the schema the models declare, on both stores."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from patron.cif.store import alembic_config, at_head, head_revision, make_engine, migrate
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


def test_a_store_at_the_newest_migration_is_known_without_alembic(engine: Engine, tmp_path: Path) -> None:
    # The shortcut reads the head off the file names; it must name the revision Alembic itself calls the head.
    assert head_revision() == ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert at_head(engine)
    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert not at_head(fresh)
    migrate(fresh)
    assert at_head(fresh)
    with fresh.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0016'")
    assert not at_head(fresh)  # a store one migration behind is not taken as current: migrate() upgrades it
    fresh.dispose()
