"""Personal data encrypted at rest, with the key from ``PATRON_ENCRYPTION_KEY`` (``patron privacy new-key``).

Two column types, both read back in clear through SQLAlchemy:

* ``Sealed`` — Fernet tokens (AES-128-CBC with an HMAC-SHA256, randomised): for personal free text nobody searches
  on (street, interaction bodies, case descriptions, campaign contact addresses).
* ``Blind`` — AES-SIV (RFC 5297), deterministic: the synthetic IV is a keyed CMAC hash of the value, so the same
  value always gives the same token. Equality, ``IN``, ``GROUP BY`` and unique constraints keep working on the
  tokens, which is how identities are matched on import, found by exact search and kept unique, and how names
  and postal codes are grouped to find duplicates. The price, stated in docs/PRIVACY.md: equal values are
  visibly equal, and substring search on these columns is not possible while the key is set.

Values written before a key was set stay readable and are encrypted by ``seal_existing``; an encrypted value read
without the key (or with another one) comes back as ``[encrypted]`` rather than failing.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Text, cast, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from patron.errors import InvalidInputError
from patron.settings import get_settings

if TYPE_CHECKING:
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV

UNREADABLE = "[encrypted]"
# cryptography is imported where a key is used: loading it was a tenth of every command's start, key or not.


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    from cryptography.fernet import Fernet  # noqa: PLC0415

    try:
        return Fernet(key.encode())
    except ValueError as error:
        raise InvalidInputError(
            "PATRON_ENCRYPTION_KEY is not a Fernet key: make one with `patron privacy new-key`", field="key"
        ) from error


@lru_cache(maxsize=4)
def _siv(key: str) -> AESSIV:
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV  # noqa: PLC0415

    # A separate 512-bit AES-SIV key derived from the one setting, so one key never serves two ciphers.
    _fernet(key)  # refuses a malformed key with the same clear error
    material = base64.urlsafe_b64decode(key.encode())
    return AESSIV(_derived(material, 64, b"patron deterministic columns v1"))


@lru_cache(maxsize=4)
def _digest_secret(key: str) -> bytes:
    _fernet(key)
    material = base64.urlsafe_b64decode(key.encode())
    return _derived(material, 32, b"patron match keys v1")


def _derived(material: bytes, length: int, purpose: bytes) -> bytes:
    from cryptography.hazmat.primitives.hashes import SHA256  # noqa: PLC0415
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: PLC0415

    return HKDF(algorithm=SHA256(), length=length, salt=None, info=purpose).derive(material)


@lru_cache(maxsize=4)
def _keyed_blake2b(key: str) -> Any:
    return hashlib.blake2b(digest_size=8, key=_digest_secret(key) if key else b"")


def keyed_digest(value: str) -> int:
    """A 64-bit digest of ``value`` (a signed BIGINT), keyed by ``PATRON_ENCRYPTION_KEY`` when one is set: equal
    values give equal digests, and without the key nothing can be guessed back from them (blocking keys)."""
    digest = _keyed_blake2b(_key() or "").copy()  # the keyed state is set up once, copied per value
    digest.update(value.encode("utf-8"))
    return int.from_bytes(digest.digest(), "big", signed=True)


def _key() -> str | None:
    return get_settings().encryption_key


def cipher() -> Fernet | None:
    key = _key()
    return _fernet(key) if key else None


def new_key() -> str:
    from cryptography.fernet import Fernet  # noqa: PLC0415

    return Fernet.generate_key().decode()


class _Protected(TypeDecorator[str]):
    impl = Text
    cache_ok = True
    prefix = ""

    def encrypt(self, key: str, value: str) -> str:
        raise NotImplementedError

    def decrypt(self, key: str, token: str) -> str:
        raise NotImplementedError

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        key = _key()
        if value is None or not key or value.startswith(self.prefix):
            return value
        return self.prefix + self.encrypt(key, value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or not str(value).startswith(self.prefix):
            return value  # type: ignore[no-any-return]
        key = _key()
        if not key:
            return UNREADABLE
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415
        from cryptography.fernet import InvalidToken  # noqa: PLC0415

        try:
            return self.decrypt(key, str(value)[len(self.prefix) :])
        except (InvalidToken, InvalidTag, ValueError):
            return UNREADABLE  # encrypted with another key


class Sealed(_Protected):
    cache_ok = True
    prefix = "enc:v1:"

    def encrypt(self, key: str, value: str) -> str:
        return _fernet(key).encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, key: str, token: str) -> str:
        return _fernet(key).decrypt(token.encode("ascii")).decode("utf-8")


class Blind(_Protected):
    cache_ok = True
    prefix = "det:v1:"

    def encrypt(self, key: str, value: str) -> str:
        return base64.urlsafe_b64encode(_siv(key).encrypt(value.encode("utf-8"), None)).decode("ascii")

    def decrypt(self, key: str, token: str) -> str:
        return _siv(key).decrypt(base64.urlsafe_b64decode(token.encode("ascii")), None).decode("utf-8")


def encrypting() -> bool:
    """Whether personal data is being encrypted (substring search on names and identities is then off)."""
    return bool(_key())


def stored_as_given(kind: object) -> bool:
    """Whether a value bound to a column of ``kind`` is stored exactly as given: a protected column while nothing is
    encrypted (the bulk writers then skip the type's converter, 0.6 µs a value: 0.6 s of a 700,000-line import)."""
    return isinstance(kind, _Protected) and not encrypting()


def seal_existing(engine: Engine, *, batch: int = 1000) -> dict[str, int]:
    """Encrypt the values written in clear before the key was set; returns rows encrypted per table column."""
    from patron.schema import Base  # noqa: PLC0415 - every table, gathered only once all are defined

    if cipher() is None:
        raise InvalidInputError("set PATRON_ENCRYPTION_KEY first (`patron privacy new-key` makes one)", field="key")
    sealed: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        columns = [column for column in table.columns if isinstance(column.type, _Protected)]
        keys = list(table.primary_key.columns)
        for column in columns:
            assert isinstance(column.type, _Protected)
            stored = cast(column, Text())  # the text as stored, not decrypted
            with engine.begin() as conn:
                query = select(*keys, stored).where(column.is_not(None), ~stored.startswith(column.type.prefix))
                rows = conn.execute(query).all()
                for start in range(0, len(rows), batch):
                    for row in rows[start : start + batch]:
                        where = [key == row._mapping[key.name] for key in keys]
                        clear = _in_clear(row[-1], engine.dialect)  # a Sealed token in what is now a Blind column
                        conn.execute(update(table).where(*where).values({column.name: clear}))
            if rows:
                sealed[f"{table.name}.{column.name}"] = len(rows)
    return sealed


def _in_clear(stored: str, dialect: Dialect) -> str | None:
    for kind in (Sealed(), Blind()):
        if stored.startswith(kind.prefix):
            return kind.process_result_value(stored, dialect)
    return stored
