"""Restoring a backup without bringing erased people back: the erasure ledger is replayed after every restore.

A backup taken before an erasure still holds the person. So the ledger of erasures is kept in two places: the
store's ``erasures`` table, and a line per erasure (the customer id, when, by whom; nothing personal) appended to
``erasure-ledger.jsonl`` in the data folder, which survives the store being replaced or lost. ``restore`` reads
both before it replaces the store, and erases again every listed person the restored store still holds.
Copies outside Patron's reach (a backup file someone kept elsewhere, an export) are not changed: docs/PRIVACY.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from patron.cif import schema as s
from patron.cif.backup import restore_store
from patron.cif.columns import table_of
from patron.cif.store import migrate
from patron.privacy.ledger_file import LEDGER_FILE
from patron.privacy.schema import Erasure
from patron.privacy.subject import ERASED_STATUS, erase_customer


def erased_ids(engine: Engine, data_dir: Path | None) -> set[int]:
    """Everyone ever erased, by the store's ledger (when it can be read) and the data folder's."""
    found: set[int] = set()
    try:
        with engine.connect() as conn:
            found |= {int(c) for c in conn.scalars(select(table_of(Erasure).c.customer_id))}
    except SQLAlchemyError:
        pass  # the store being replaced may be the broken one: the data folder's ledger still holds
    if data_dir is not None and (data_dir / LEDGER_FILE).is_file():
        for line in (data_dir / LEDGER_FILE).read_text(encoding="utf-8").splitlines():
            if line.strip():
                found.add(int(json.loads(line)["customer_id"]))
    return found


@dataclass(frozen=True)
class Restored:
    path: Path
    re_erased: list[int]  # people the backup still held, erased again


def restore(engine: Engine, backup: Path, *, data_dir: Path | None, requested_by: str = "restore") -> Restored:
    """Replace the store with ``backup``, then erase again everyone erased since the backup was taken."""
    erased = erased_ids(engine, data_dir)
    path = restore_store(engine, backup)
    migrate(engine)  # an older backup is brought to this version's schema before anything is written
    customers = table_of(s.Customer)
    with engine.connect() as conn:
        held = [
            int(c) for c in conn.scalars(
                select(customers.c.id).where(customers.c.id.in_(sorted(erased)), customers.c.status != ERASED_STATUS)
            )
        ] if erased else []  # fmt: skip
    for customer_id in held:
        erase_customer(engine, customer_id, requested_by=requested_by, data_dir=data_dir, interface="restore")
    return Restored(path, held)
