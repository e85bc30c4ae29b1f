"""Customers as person records (names, birth date, contacts, address), normalised for matching, and their keys.

Records are read through SQLAlchemy, so names and identities stored as tokens (``PATRON_ENCRYPTION_KEY``) arrive
decrypted in this process only; the blocking keys are written back as deterministic tokens (``MatchKey.key``).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl
from sqlalchemy import Connection, delete, func, insert, select

from patron.cif import schema as s
from patron.cif.identity.comparisons import BLOCKING_KEYS, FIELDS, blocking_keys
from patron.cif.identity.schema import MatchKey
from patron.cif.sealed import keyed_digest
from patron.cif.writers.state import chunks

C = s.table_of(s.Customer)
P = s.table_of(s.CustomerProfile)
I = s.table_of(s.Identity)  # noqa: E741
KEYS = s.table_of(MatchKey)
MATCHED_FIELDS = tuple(FIELDS)
ERASED = "anonymised"
CLOSED = ("merged", ERASED)  # records that take no part in matching
_SPACES = re.compile(r"\s+")
_NOT_DIGITS = re.compile(r"\D")


def normalised(value: Any) -> str | None:
    """Unicode-normalised (NFKC), lower case, one space between words; an empty value is missing."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", str(value)).strip().lower()
    text = _SPACES.sub(" ", text)
    return text or None


def person(row: dict[str, Any]) -> dict[str, Any]:
    """One record's matched fields, normalised (dates as ISO text, phones as digits)."""
    record = {field: normalised(row.get(field)) for field in MATCHED_FIELDS}
    birth = row.get("birth_date")
    record["birth_date"] = birth.isoformat() if isinstance(birth, dt.date) else normalised(birth)
    if record["phone"]:
        record["phone"] = _NOT_DIGITS.sub("", record["phone"]) or None
    return record


def _contacts(conn: Connection, ids: Sequence[int] | None) -> dict[int, dict[str, str]]:
    query = select(I.c.customer_id, I.c.kind, I.c.value).where(I.c.kind.in_(("email", "phone"))).order_by(I.c.id)
    found: dict[int, dict[str, str]] = {}
    for chunk in [None] if ids is None else list(chunks(list(ids))):
        scoped = query if chunk is None else query.where(I.c.customer_id.in_(chunk))
        for row in conn.execute(scoped):
            found.setdefault(row.customer_id, {}).setdefault(row.kind, row.value)
    return found


def person_records(
    conn: Connection, ids: Sequence[int] | None = None, *, with_merged: bool = False
) -> list[dict[str, Any]]:
    """Open customers (not merged, not erased) as person records with ``customer_id``; all, or those in ``ids``.
    ``with_merged``: merged records too (training learns what duplicates look like from them)."""
    closed = (ERASED,) if with_merged else CLOSED
    query = (
        select(C.c.id, C.c.first_name, C.c.last_name, P.c.birth_date, P.c.street, P.c.postal_code, P.c.city)
        .select_from(C.outerjoin(P, P.c.customer_id == C.c.id))
        .where(C.c.status.not_in(closed))
        .order_by(C.c.id)
    )
    rows: list[dict[str, Any]] = []
    for chunk in [None] if ids is None else list(chunks(list(ids))):
        scoped = query if chunk is None else query.where(C.c.id.in_(chunk))
        rows += [dict(row) for row in conn.execute(scoped).mappings()]
    contacts = _contacts(conn, ids)
    records = []
    for row in rows:
        row.update(contacts.get(row["id"], {}))
        records.append({"customer_id": row["id"], **person(row)})
    return records


def record_frame(records: Iterable[dict[str, Any]]) -> pl.DataFrame:
    """Person records as a frame with one column per blocking key (what the batch run blocks on)."""
    frame = pl.DataFrame(list(records), schema={"customer_id": pl.Int64, **dict.fromkeys(MATCHED_FIELDS, pl.Utf8)})
    keys = dict.fromkeys(BLOCKING_KEYS, pl.Utf8)
    columns = []
    for name, parts in BLOCKING_KEYS.items():
        pieces = [pl.col(field).str.slice(0, 1) if initial else pl.col(field) for field, initial in parts]
        columns.append(pl.concat_str([pl.lit(f"{name}:"), pl.concat_str(pieces, separator="|")]).alias(name))
    return frame.with_columns(columns).cast(keys)  # type: ignore[arg-type]


def is_matchable(record: dict[str, Any]) -> bool:
    """A record with every matched field empty cannot be compared with anyone."""
    return any(record.get(field) for field in MATCHED_FIELDS)


def refresh_keys(conn: Connection, records: Sequence[dict[str, Any]]) -> int:
    """Store the blocking keys of these records (replacing what they had): how arriving records find them."""
    ids = [record["customer_id"] for record in records]
    for chunk in chunks(ids):
        conn.execute(delete(KEYS).where(KEYS.c.customer_id.in_(chunk)))
    rows = [
        {"customer_id": r["customer_id"], "key": key}
        for r in records
        for key in dict.fromkeys(keyed_digest(k) for k in blocking_keys(r))
    ]
    for start in range(0, len(rows), 50_000):
        conn.execute(insert(KEYS), rows[start : start + 50_000])
    return len(rows)


def refresh_missing_keys(conn: Connection, records: Sequence[dict[str, Any]]) -> int:
    """Store the keys of the records that have none yet (imported while no model or real-time matching was on)."""
    keyed = set(conn.scalars(select(KEYS.c.customer_id).distinct()))
    return refresh_keys(conn, [r for r in records if r["customer_id"] not in keyed])


def drop_keys(conn: Connection, customer_ids: Iterable[int]) -> None:
    for chunk in chunks(list(customer_ids)):
        conn.execute(delete(KEYS).where(KEYS.c.customer_id.in_(chunk)))


def candidates(conn: Connection, record: dict[str, Any], *, limit: int = 200) -> list[int]:
    """Stored customers sharing a blocking key with the record, most shared keys first (at most ``limit``)."""
    keys = [keyed_digest(key) for key in blocking_keys(record)]
    if not keys:
        return []
    shared = func.count().label("shared")
    query = (
        select(KEYS.c.customer_id, shared)
        .where(KEYS.c.key.in_(keys))
        .group_by(KEYS.c.customer_id)
        .order_by(shared.desc(), KEYS.c.customer_id)
        .limit(limit)
    )
    return [row.customer_id for row in conn.execute(query)]
