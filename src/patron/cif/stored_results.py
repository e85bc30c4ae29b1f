"""Analyses stored in the store with the data stamp they were computed for, so that every process reads what one
of them computed: the jobs compute the strategy analyses right after a score run, and a page opened later (in
any of the server's workers, or after a restart) reads them instead of computing them again.

A result is written as compressed JSON, never pickled: numbers, text, lists, tuples, dicts, Polars frames (Arrow
IPC) and the dataclasses registered with ``storable``. Reading builds nothing else, so a row changed behind our
back can at worst give a wrong figure, never run code.
"""

from __future__ import annotations

import ast
import base64
import dataclasses
import datetime as dt
import io
import json
import logging
import zlib
from collections.abc import Hashable
from typing import Any, TypeVar

import polars as pl
from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from patron.cif import schema as s
from patron.cif.columns import table_of, utcnow

T = TypeVar("T")
RESULTS = table_of(s.StoredResult)
# How long a stored result stands while the data stamp holds. The stamp moves with every import, order, score run,
# merge and erasure; what adds no stamped row (a merge undone, retention deleting old rows) shows in the stored
# analyses by the next day's job.
STORED_MAX_AGE = dt.timedelta(days=1)
log = logging.getLogger("patron")
_TYPES: dict[str, type] = {}


def storable(cls: type[T]) -> type[T]:
    """Register a dataclass as something a stored result may hold (a class decorator)."""
    _TYPES[_name_of(cls)] = cls
    return cls


def _name_of(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def encode(value: object) -> bytes:
    return zlib.compress(json.dumps(_plain(value)).encode(), level=1)


def decode(payload: bytes) -> Any:
    return _built(json.loads(zlib.decompress(payload)))


def _plain(value: object) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, pl.DataFrame):
        buffer = io.BytesIO()
        value.write_ipc(buffer, compression="uncompressed")  # the whole payload is compressed once
        return {"frame": base64.b64encode(buffer.getvalue()).decode()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = _name_of(type(value))
        if name not in _TYPES:
            raise TypeError(f"{name} is not registered with storable()")
        fields = {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
        return {"dataclass": name, "fields": fields}
    if isinstance(value, list | tuple):
        return {type(value).__name__: [_plain(item) for item in value]}
    if isinstance(value, dict):
        return {"dict": [[_plain(k), _plain(v)] for k, v in value.items()]}
    if hasattr(value, "item") and hasattr(value, "dtype"):  # a NumPy scalar
        return _plain(value.item())
    raise TypeError(f"a {type(value).__name__} cannot be stored")


def _built(plain: Any) -> Any:
    if not isinstance(plain, dict):
        return plain
    if "frame" in plain:
        return pl.read_ipc(io.BytesIO(base64.b64decode(plain["frame"])))
    if "dataclass" in plain:
        return _TYPES[plain["dataclass"]](**{name: _built(v) for name, v in plain["fields"].items()})
    if "list" in plain:
        return [_built(item) for item in plain["list"]]
    if "tuple" in plain:
        return tuple(_built(item) for item in plain["tuple"])
    return {_built(k): _built(v) for k, v in plain["dict"]}


def _text(key: Hashable) -> str:
    return repr(key)


def load(engine: Engine, key: Hashable, stamp: tuple[object, ...]) -> tuple[bool, Any]:
    """(True, the result) when one is stored for ``key`` and this data stamp and is recent; (False, None) if not."""
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(RESULTS.c.stamp, RESULTS.c.computed_at, RESULTS.c.payload).where(RESULTS.c.key == _text(key))
            ).first()
        if row is None or row.stamp != _text(stamp) or utcnow() - row.computed_at > STORED_MAX_AGE:
            return False, None
        return True, decode(row.payload)
    except (SQLAlchemyError, KeyError, TypeError, ValueError, zlib.error, pl.exceptions.PolarsError) as error:
        log.warning("the stored %s could not be read (computed again): %s", key, error)
        return False, None


def save(engine: Engine, key: Hashable, stamp: tuple[object, ...], value: object) -> None:
    """Store ``value`` as ``key``'s result for this data stamp, replacing the one before (a failure is logged:
    the result is still used, only not shared)."""
    try:
        payload = encode(value)
        with engine.begin() as conn:
            conn.execute(delete(RESULTS).where(RESULTS.c.key == _text(key)))
            conn.execute(
                insert(RESULTS).values(key=_text(key), stamp=_text(stamp), computed_at=utcnow(), payload=payload)
            )
    except (SQLAlchemyError, TypeError) as error:  # another process stored it first, or a value we cannot store
        log.warning("the %s could not be stored: %s", key, error)


def stored_analyses(engine: Engine) -> list[str]:
    """The analyses with a result stored (each key's name: ``network``, ``portfolio`` …), for a job's report."""
    with engine.connect() as conn:
        keys = conn.scalars(select(RESULTS.c.key)).all()
    return sorted({_name_in(key) for key in keys})


def _name_in(key_text: str) -> str:
    """The analysis a stored key names: the repr of a name, or of a tuple led by one."""
    try:
        key = ast.literal_eval(key_text)
    except (ValueError, SyntaxError):  # a key holding more than literals: shown as it is
        return key_text
    return str(key[0] if isinstance(key, tuple) and key else key)


def forget_stored(conn: Connection) -> int:
    """Delete every stored result inside ``conn``'s transaction (an erasure); how many there were."""
    return int(conn.execute(delete(RESULTS)).rowcount)
