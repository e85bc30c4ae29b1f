"""Personal free text encrypted at rest: ``Sealed`` columns are written as Fernet tokens (AES-128-CBC with an
HMAC-SHA256, from the ``cryptography`` library) when ``PATRON_ENCRYPTION_KEY`` is set, and read back in clear.

Sealed are the PII columns nobody searches on (street, postal code, interaction bodies, case descriptions,
campaign contact addresses). Values written before a key was set stay readable and are sealed by
``seal_existing``; a sealed value read without the key comes back as ``[encrypted]`` rather than failing.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Engine, Text, cast, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from patron.errors import InvalidInputError
from patron.settings import get_settings

PREFIX = "enc:v1:"
UNREADABLE = "[encrypted]"


@lru_cache(maxsize=4)
def _cipher(key: str) -> Fernet:
    try:
        return Fernet(key.encode())
    except ValueError as error:
        raise InvalidInputError(
            "PATRON_ENCRYPTION_KEY is not a Fernet key: make one with `patron privacy new-key`", field="key"
        ) from error


def cipher() -> Fernet | None:
    key = get_settings().encryption_key
    return _cipher(key) if key else None


def new_key() -> str:
    return Fernet.generate_key().decode()


class Sealed(TypeDecorator[str]):
    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        sealer = cipher()
        if value is None or sealer is None or value.startswith(PREFIX):
            return value
        return PREFIX + sealer.encrypt(value.encode("utf-8")).decode("ascii")

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or not str(value).startswith(PREFIX):
            return value  # type: ignore[no-any-return]
        sealer = cipher()
        if sealer is None:
            return UNREADABLE
        try:
            return sealer.decrypt(str(value)[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except InvalidToken:
            return UNREADABLE  # sealed with another key


def seal_existing(engine: Engine, *, batch: int = 1000) -> dict[str, int]:
    """Encrypt the values written in clear before the key was set; returns rows sealed per table."""
    from patron.schema import Base  # noqa: PLC0415 - every table, gathered only once all are defined

    if cipher() is None:
        raise InvalidInputError("set PATRON_ENCRYPTION_KEY first (`patron privacy new-key` makes one)", field="key")
    sealed: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        columns = [column for column in table.columns if isinstance(column.type, Sealed)]
        keys = list(table.primary_key.columns)
        for column in columns:
            stored = cast(column, Text())  # the text as stored, not decrypted
            with engine.begin() as conn:
                rows = conn.execute(select(*keys, stored).where(column.is_not(None), ~stored.startswith(PREFIX))).all()
                for start in range(0, len(rows), batch):
                    for row in rows[start : start + batch]:
                        where = [key == row._mapping[key.name] for key in keys]
                        conn.execute(update(table).where(*where).values({column.name: row[-1]}))
            if rows:
                sealed[f"{table.name}.{column.name}"] = len(rows)
    return sealed
