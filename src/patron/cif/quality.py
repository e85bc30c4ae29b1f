"""Data-quality report: what is missing per source, what was rejected on import, and likely duplicates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, String, case, cast, func, select

from patron.cif import schema as s
from patron.cif.sealed import encrypting

C = s.Customer.__table__.c
P = s.CustomerProfile.__table__.c
I = s.Identity.__table__.c  # noqa: E741


@dataclass
class QualityReport:
    completeness: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    duplicate_candidates: list[dict[str, Any]] = field(default_factory=list)


def quality_report(engine: Engine, *, duplicate_limit: int = 50) -> QualityReport:
    """Completeness of the contact fields per source, import rejects per column, duplicate candidates."""
    report = QualityReport()
    email_holders = select(I.customer_id).where(I.kind == "email")
    phone_holders = select(I.customer_id).where(I.kind == "phone")
    completeness = (
        select(
            C.source,
            func.count().label("customers"),
            func.sum(case((C.id.in_(email_holders), 0), else_=1)).label("email"),
            func.sum(case((C.id.in_(phone_holders), 0), else_=1)).label("phone"),
            func.sum(case((C.display_name.is_(None) & C.last_name.is_(None), 1), else_=0)).label("name"),
            func.sum(case((C.acquired_on.is_(None), 1), else_=0)).label("acquired_on"),
            func.sum(case((P.postal_code.is_(None), 1), else_=0)).label("postal_code"),
            func.sum(case((P.birth_year.is_(None), 1), else_=0)).label("birth_year"),
        )
        .outerjoin(s.CustomerProfile.__table__, P.customer_id == C.id)
        .where(C.status != "anonymised")
        .group_by(C.source)
        .order_by(C.source)
    )
    runs = s.ImportRun.__table__.c
    latest = (
        select(runs.source, runs.path, func.max(runs.id).label("id"))
        .where(runs.status == "done")
        .group_by(runs.source, runs.path)
        .subquery()
    )
    with engine.connect() as conn:
        for row in conn.execute(completeness).mappings():
            total = row["customers"]
            for name in ("email", "phone", "name", "acquired_on", "postal_code", "birth_year"):
                missing = int(row[name] or 0)
                report.completeness.append(
                    {
                        "source": row["source"],
                        "field": name,
                        "customers": total,
                        "missing": missing,
                        "missing_pct": round(100.0 * missing / total, 1) if total else 0.0,
                    }
                )
        for run in conn.execute(
            select(runs.source, runs.path, runs.counts, runs.rejects_path).join(latest, runs.id == latest.c.id)
        ).mappings():
            counts = run["counts"] or {}
            for key, value in sorted(counts.items()):
                if key.startswith("rejected:"):
                    report.rejected.append(
                        {
                            "source": run["source"],
                            "column": key.removeprefix("rejected:"),
                            "rows": value,
                            "rejects_file": run["rejects_path"],
                        }
                    )
        report.duplicate_candidates = _duplicates(conn, duplicate_limit)
    return report


def _duplicates(conn: Any, limit: int) -> list[dict[str, Any]]:
    """Customers sharing a normalised name and postal code (or birth year): candidates for merging."""
    name = func.coalesce(C.first_name, "") + " " + func.coalesce(C.last_name, "")
    if not encrypting():  # encrypted names are equal only when written alike, so only those group together
        name = func.lower(func.trim(name))
    key = func.coalesce(P.postal_code, cast(P.birth_year, String(8)), "")
    query = (
        select(
            name.label("name"),
            key.label("postal_or_birth_year"),
            func.count().label("customers"),
            func.min(C.id).label("first_id"),
            func.max(C.id).label("last_id"),
        )
        .outerjoin(s.CustomerProfile.__table__, P.customer_id == C.id)
        .where(C.last_name.is_not(None), C.status != "anonymised")
        .group_by(name, key)
        .having(func.count() > 1)
        .order_by(func.count().desc())
        .limit(limit)
    )
    groups = [dict(row) for row in conn.execute(query).mappings()]
    if encrypting():  # the grouped tokens do not decrypt: show the first customer's own values
        firsts = select(C.id, C.first_name, C.last_name, P.postal_code, P.birth_year).outerjoin(
            s.CustomerProfile.__table__, P.customer_id == C.id
        )
        shown = {row.id: row for row in conn.execute(firsts.where(C.id.in_([g["first_id"] for g in groups])))}
        for group in groups:
            first = shown[group["first_id"]]
            group["name"] = f"{first.first_name or ''} {first.last_name or ''}".strip()
            group["postal_or_birth_year"] = first.postal_code or str(first.birth_year or "")
    return groups
