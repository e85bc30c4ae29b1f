"""The audit log's export: who read or changed which customer's data, when, through which interface.

Entries are written by ``cif/ledger.py`` (append-only).
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from sqlalchemy import Engine, select

from patron.auth.trail import flush_reads
from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.formats import safe_row

AUDIT = table_of(s.AuditEvent)


def export_audit(engine: Engine, path: Path, *, since: dt.datetime | None = None) -> int:
    """Write the audit log (oldest first, optionally from ``since``) to a CSV file; returns the rows written."""
    flush_reads(engine)  # reads are written in batches: the export must hold the last ones too
    query = select(AUDIT).order_by(AUDIT.c.id)
    if since is not None:
        query = query.where(AUDIT.c.at >= since)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with engine.connect() as conn, path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "at", "actor", "interface", "action", "entity", "entity_id", "details"])
        for row in conn.execute(query):
            writer.writerow(safe_row([row.id, row.at.isoformat(), row.actor, row.interface, row.action, row.entity,
                                      row.entity_id, row.details or ""]))  # fmt: skip
            written += 1
    return written
