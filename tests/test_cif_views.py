"""The 360° view, customer search, data-quality report and retention rules on a small real store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import DBAPIError

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cif.parts import PartReads
from patron.cif.quality import quality_report
from patron.cif.retention import apply_retention, stale_prospects
from patron.cif.sealed import new_key
from patron.cif.store import for_lookups, read_once_more
from patron.cif.view import ORDER_SUMMARY, RECORD_READS, customer_view, list_customers, resolve_customer
from patron.engage.consent import record_consent
from patron.errors import NotFoundError
from patron.settings import get_settings
from patron.value.latest import LATEST_SCORE
from patron.value.schema import CustomerScore, ScoreRun

PEOPLE: dict[str, Any] = {
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


@pytest.mark.postgres
def test_one_round_trip_reads_exactly_what_the_separate_statements_read(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the one-statement read is PostgreSQL's (SQLite reads in-process)")
    monkeypatch.setenv("PATRON_ENCRYPTION_KEY", new_key())  # decrypted through the column types as well
    get_settings.cache_clear()
    mapping: dict[str, Any] = {
        "source": {"system": "crm", "date_format": "%Y-%m-%d"},
        "customers": {
            **PEOPLE["customers"], "phone": "phone",
            "profile": {"postal_code": "zip", "street": "street", "birth_year": {"column": "born", "type": "integer"}},
            "attributes": {
                "score": {"column": "score", "type": "number"}, "renewal": {"column": "renew", "type": "date"},
                "plan": "plan",
            },
        },
    }  # fmt: skip
    path = tmp_path / "people.csv"
    path.write_text(
        "id,email,phone,first,last,kind,since,zip,street,born,score,renew,plan\n"
        "1,zoë@example.com,+1 212 555 0100,Zoë,Ångström,customer,2020-01-01,75001,1 Rue Ö,1980,12.345,2026-02-01,"
        "gold\n",
        encoding="utf-8",
    )
    import_file(engine, path, parse_mapping(mapping), rejects_dir=tmp_path)
    orders = tmp_path / "orders.csv"
    orders.write_text("id,date,amount,cat\n1,2023-03-01,20.00,books\n1,2023-01-01,5.50,music\n")
    import_file(engine, orders, parse_mapping(ORDERS), rejects_dir=tmp_path)
    customer_id = resolve_customer(engine, "crm:1")
    record_consent(engine, customer_id, channel="email")
    record_consent(engine, customer_id, channel="email", status="withdrawn")
    run = insert(table_of(ScoreRun)).values(
        as_of=dt.date(2024, 1, 1), source="crm", model="bgnbd", period="W", currency="USD", horizon_months=36,
        annual_discount_rate=0.1, default_margin_rate=0.3, parameters={}, log_likelihood=-1.0, customers=1,
        excluded={}, tier_cuts=[0.2, 0.5],
    )  # fmt: skip
    with engine.begin() as conn:
        run_id = conn.execute(run.returning(table_of(ScoreRun).c.id)).scalar_one()
        conn.execute(
            insert(table_of(CustomerScore)).values(
                run_id=run_id, customer_id=customer_id, frequency=1, recency=8.5, age=60.25, p_alive=0.75,
                expected_purchases=1.5, expected_margin_per_purchase_minor=300, clv_minor=450,
                value_at_risk_minor=112, revenue_minor=2550, tier="A", rank=1,
            )
        )  # fmt: skip
    reads = PartReads(**RECORD_READS, orders=ORDER_SUMMARY, value=LATEST_SCORE)
    with engine.connect() as conn:
        apart = reads.fetch(conn, {"customer_id": customer_id}, one_round_trip=False)
        together = reads.fetch(conn, {"customer_id": customer_id}, one_round_trip=True)
    assert together == apart
    assert together["customer"][0]["first_name"] == "Zoë"
    assert [row["status"] for row in together["consents"]] == ["granted", "withdrawn"]  # in their order
    assert together["orders"][0]["revenue_minor"] == 2550
    assert isinstance(together["consents"][0]["recorded_at"], dt.datetime)
    assert {row["key"] for row in together["attributes"]} == {"plan", "renewal", "score"}
    newest_first = select(s.Consent.status).where(s.Consent.customer_id == customer_id)
    reversed_reads = PartReads(consents=newest_first.order_by(s.Consent.recorded_at.desc(), s.Consent.id.desc()))
    with engine.connect() as conn:
        statuses = reversed_reads.fetch(conn, {}, one_round_trip=True)["consents"]
    assert [row["status"] for row in statuses] == ["withdrawn", "granted"]  # the statement's order, not the table's
    get_settings.cache_clear()


@pytest.mark.postgres
def test_a_lookup_on_a_dropped_connection_is_read_again_on_a_fresh_one(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("lookups keep their own unpinged pool on PostgreSQL only")
    lookups = for_lookups(engine)

    def kill_the_pooled_connection() -> int:
        with lookups.connect() as conn:  # this connection goes back to the pool and is killed there
            backend = int(conn.scalar(select(func.pg_backend_pid())) or 0)
        with engine.connect() as conn:
            assert conn.scalar(select(func.pg_terminate_backend(backend))) is True
        return backend

    kill_the_pooled_connection()
    with pytest.raises(DBAPIError), lookups.connect() as conn:  # nothing checks it on checkout: the read fails
        conn.execute(select(1))
    backend = kill_the_pooled_connection()
    assert read_once_more(engine, lambda conn: conn.scalar(select(func.pg_backend_pid()))) != backend


def test_a_reference_is_a_source_id_before_it_is_an_e_mail(engine: Engine, tmp_path: Path) -> None:
    """`system:id` comes first even when the id holds an "@" (the README's own form, `cdnow:00001`, too)."""
    path = tmp_path / "people.csv"
    path.write_text("id,email\nann@shop,ann@example.com\nbob,bob@example.com\n", encoding="utf-8")
    mapping = {"source": {"system": "crm"}, "customers": {"external_id": "id", "email": "email"}}
    import_file(engine, path, parse_mapping(mapping), rejects_dir=tmp_path)
    ann = resolve_customer(engine, "ann@example.com")
    assert resolve_customer(engine, "crm:ann@shop") == ann
    assert resolve_customer(engine, "crm:bob") == resolve_customer(engine, "bob@example.com") != ann
    assert resolve_customer(engine, "ann@shop") == ann  # a bare id of one source
    with pytest.raises(NotFoundError):
        resolve_customer(engine, "crm:nobody@shop")
