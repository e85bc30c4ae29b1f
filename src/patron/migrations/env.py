"""Alembic environment: runs against the engine Patron hands over (``config.attributes['engine']``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

from patron.schema import Base
from patron.settings import get_settings

config = context.config
target_metadata = Base.metadata


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine  # type: ignore[no-any-return]
    return create_engine(get_settings().resolved_database_url())


def _include_name(name: str | None, type_: str, _parent: object) -> bool:
    """The SQLite full-text index (kb_search and its shadow tables) is made by a migration, not by the models."""
    return not (type_ == "table" and name is not None and name.startswith("kb_search"))


def run_migrations_online() -> None:
    with _engine().begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=_include_name,
        )
        context.run_migrations()


run_migrations_online()
