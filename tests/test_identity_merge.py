"""Merging two records of one person and splitting them again, on both stores: after the merge the survivor holds
the union (orders, identities, consents, cases, campaign contacts, scores); a withdrawn consent on either record
stays withdrawn; the split puts every row back exactly; refusals change nothing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from patron.cif import schema as s
from patron.cif.identity.merge import merge_customers, merge_of, split
from patron.cif.identity.realtime import match_record
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cif.view import resolve_customer
from patron.engage.campaigns import create_campaign, prepare_campaign
from patron.engage.consent import record_consent
from patron.errors import InvalidInputError, NotFoundError
from patron.privacy.subject import erase_customer
from patron.schema import Base
from patron.service.cases import open_case
from patron.value.scoring import score_customers
from tests.conftest import WriteFile

SHOP: dict[str, Any] = {
    "source": {"system": "shop", "format": "csv", "currency": "EUR", "date_format": "%Y-%m-%d"},
    "customers": {
        "external_id": "id", "email": "email", "first_name": "first", "last_name": "last",
        "profile": {"street": "street", "postal_code": "zip", "city": "city", "birth_date": "born"},
    },
    "orders": {"customer": "id", "order_id": "order", "ordered_at": "date", "revenue": "amount"},
}  # fmt: skip
ROWS = (
    "id,email,first,last,street,zip,city,born,order,date,amount\n"
    "c1,ann@example.com,Ann,Lee,1 Elm St,10001,Springfield,,o1,2025-01-15,120.50\n"
    "c1,ann@example.com,Ann,Lee,1 Elm St,10001,Springfield,,o2,2025-03-02,80.00\n"
    "c2,ann.lee@work.example,Anne,Lee,,10001,,1980-02-03,o3,2025-02-01,55.00\n"
    "c3,bob@example.com,Bob,Ray,2 Oak Ave,20002,Shelbyville,1975-05-06,o4,2025-02-11,10.00\n"
)
DERIVED = {"audit_events", "match_keys", "identity_merges", "identity_merge_moves", "identity_merge_changes"}


def snapshot(engine: Engine) -> dict[str, list[str]]:
    """Every row of every table (but the audit log and the merge ledger itself), as sorted text."""
    held = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name not in DERIVED:
                rows = conn.execute(select(table)).all()
                held[table.name] = sorted(json.dumps([str(v) for v in row]) for row in rows)
    return held


@pytest.fixture
def shop(engine: Engine, write_file: WriteFile) -> tuple[Engine, int, int]:
    import_file(engine, write_file("shop.csv", ROWS), parse_mapping(SHOP))
    ann, anne = resolve_customer(engine, "shop:c1"), resolve_customer(engine, "shop:c2")
    record_consent(engine, ann, channel="email", at=dt.datetime(2025, 1, 1))
    record_consent(engine, anne, channel="email", at=dt.datetime(2025, 1, 2))
    record_consent(engine, anne, channel="email", status="withdrawn", at=dt.datetime(2025, 2, 1))
    record_consent(engine, ann, channel="email", at=dt.datetime(2025, 3, 1))  # newer grant on the other record
    open_case(engine, anne, subject="Where is my parcel?")
    create_campaign(engine, "spring", "Spring", rule="orders > 0", subject="Hi", body="Hello", control_share=0.0)
    prepare_campaign(engine, "spring")
    score_customers(engine, source="shop")
    return engine, ann, anne


def count(engine: Engine, table: Any, customer_id: int) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table).where(table.c.customer_id == customer_id)) or 0)


def newest_consent(engine: Engine, customer_id: int) -> str:
    consents = s.table_of(s.Consent)
    with engine.connect() as conn:
        query = (select(consents.c.status).where(consents.c.customer_id == customer_id)
                 .order_by(consents.c.recorded_at.desc(), consents.c.id.desc()).limit(1))  # fmt: skip
        return str(conn.scalar(query))


def test_merge_takes_the_union_and_split_restores_every_row(shop: tuple[Engine, int, int]) -> None:
    engine, ann, anne = shop
    before = snapshot(engine)
    orders, identities = s.table_of(s.Order), s.table_of(s.Identity)
    with engine.begin() as conn:
        (merge,) = merge_customers(conn, [anne, ann], actor="test")
    assert (merge.survivor_id, merge.merged_id) == (ann, anne)  # the oldest record survives
    assert count(engine, orders, ann) == 3
    assert count(engine, orders, anne) == 0
    assert count(engine, identities, ann) == 4  # both external ids and both e-mails
    assert count(engine, Base.metadata.tables["cases"], ann) == 1
    assert newest_consent(engine, ann) == "withdrawn"  # Anne withdrew: it stays withdrawn after the merge
    assert resolve_customer(engine, "shop:c2") == ann
    assert resolve_customer(engine, str(anne)) == ann
    assert resolve_customer(engine, "ann.lee@work.example") == ann
    with engine.connect() as conn:
        profile = conn.execute(select(s.CustomerProfile.birth_date).where(s.CustomerProfile.customer_id == ann))
        assert profile.scalar() == dt.date(1980, 2, 3)  # the survivor's empty birth date filled from Anne's
        assert snapshot(engine) != before
        with pytest.raises(InvalidInputError, match="already merged"):
            merge_customers(conn, [ann, anne], actor="test")

    with engine.begin() as conn:
        split(conn, merge_of(conn, anne), actor="test")
    assert snapshot(engine) == before
    with engine.begin() as conn, pytest.raises(InvalidInputError, match="never merged"):
        merge_of(conn, anne)


def test_refusals_change_nothing(shop: tuple[Engine, int, int]) -> None:
    engine, ann, anne = shop
    bob = resolve_customer(engine, "shop:c3")
    erase_customer(engine, bob, requested_by="test")
    before = snapshot(engine)
    with engine.begin() as conn:
        with pytest.raises(InvalidInputError, match="erased"):
            merge_customers(conn, [ann, bob], actor="test")
        with pytest.raises(InvalidInputError, match="two different"):
            merge_customers(conn, [ann, ann], actor="test")
        with pytest.raises(InvalidInputError, match="never merged"):
            merge_of(conn, anne)
        with pytest.raises(NotFoundError):
            split(conn, 999, actor="test")
        with pytest.raises(InvalidInputError, match="every field"):
            match_record(conn, {"first_name": " ", "email": ""})
    assert snapshot(engine) == before


def test_erasing_a_merged_person_reaches_every_merged_record(shop: tuple[Engine, int, int]) -> None:
    engine, ann, anne = shop
    with engine.begin() as conn:
        merge_customers(conn, [ann, anne], actor="test")
    erase_customer(engine, ann, requested_by="test")
    customers = s.table_of(s.Customer)
    with engine.connect() as conn:
        rows = conn.execute(select(customers.c.id, customers.c.status, customers.c.first_name)
                            .where(customers.c.id.in_([ann, anne]))).all()  # fmt: skip
        assert {(r.status, r.first_name) for r in rows} == {("anonymised", None)}
        with pytest.raises(InvalidInputError, match="erased"):
            split(conn, 1, actor="test")
    assert "Anne" not in json.dumps(snapshot(engine)) + json.dumps(_ledger(engine))


def _ledger(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        changes = Base.metadata.tables["identity_merge_changes"]
        return [json.dumps(row.before) for row in conn.execute(select(changes.c.before))]
