"""The 360° view, customer search, data-quality report and retention rules on a small real store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from patron.cif import schema as s
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cif.quality import quality_report
from patron.cif.retention import apply_retention, stale_prospects
from patron.cif.view import customer_view, list_customers, resolve_customer
from patron.errors import NotFoundError

PEOPLE = {
    "source": {"system": "crm", "date_format": "%Y-%m-%d"},
    "customers": {
        "external_id": "id",
        "email": "email",
        "first_name": "first",
        "last_name": "last",
        "kind": "kind",
        "acquired_on": "since",
        "profile": {"postal_code": "zip"},
    },
}
ORDERS = {
    "source": {"system": "crm", "date_format": "%Y-%m-%d"},
    "orders": {"customer": "id", "ordered_at": "date", "revenue": "amount", "category": "cat"},
}
EVENTS = {
    "source": {"system": "crm", "datetime_format": "%Y-%m-%d %H:%M"},
    "interactions": {
        "customer": "id",
        "occurred_at": "at",
        "channel": "channel",
        "type": "type",
        "outcome": "outcome",
        "body": "note",
    },
}


@pytest.fixture
def store(engine: Engine, tmp_path: Path) -> Engine:
    def load(name: str, text: str, mapping: dict[str, Any]) -> None:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        import_file(engine, path, parse_mapping(mapping), rejects_dir=tmp_path)

    load(
        "people.csv",
        "id,email,first,last,kind,since,zip\n"
        "1,ann@example.com,Ann,Lee,customer,2020-01-01,75001\n"
        "2,ann.lee@example.com,Ann,Lee,customer,2021-01-01,75001\n"
        "3,old@example.com,Old,Lead,prospect,2019-01-01,\n"
        "4,new@example.com,New,Lead,prospect,2024-05-01,\n",
        PEOPLE,
    )
    load("orders.csv", "id,date,amount,cat\n1,2023-03-01,20.00,books\n1,2023-01-01,5.00,music\n", ORDERS)
    load(
        "events.csv",
        "id,at,channel,type,outcome,note\n1,2023-02-01 10:30,phone,complaint,resolved,late parcel\n"
        "4,2024-06-01 09:00,email,enquiry,,\n",
        EVENTS,
    )
    return engine


def test_customer_view_holds_c_r_p_in_time_order(store: Engine) -> None:
    customer_id = resolve_customer(store, "crm:1")
    assert resolve_customer(store, "ANN@example.com") == customer_id
    view = customer_view(store, customer_id)
    assert view.revenue_by_currency == {"USD": 2500}
    assert [entry.kind for entry in view.timeline] == ["acquired", "order", "interaction", "order"]
    assert view.timeline[2].summary == "inbound complaint via phone: resolved"
    assert {identity["kind"] for identity in view.identities} == {"external", "email"}
    assert view.profile["postal_code"] == "75001"
    with pytest.raises(NotFoundError):
        resolve_customer(store, "crm:999")


def test_list_customers_searches_identities_and_pages(store: Engine) -> None:
    rows, total = list_customers(store, search="example.com", limit=2)
    assert total == 4
    assert len(rows) == 2
    rows, total = list_customers(store, kind="prospect")
    assert total == 2
    first, _ = list_customers(store, search="ann@")
    assert first[0]["currency"] == "USD"
    assert first[0]["orders"] == 2
    assert first[0]["revenue_minor"] == 2500


def test_quality_report_counts_missing_and_finds_duplicate_candidates(store: Engine) -> None:
    report = quality_report(store)
    postal = next(row for row in report.completeness if row["field"] == "postal_code")
    assert (postal["customers"], postal["missing"]) == (4, 2)
    assert [(group["name"], group["customers"]) for group in report.duplicate_candidates] == [("ann lee", 2)]


def test_retention_previews_then_anonymises_only_stale_prospects(store: Engine) -> None:
    now = dt.datetime(2025, 1, 1)
    stale = stale_prospects(store, 12, now=now)
    old = resolve_customer(store, "crm:3")
    assert [item.customer_id for item in stale] == [old]
    assert apply_retention(store, 12, now=now) == 1
    with store.connect() as conn:
        row = conn.execute(select(s.Customer.status, s.Customer.first_name).where(s.Customer.id == old)).one()
        emails = list(
            conn.scalars(select(s.Identity.value).where(s.Identity.customer_id == old, s.Identity.kind == "email"))
        )
        audits = conn.scalar(select(func.count()).where(s.AuditEvent.action == "retention_anonymise"))
    assert tuple(row) == ("anonymised", None)
    assert emails == []
    assert audits == 1
    assert stale_prospects(store, 12, now=now) == []


def test_retention_delete_removes_the_prospect(store: Engine) -> None:
    now = dt.datetime(2026, 1, 1)
    assert apply_retention(store, 12, now=now, mode="delete") == 2
    with store.connect() as conn:
        kinds = list(conn.scalars(select(s.Customer.kind)))
    assert kinds == ["customer", "customer"]
