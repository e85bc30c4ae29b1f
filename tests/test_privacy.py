"""Subject access and erasure on real stores: after erasing one person, no table, no file Patron wrote (the
SQLite file itself included) holds their personal data, and the revenue totals are unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import DBAPIError

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cif.quality import quality_report
from patron.cif.sealed import new_key, seal_existing
from patron.cif.view import list_customers
from patron.engage.campaigns import create_campaign, prepare_campaign
from patron.engage.consent import record_consent
from patron.errors import NotFoundError
from patron.privacy.audit import export_audit
from patron.privacy.schema import Erasure
from patron.privacy.subject import erase_customer, subject_access, write_subject_access
from patron.schema import Base
from patron.service.cases import open_case
from patron.settings import get_settings
from tests.conftest import WriteFile

SHOP: dict[str, Any] = {
    "source": {"system": "shop", "format": "csv", "currency": "EUR", "date_format": "%Y-%m-%d"},
    "customers": {
        "external_id": "id", "email": "email", "phone": "phone", "first_name": "first", "last_name": "last",
        "display_name": "name", "profile": {"street": "street", "postal_code": "zip", "city": "city"},
    },
    "orders": {"customer": "id", "order_id": "order", "ordered_at": "date", "revenue": "amount"},
}  # fmt: skip
NOTES: dict[str, Any] = {
    "source": {"system": "shop", "format": "csv", "date_format": "%Y-%m-%d"},
    "interactions": [
        {"id": "note", "customer": "customer", "occurred_at": "date", "channel": {"value": "phone"},
         "direction": {"value": "inbound"}, "type": {"value": "call"}, "body": "text"}
    ],
}  # fmt: skip
# Unusual strings, so a match in a scan can only be this person's data.
ANNABEL = {
    "email": "annabel.quillfeather@example.com", "phone": "+1 212 555 0147", "first": "Annabel",
    "last": "Quillfeather", "name": "Annabel Quillfeather", "street": "17 Zwirnerstrasse", "zip": "98765",
}  # fmt: skip
STORED_PHONE = "+12125550147"


def _everything_in_the_store(engine: Engine) -> str:
    """Every value of every row of every table, as text."""
    parts = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)).all():
                parts.append(json.dumps([str(value) for value in row], ensure_ascii=False))
    return "\n".join(parts)


def _revenue(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.sum(s.OrderLine.revenue_minor))) or 0)


def test_erasure_leaves_no_trace_of_the_person_and_keeps_the_totals(
    engine: Engine, write_file: WriteFile, tmp_path: Path
) -> None:
    data_dir = tmp_path / "patron-data"
    rejects = data_dir / "rejects"
    a = ANNABEL
    rows = (
        "id,email,phone,first,last,name,street,zip,city,order,date,amount\n"
        f"c1,{a['email']},{a['phone']},{a['first']},{a['last']},{a['name']},{a['street']},{a['zip']},Springfield,o1,2025-01-15,120.50\n"
        f"c1,{a['email']},{a['phone']},{a['first']},{a['last']},{a['name']},{a['street']},{a['zip']},Springfield,o2,2025-03-02,80.00\n"
        f"c1,{a['email']},{a['phone']},{a['first']},{a['last']},{a['name']},{a['street']},{a['zip']},Springfield,o3,2025-13-45,9.99\n"
        "c2,bob.rayworth@example.org,+1 212 555 0199,Bob,Rayworth,Bob Rayworth,1 Main St,10001,Springfield,o4,"
        "2025-02-01,55.00\n"
    )  # fmt: skip
    result = import_file(engine, write_file("shop.csv", rows), parse_mapping(SHOP), rejects_dir=rejects)
    assert result.rejected == 1  # the bad date: the rejects file now quotes Annabel's whole row
    assert a["email"] in next(rejects.iterdir()).read_text()
    notes = "note,customer,date,text\nn1,c1,2025-03-03,Annabel Quillfeather called about 17 Zwirnerstrasse\n"
    import_file(engine, write_file("notes.csv", notes), parse_mapping(NOTES))
    with engine.connect() as conn:
        annabel = conn.scalar(select(s.Identity.customer_id).where(s.Identity.value == "c1"))
        bob = conn.scalar(select(s.Identity.customer_id).where(s.Identity.value == "c2"))
    assert annabel is not None
    record_consent(engine, annabel, channel="email")
    create_campaign(engine, "spring", "Spring", rule="orders > 0", subject="Hi {{ first_name }}", body="Hello",
                    control_share=0.0)  # fmt: skip
    prepare_campaign(engine, "spring")
    open_case(
        engine, annabel, subject="Refund", description="Annabel Quillfeather wants a refund, call +1 212 555 0147"
    )

    held = subject_access(engine, annabel)
    assert {
        "customers",
        "identities",
        "customer_profiles",
        "orders",
        "interactions",
        "campaign_contacts",
        "cases",
    } <= set(held)
    answer = write_subject_access(engine, annabel, tmp_path / "access")
    assert a["email"] in answer[0].read_text(encoding="utf-8")
    revenue = _revenue(engine)

    erased = erase_customer(engine, annabel, requested_by="dpo", data_dir=data_dir)

    personal = [a["email"], STORED_PHONE, a["phone"], a["first"], a["last"], a["street"], "Zwirnerstrasse"]
    store = _everything_in_the_store(engine)
    for value in personal:
        assert value not in store, value
    for path in [p for p in data_dir.rglob("*") if p.is_file()]:
        content = path.read_bytes()
        for value in personal:
            assert value.encode() not in content, (path, value)
    assert _revenue(engine) == revenue
    assert "bob.rayworth@example.org" in store  # nobody else's data was touched
    with engine.connect() as conn:
        record = conn.execute(select(table_of(Erasure))).one()
        status = conn.scalar(select(s.Customer.status).where(s.Customer.id == annabel))
        orders = conn.scalar(select(func.count()).select_from(s.Order).where(s.Order.customer_id == annabel))
    assert status == "anonymised"
    assert orders == 3 - 1  # the two good orders stay, with their amounts
    assert record.requested_by == "dpo"
    assert record.rows == erased.rows
    assert erased.rows["identities"] >= 3  # external id, e-mail, phone
    assert erased.files  # the rejects file was redacted
    assert bob is not None
    with pytest.raises(NotFoundError):
        subject_access(engine, 10**9)


def test_the_sqlite_file_itself_keeps_no_erased_value(sqlite_engine: Engine, write_file: WriteFile) -> None:
    a = ANNABEL
    rows = "id,email,phone,first,last,name,street,zip,city,order,date,amount\n" + "".join(
        f"c{n},{n}{a['email']},{a['phone'][:-2]}{n:02d},{a['first']},{a['last']},{a['name']},{a['street']},{a['zip']},X,o{n},2025-01-15,10\n"
        for n in range(1, 40)
    )  # fmt: skip
    import_file(sqlite_engine, write_file("shop.csv", rows), parse_mapping(SHOP))
    database = Path(str(sqlite_engine.url.database))
    with sqlite_engine.connect() as conn:
        everyone = [int(c) for c in conn.scalars(select(s.Customer.id))]
    for customer in everyone:
        erase_customer(sqlite_engine, customer, requested_by="dpo")
    sqlite_engine.dispose()
    raw = database.read_bytes() + b"".join(p.read_bytes() for p in database.parent.glob(database.name + "-*"))
    for value in (a["email"], a["last"], "Zwirnerstrasse"):
        assert value.encode() not in raw, value


def test_the_audit_log_is_append_only_and_exports(engine: Engine, write_file: WriteFile, tmp_path: Path) -> None:
    people = write_file("people.csv", "id,name\n1,Ida Ledgerwood\n")
    mapping = {"source": {"system": "crm", "format": "csv"}, "customers": {"external_id": "id", "display_name": "name"}}
    import_file(engine, people, parse_mapping(mapping))
    with engine.connect() as conn:
        ida = int(conn.scalar(select(s.Customer.id)) or 0)
    erase_customer(engine, ida, requested_by="dpo", interface="api")
    audit = table_of(s.AuditEvent)
    with engine.connect() as conn:
        before = conn.execute(select(audit).order_by(audit.c.id)).all()
    assert [(row.actor, row.action, row.entity_id, row.interface) for row in before if row.action == "erase"] == [
        ("dpo", "erase", ida, "api")
    ]
    for statement in (update(audit).values(actor="someone else"), delete(audit)):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    with engine.connect() as conn:
        assert conn.execute(select(audit).order_by(audit.c.id)).all() == before
    written = export_audit(engine, tmp_path / "audit.csv")
    exported = (tmp_path / "audit.csv").read_text().splitlines()
    assert written == len(before) == len(exported) - 1
    assert exported[-1].split(",")[2:5] == ["dpo", "api", "erase"]


def test_personal_free_text_is_sealed_at_rest_and_read_in_clear(
    engine: Engine, write_file: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PATRON_ENCRYPTION_KEY", raising=False)
    get_settings.cache_clear()
    a = ANNABEL
    rows = "id,email,phone,first,last,name,street,zip,city,order,date,amount\n"
    person = f"c1,{a['email']},{a['phone']},{a['first']},{a['last']},{a['name']},{a['street']},{a['zip']}"
    before = rows + person + ",X,o1,2025-01-15,10\n"
    import_file(engine, write_file("before.csv", before), parse_mapping(SHOP))  # written in clear: no key yet

    monkeypatch.setenv("PATRON_ENCRYPTION_KEY", new_key())
    get_settings.cache_clear()
    later = rows + "c2,bo@example.org,,Bo,Lindqvist,Bo Lindqvist,3 Fjordvägen,11122,Y,o2,2025-02-01,20\n"
    import_file(engine, write_file("later.csv", later), parse_mapping(SHOP))
    notes = "note,customer,date,text\nn1,c2,2025-02-02,Bo Lindqvist asked about Fjordvägen delivery\n"
    import_file(engine, write_file("notes.csv", notes), parse_mapping(NOTES))

    def stored(sql: str) -> list[str]:
        with engine.connect() as conn:
            return [str(value) for (value,) in conn.exec_driver_sql(sql).all() if value is not None]

    streets = stored("SELECT street FROM customer_profiles ORDER BY customer_id")
    assert streets[0] == a["street"]  # from before the key
    assert streets[1].startswith("enc:v1:")
    assert "Fjord" not in streets[1]
    assert all(body.startswith("enc:v1:") for body in stored("SELECT body FROM interactions"))
    with engine.connect() as conn:
        clear = conn.execute(select(s.CustomerProfile.street).order_by(s.CustomerProfile.customer_id)).scalars().all()
        body = conn.execute(select(s.Interaction.body)).scalar_one()
    assert clear == [a["street"], "3 Fjordvägen"]
    assert body == "Bo Lindqvist asked about Fjordvägen delivery"

    assert seal_existing(engine) == {
        "customers.display_name": 1, "customers.first_name": 1, "customers.last_name": 1,
        "identities.value": 3, "customer_profiles.street": 1, "customer_profiles.postal_code": 1,
    }  # fmt: skip
    assert all(value.startswith("enc:v1:") for value in stored("SELECT street FROM customer_profiles"))
    with engine.connect() as conn:
        again = select(s.CustomerProfile.street).order_by(s.CustomerProfile.customer_id)
        assert conn.execute(again).scalars().all() == clear

    monkeypatch.delenv("PATRON_ENCRYPTION_KEY")
    get_settings.cache_clear()  # the key is lost: sealed text cannot be read, and says so
    with engine.connect() as conn:
        assert conn.execute(select(s.CustomerProfile.street)).scalars().all() == ["[encrypted]", "[encrypted]"]
    get_settings.cache_clear()


def test_names_and_identities_are_encrypted_yet_matched_searched_and_grouped(
    engine: Engine, write_file: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PATRON_ENCRYPTION_KEY", raising=False)
    get_settings.cache_clear()
    header = "id,email,phone,first,last,name,street,zip,city,order,date,amount\n"
    old = header + "c0,old@example.com,,Ola,Nordmann,Ola Nordmann,1 Gate,0150,Oslo,o0,2025-01-02,5\n"
    import_file(engine, write_file("old.csv", old), parse_mapping(SHOP))  # in clear: before the key

    monkeypatch.setenv("PATRON_ENCRYPTION_KEY", new_key())
    get_settings.cache_clear()
    a = ANNABEL
    person = f"{a['email']},{a['phone']},{a['first']},{a['last']},{a['name']},{a['street']},{a['zip']},X"
    rows = header + f"c1,{person},o1,2025-01-15,10\n"
    first = import_file(engine, write_file("shop.csv", rows), parse_mapping(SHOP))
    again = import_file(engine, write_file("shop.csv", rows), parse_mapping(SHOP))
    other_id = header + f"c2,{person},o2,2025-01-16,20\n"  # a new id with a known e-mail joins that customer
    import_file(engine, write_file("shop2.csv", other_id), parse_mapping(SHOP))
    assert seal_existing(engine)["identities.value"] == 2  # Ola's e-mail and his id in the shop

    def stored(sql: str) -> list[str]:
        with engine.connect() as conn:
            return [str(value) for (value,) in conn.exec_driver_sql(sql).all() if value is not None]

    raw = stored("SELECT value FROM identities") + stored("SELECT display_name FROM customers")
    raw += stored("SELECT first_name FROM customers") + stored("SELECT postal_code FROM customer_profiles")
    assert raw
    assert all(value.startswith("det:v1:") for value in raw)
    assert not any(secret in value for value in raw for secret in ("quill", "Quill", "example", "Nordmann", "98765"))
    # The same e-mail in two rows is one customer; the re-run matches the encrypted identities and adds nothing.
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(table_of(s.Customer))) == 2
        assert conn.scalar(select(func.count()).select_from(table_of(s.Order))) == 3
        assert len(set(stored("SELECT value FROM identities WHERE kind = 'email'"))) == 2
    assert (first.rejected, again.rejected, again.written) == (0, 0, 0)
    # Exact search works on the tokens; a part of a name cannot be searched while encrypted.
    found, total = list_customers(engine, search=a["email"])
    assert total == 1
    assert found[0]["display_name"] == a["name"]
    assert list_customers(engine, search="Ola Nordmann")[1] == 1
    assert list_customers(engine, search="quillfeather")[1] == 0
    # Old rows in clear were encrypted in place and still match a later import of the same person.
    import_file(engine, write_file("old2.csv", old.replace("o0,", "o9,")), parse_mapping(SHOP))
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(table_of(s.Customer))) == 2
    twins = header + "t1,t1@example.com,,Ann,Lee,Ann Lee,,4000,Z,o5,2025-03-01,1\n"
    twins += "t2,t2@example.com,,Ann,Lee,Ann Lee,,4000,Z,o6,2025-03-02,1\n"
    import_file(engine, write_file("twins.csv", twins), parse_mapping(SHOP))
    groups = quality_report(engine).duplicate_candidates
    assert [(g["name"], g["postal_or_birth_year"], g["customers"]) for g in groups] == [("Ann Lee", "4000", 2)]

    monkeypatch.delenv("PATRON_ENCRYPTION_KEY")
    get_settings.cache_clear()  # without the key names read as "[encrypted]", never as tokens
    with engine.connect() as conn:
        assert set(conn.execute(select(s.Customer.display_name)).scalars()) == {"[encrypted]"}
    get_settings.cache_clear()
