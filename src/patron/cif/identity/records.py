"""Customers as person records (names, birth date, contacts, address), normalised for matching, and their keys.

Records are read through SQLAlchemy, so names and identities stored as tokens (``PATRON_ENCRYPTION_KEY``) arrive
decrypted in this process only, and normalised column-wise with Polars (the batch path reads the whole file). The
blocking keys are stored as keyed 64-bit digests (``sealed.keyed_digest``), never as the names they are made of.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import polars as pl
from sqlalchemy import Connection, String, cast, delete, select

from patron.cif import schema as s
from patron.cif.identity.comparisons import BLOCKING_KEYS, FIELDS
from patron.cif.identity.schema import MatchKey
from patron.cif.sealed import keyed_digest
from patron.cif.writers.state import chunks

C = s.table_of(s.Customer)
P = s.table_of(s.CustomerProfile)
I = s.table_of(s.Identity)  # noqa: E741
KEYS = s.table_of(MatchKey)
BIRTH_TEXT = cast(P.c.birth_date, String)  # ISO text on both stores: no date object made per row only to print it
MATCHED_FIELDS = tuple(FIELDS)
ERASED = "anonymised"
CLOSED = ("merged", ERASED)  # records that take no part in matching
SCHEMA = {"customer_id": pl.Int64, **dict.fromkeys(MATCHED_FIELDS, pl.Utf8)}


def normalised(frame: pl.DataFrame) -> pl.DataFrame:
    """Person records with their matched fields normalised: Unicode NFKC, lower case, one space between words,
    phones as digits, an empty value missing. The one definition, for the stored records and an arriving one."""

    def text(name: str) -> pl.Expr:
        cleaned = pl.col(name).cast(pl.Utf8).str.normalize("NFKC").str.strip_chars().str.to_lowercase()
        return cleaned.str.replace_all(r"\s+", " ")

    def present(expr: pl.Expr) -> pl.Expr:
        return pl.when(expr == "").then(None).otherwise(expr)

    columns = [present(text(f)).alias(f) for f in MATCHED_FIELDS if f != "phone"]
    columns.append(present(text("phone").str.replace_all(r"\D", "")).alias("phone"))
    return frame.with_columns(columns)


def person(row: dict[str, Any]) -> dict[str, Any]:
    """One arriving record's matched fields, normalised exactly as the stored ones (dates as ISO text)."""
    raw = {f: row.get(f) for f in MATCHED_FIELDS}
    raw = {f: v.isoformat() if isinstance(v, dt.date) else None if v is None else str(v) for f, v in raw.items()}
    return normalised(pl.DataFrame([raw], schema=dict.fromkeys(MATCHED_FIELDS, pl.Utf8))).row(0, named=True)


def _contacts(conn: Connection, ids: Sequence[int] | None) -> pl.DataFrame:
    """Each customer's first e-mail and phone (identities), as columns."""
    query = select(I.c.customer_id, I.c.kind, I.c.value).where(I.c.kind.in_(("email", "phone"))).order_by(I.c.id)
    rows: list[Any] = []
    for chunk in [None] if ids is None else list(chunks(list(ids))):
        rows += conn.execute(query if chunk is None else query.where(I.c.customer_id.in_(chunk))).all()
    found = pl.DataFrame(rows, schema={"customer_id": pl.Int64, "kind": pl.Utf8, "value": pl.Utf8}, orient="row")
    first = found.group_by("customer_id", "kind", maintain_order=True).first()
    wide = {"customer_id": pl.Int64, "email": pl.Utf8, "phone": pl.Utf8}
    if first.is_empty():
        return pl.DataFrame(schema=wide)
    pivoted = first.pivot(on="kind", index="customer_id", values="value")
    return pivoted.with_columns(
        [pl.lit(None, pl.Utf8).alias(k) for k in ("email", "phone") if k not in pivoted.columns]
    )


def person_frame(conn: Connection, ids: Sequence[int] | None = None, *, with_merged: bool = False) -> pl.DataFrame:
    """Open customers (not merged, not erased) as normalised person records; all, or those in ``ids``.
    ``with_merged``: merged records too (training learns what duplicates look like from them)."""
    closed = (ERASED,) if with_merged else CLOSED
    query = (
        select(C.c.id, C.c.first_name, C.c.last_name, BIRTH_TEXT, P.c.street, P.c.postal_code, P.c.city)
        .select_from(C.outerjoin(P, P.c.customer_id == C.c.id))
        .where(C.c.status.not_in(closed))
        .order_by(C.c.id)
    )
    rows: list[Any] = []
    for chunk in [None] if ids is None else list(chunks(list(ids))):
        rows += conn.execute(query if chunk is None else query.where(C.c.id.in_(chunk))).all()
    schema = {"customer_id": pl.Int64, "first_name": pl.Utf8, "last_name": pl.Utf8, "birth_date": pl.Utf8,
              "street": pl.Utf8, "postal_code": pl.Utf8, "city": pl.Utf8}  # fmt: skip
    people = pl.DataFrame(rows, schema=schema, orient="row")
    joined = people.join(_contacts(conn, ids), on="customer_id", how="left")
    return normalised(joined).select(list(SCHEMA))


def person_records(
    conn: Connection, ids: Sequence[int] | None = None, *, with_merged: bool = False
) -> list[dict[str, Any]]:
    """``person_frame`` as one dict per record (the real-time path and the review queue)."""
    return person_frame(conn, ids, with_merged=with_merged).to_dicts()


def matchable(frame: pl.DataFrame) -> pl.DataFrame:
    """The records with at least one matched field: one with all of them empty cannot be compared with anyone."""
    return frame.filter(pl.any_horizontal(pl.col(f).is_not_null() for f in MATCHED_FIELDS))


def is_matchable(record: dict[str, Any]) -> bool:
    return any(record.get(field) for field in MATCHED_FIELDS)


def record_frame(records: pl.DataFrame | Sequence[dict[str, Any]]) -> pl.DataFrame:
    """Person records with one column per blocking key (what the batch run blocks on)."""
    frame = records if isinstance(records, pl.DataFrame) else pl.DataFrame(list(records), schema=SCHEMA)
    columns = []
    for name, parts in BLOCKING_KEYS.items():
        pieces = [pl.col(field).str.slice(0, length) if length else pl.col(field) for field, length in parts]
        columns.append(pl.concat_str([pl.lit(f"{name}:"), pl.concat_str(pieces, separator="|")]).alias(name))
    return frame.select(list(SCHEMA)).with_columns(columns)


def refresh_keys(conn: Connection, records: pl.DataFrame | Sequence[dict[str, Any]], *, replace: bool = True) -> int:
    """Store the blocking keys of these records (replacing what they had): how arriving records find them."""
    frame = record_frame(records)
    for chunk in chunks(frame["customer_id"].to_list()) if replace else []:
        conn.execute(delete(KEYS).where(KEYS.c.customer_id.in_(chunk)))
    pairs = (
        frame.unpivot(index="customer_id", on=list(BLOCKING_KEYS), value_name="key")
        .drop_nulls("key")
        .select("customer_id", "key")
    )
    digests = [keyed_digest(key) for key in pairs["key"].to_list()]
    rows = pl.DataFrame({"customer_id": pairs["customer_id"], "key": pl.Series(digests, dtype=pl.Int64)})
    rows = rows.sort("customer_id", "key")  # in the table's own order: appended, not scattered
    _insert_keys(conn, rows)
    return rows.height


def rebuild_keys(conn: Connection, records: pl.DataFrame) -> int:
    """Replace every stored key (a training run): append them all in the table's order, then build the index on the
    key once, which is many times faster than keeping it current through millions of inserts."""
    conn.execute(delete(KEYS))
    indexes = sorted(KEYS.indexes, key=lambda index: str(index.name))
    for index in indexes:
        index.drop(conn)
    written = refresh_keys(conn, records, replace=False)
    for index in indexes:
        index.create(conn)
    return written


def _insert_keys(conn: Connection, rows: pl.DataFrame) -> None:
    """Millions of rows on a first training: the driver's bulk path (COPY on PostgreSQL), not one INSERT each."""
    if rows.is_empty():
        return
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy("COPY match_keys (customer_id, key) FROM STDIN") as copy:
            for row in rows.unique(maintain_order=True).iter_rows():  # COPY has no OR IGNORE
                copy.write_row(row)
        return
    raw = conn.connection.driver_connection  # the same transaction, without a Python object per row in between
    assert raw is not None
    # OR IGNORE: two keys of one customer with one 64-bit digest (odds about 2^-64) are one row, not an error.
    raw.executemany("INSERT OR IGNORE INTO match_keys (customer_id, key) VALUES (?, ?)",
                    zip(rows["customer_id"].to_list(), rows["key"].to_list(), strict=True))  # fmt: skip


def refresh_missing_keys(conn: Connection, records: pl.DataFrame) -> int:
    """Store the keys of the records that have none yet (imported while no model or real-time matching was on)."""
    keyed = pl.Series(list(conn.scalars(select(KEYS.c.customer_id).distinct())), dtype=pl.Int64)
    return refresh_keys(conn, records.filter(~pl.col("customer_id").is_in(keyed)))


def drop_keys(conn: Connection, customer_ids: Sequence[int]) -> None:
    for chunk in chunks(list(customer_ids)):
        conn.execute(delete(KEYS).where(KEYS.c.customer_id.in_(chunk)))
