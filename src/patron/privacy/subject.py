"""Subject access (everything held about a person) and erasure (the person removed, the statistics kept).

Every table that refers to a customer is found from the schema's foreign keys, so a table added later is covered
without touching this module. Erasure overwrites each column marked ``info={"pii": True}`` (NULL where allowed,
otherwise an irreversible pseudonym: a keyed hash whose key is thrown away), replaces JSON details, redacts the
person's values in every file under the data folder (import rejects), and leaves amounts, dates and keys as they
are, so revenue and every aggregate stay the same. On SQLite the file is then vacuumed and the write-ahead log
truncated, so the old values do not linger in free pages; on PostgreSQL the touched tables are vacuumed.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import secrets
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, Engine, Table, insert, select, text, update

from patron.cif.columns import table_of, utcnow
from patron.cif.formats import spreadsheet_safe
from patron.cif.identity.merge import forget_merged_profiles, merged_group
from patron.cif.identity.records import drop_keys
from patron.cif.ledger import audit, require_customer
from patron.cif.stored_results import forget_stored
from patron.privacy.ledger_file import append_to_ledger_file
from patron.privacy.schema import Erasure
from patron.schema import Base

CUSTOMERS = Base.metadata.tables["customers"]
ERASED_STATUS = "anonymised"
MIN_LENGTH = 3  # shorter values (initials, a gender letter) would match everywhere in a file


def customer_columns() -> list[tuple[Table, Column[Any]]]:
    """(table, column) for every column that refers to customers.id, plus customers.id itself."""
    found: list[tuple[Table, Column[Any]]] = []
    for table in Base.metadata.sorted_tables:
        if table.name == "customers":
            found.append((table, table.c.id))
            continue
        for column in table.columns:
            if any(fk.column.table.name == "customers" for fk in column.foreign_keys):
                found.append((table, column))
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def subject_access(engine: Engine, customer_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every row about the customer, table by table (JSON-ready): the answer to a subject access request."""
    with engine.connect() as conn:
        require_customer(conn, customer_id)
        held: dict[str, list[dict[str, Any]]] = {}
        for table, column in customer_columns():
            rows = conn.execute(select(table).where(column == customer_id)).all()
            if rows:
                key = table.name if table.name not in held else f"{table.name}.{column.name}"
                held[key] = [{name: _plain(value) for name, value in row._mapping.items()} for row in rows]
    return held


def write_subject_access(engine: Engine, customer_id: int, folder: Path) -> list[Path]:
    """The subject access answer as one JSON file and one CSV per table in ``folder``."""
    held = subject_access(engine, customer_id)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / f"customer-{customer_id}.json"]
    written[0].write_text(json.dumps(held, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    for name, rows in held.items():
        path = folder / f"customer-{customer_id}-{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(
                {k: spreadsheet_safe(json.dumps(v) if isinstance(v, dict | list) else v) for k, v in r.items()}
                for r in rows
            )
        written.append(path)
    return written


@dataclass(frozen=True)
class ErasureResult:
    erasure_id: int
    rows: dict[str, int]
    files: list[str]
    values_removed: int


def erase_customer(
    engine: Engine, customer_id: int, *, requested_by: str, data_dir: Path | None = None, interface: str = "cli"
) -> ErasureResult:
    """Erase the person everywhere Patron keeps them: the record and every record merged into it (each gets its
    erasure record); the merge ledger's copies of their profile go too, so no merge of theirs can be split."""
    with engine.begin() as conn:
        require_customer(conn, customer_id)
        group = merged_group(conn, customer_id)
        forget_merged_profiles(conn, group)
        drop_keys(conn, group)
    results = [
        _erase_one(engine, member, requested_by=requested_by, data_dir=data_dir, interface=interface)
        for member in group
    ]
    rows: dict[str, int] = {}
    for result in results:
        for table, count in result.rows.items():
            rows[table] = rows.get(table, 0) + count
    files = sorted({path for result in results for path in result.files})
    return ErasureResult(results[0].erasure_id, rows, files, sum(r.values_removed for r in results))


def _erase_one(
    engine: Engine, customer_id: int, *, requested_by: str, data_dir: Path | None = None, interface: str = "cli"
) -> ErasureResult:
    """Erase one record's personal data everywhere Patron keeps it; record that it was done."""
    held = subject_access(engine, customer_id)  # also: NotFoundError for an unknown customer
    secrets_found = _personal_values(held)
    key = secrets.token_bytes(32)  # used once, never stored: the pseudonyms cannot be reversed

    def pseudonym(value: object) -> str:
        return "erased:" + hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:24]

    def replacement(column: Column[Any], value: object) -> object:
        if isinstance(column.type, JSON):
            return {"erased": True}
        return None if column.nullable else pseudonym(value)

    changed: dict[str, int] = {}
    with engine.begin() as conn:
        for table, column in customer_columns():
            targets = [
                c for c in table.columns if c.info.get("pii") or (isinstance(c.type, JSON) and c.name == "details")
            ]
            if not targets and table.name != "customers":
                continue
            for row in conn.execute(select(table).where(column == customer_id)).all():
                values = {
                    c.name: replacement(c, row._mapping[c.name]) for c in targets if row._mapping[c.name] is not None
                }
                if table.name == "customers":
                    values["status"] = ERASED_STATUS
                if not values:
                    continue
                where = [pk == row._mapping[pk.name] for pk in table.primary_key.columns]
                conn.execute(update(table).where(*where).values(values))
                changed[table.name] = changed.get(table.name, 0) + 1
        # Stored analyses name customers by id: none computed with this person outlives the erasure.
        if dropped := forget_stored(conn):
            changed["stored_results"] = dropped
    files = _redact_files(data_dir, secrets_found) if data_dir else []
    _compact(engine, sorted(changed))
    with engine.begin() as conn:
        erasure_id = conn.execute(
            insert(table_of(Erasure))
            .values(customer_id=customer_id, requested_by=requested_by, interface=interface, rows=changed,
                    files=[str(f) for f in files], values_removed=len(secrets_found))
            .returning(table_of(Erasure).c.id)
        ).scalar_one()  # fmt: skip
    audit(
        engine, actor=requested_by, interface=interface, action="erase", entity="customer", entity_id=customer_id,
        details={"erasure": int(erasure_id)},
    )  # fmt: skip
    if data_dir is not None:  # kept outside the store too: a restore of an older backup erases them again
        append_to_ledger_file(data_dir, customer_id, utcnow().isoformat(timespec="seconds"), requested_by)
    return ErasureResult(int(erasure_id), changed, [str(f) for f in files], len(secrets_found))


def _is_details(column: Column[Any]) -> bool:
    """Free-form JSON about the customer (interaction details): may quote anything, so it goes whole."""
    return isinstance(column.type, JSON) and column.name == "details"


def _personal_values(held: dict[str, list[dict[str, Any]]]) -> set[str]:
    """The strings to hunt down in files: every PII column's value and every string inside JSON details."""
    found: set[str] = set()
    pii = {(t.name, c.name) for t in Base.metadata.sorted_tables for c in t.columns if c.info.get("pii")}
    for name, rows in held.items():
        table = name.split(".")[0]
        for row in rows:
            for column, value in row.items():
                if (table, column) in pii and value is not None:
                    found.add(str(value))
    return {value for value in found if len(value) >= MIN_LENGTH}


def _redact_files(data_dir: Path, values: set[str]) -> list[Path]:
    """Redact, in every text file under ``data_dir`` (the store itself excepted), each line that quotes one of the
    person's values: the whole line, because it also holds their other data in whatever form it arrived (a phone
    number as typed, not as stored). In CSV files the first field (e.g. the rejected row's line number) stays."""
    if not values or not data_dir.is_dir():
        return []
    redacted = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        if path.suffix in (".db", ".db-wal", ".db-shm") or path.name.endswith(("-wal", "-shm")):
            continue
        try:
            content = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if not any(value in content for value in values):
            continue
        if path.suffix == ".csv":
            cleaned = _redact_csv(content, values)
        else:
            lines = content.splitlines(keepends=True)
            cleaned = "".join("[erased]\n" if any(v in line for v in values) else line for line in lines)
        path.write_text(cleaned, encoding="utf-8")
        redacted.append(path)
    return redacted


def _redact_csv(content: str, values: set[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(content)):
        quotes = any(value in field for field in row for value in values)
        writer.writerow(row[:1] + ["[erased]"] * (len(row) - 1) if quotes else row)
    return out.getvalue()


def _compact(engine: Engine, tables: list[str]) -> None:
    """Make the overwritten values physically gone: SQLite rewrites its file; PostgreSQL vacuums the tables."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in tables:
            conn.execute(text(f'VACUUM "{name}"'))
