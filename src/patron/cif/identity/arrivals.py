"""One customer record arriving through the API: written by the importer's own path (validation, identities,
real-time matching), so it is joined to its match, sent to review, or created, in the same call."""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from patron.cif import schema as s
from patron.cif.mapping import parse_mapping
from patron.cif.reader import FLAGGED
from patron.errors import InvalidInputError

CUSTOMER_FIELDS = ("first_name", "last_name", "display_name", "email", "phone")
PROFILE_FIELDS = ("birth_date", "street", "postal_code", "city", "region", "country", "gender")
JOINED = "customers joined to a matching record"
REVIEWED = "possible duplicates sent to review"


@dataclass(frozen=True)
class Arrival:
    customer_id: int
    outcome: str  # created, joined, review, updated, unchanged
    problems: list[str] = field(default_factory=list)  # fields dropped as invalid, with the reason


def receive_customer(
    engine: Engine, *, system: str, external_id: str, fields: dict[str, Any], actor: str, interface: str = "api",
    attributes: dict[str, tuple[str, str]] | None = None,
) -> Arrival:  # fmt: skip
    """Create or update the customer ``system:external_id`` from ``fields`` (and ``attributes``: key → (value, type
    as the mapping names it)); a new one is matched in real time."""
    from patron.cif.importer import import_file  # noqa: PLC0415 - the importer imports this package's matcher

    unknown = sorted(set(fields) - set(CUSTOMER_FIELDS) - set(PROFILE_FIELDS))
    if unknown:
        raise InvalidInputError(f"unknown field(s) {unknown}; known: {', '.join(CUSTOMER_FIELDS + PROFILE_FIELDS)}",
                                field=unknown[0])  # fmt: skip
    given = {name: str(value) for name, value in fields.items() if value is not None and str(value).strip()}
    typed = {key: pair for key, pair in (attributes or {}).items() if pair[0].strip()}
    columns = ["id", *given, *(f"attributes.{key}" for key in typed)]  # a refusal names the field as the form does
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerow([external_id, *given.values(), *(value for value, _ in typed.values())])
    mapping = parse_mapping({
        "source": {"system": system, "format": "csv", "date_format": "%Y-%m-%d"},
        "customers": {"external_id": "id", **{n: n for n in given if n in CUSTOMER_FIELDS},
                      "profile": {n: n for n in given if n in PROFILE_FIELDS},
                      "attributes": {key: {"column": f"attributes.{key}", "type": kind}
                                     for key, (_, kind) in typed.items()}},
    })  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{system}-api.csv"
        path.write_text(out.getvalue(), encoding="utf-8")
        # A caller is told about a bad value and nothing is written (a file import would drop the field and go on).
        trial = import_file(engine, path, mapping, rejects_dir=Path(folder), dry_run=True)
        refused = [r for r in trial.rejects if r.outcome != FLAGGED]
        if refused:
            raise InvalidInputError(f"{refused[0].column}: {refused[0].reason}", field=refused[0].column)
        result = import_file(engine, path, mapping, rejects_dir=Path(folder), actor=actor, interface=interface)
    problems = [f"{r.column}: {r.reason}" for r in result.rejects]  # values kept as given, flagged
    identities = s.table_of(s.Identity)
    with engine.connect() as conn:
        query = select(identities.c.customer_id).where(
            identities.c.kind == "external", identities.c.system == system, identities.c.value == external_id
        )
        customer_id = int(conn.execute(query).scalar_one())
    return Arrival(customer_id, _outcome(result.counts, result.written, result.updated), problems)


def _outcome(counts: dict[str, int], written: int, updated: int) -> str:
    if counts.get(JOINED):
        return "joined"
    if counts.get(REVIEWED):
        return "review"
    if counts.get("customers created"):
        return "created"
    return "updated" if written or updated else "unchanged"
