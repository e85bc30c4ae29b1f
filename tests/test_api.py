"""The REST API on both stores: sign-in, error replies, idempotent event ingest, and what each role may not do."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select

from patron.app import create_app
from patron.auth.service import REFUSED, create_user
from patron.auth.trail import flush_reads
from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.engage.consent import record_consent
from patron.engage.offers import create_offer, decide_offers
from patron.segments.schema import Segment
from tests.conftest import WriteFile

PEOPLE: dict[str, Any] = {
    "source": {"system": "crm", "format": "csv"},
    "customers": {"external_id": "id", "email": "email", "phone": "phone", "display_name": "name"},
}
PASSWORD = "correct horse battery"


@pytest.fixture
def client(engine: Engine, write_file: WriteFile) -> Iterator[TestClient]:
    path = write_file(
        "people.csv",
        "id,email,phone,name\n1,ann@example.com,+1 212 555 0100,Ann Lee\n2,bob@example.org,+1 212 555 0199,Bob Ray\n"
        "3,cid@example.net,,Cid Moe\n",
    )
    import_file(engine, path, parse_mapping(PEOPLE), rejects_dir=path.parent)
    for role in ("admin", "manager", "agent", "analyst"):
        create_user(engine, role, PASSWORD, role)
    with engine.begin() as conn:  # the manager owns one account with Ann in it
        account = conn.execute(
            insert(table_of(s.Account)).values(source="crm", account_key="a1", name="Lee & Co", manager="manager")
            .returning(table_of(s.Account).c.id)
        ).scalar_one()  # fmt: skip
        ann = conn.scalar(select(s.Identity.customer_id).where(s.Identity.value == "1"))
        conn.execute(insert(table_of(s.AccountContact)).values(account_id=account, customer_id=ann, role="buyer"))
    with TestClient(create_app(engine), raise_server_exceptions=False) as test_client:
        yield test_client


def sign_in(client: TestClient, role: str) -> dict[str, str]:
    reply = client.post("/api/auth/token", json={"username": role, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['token']}"}


def customer_id(client: TestClient, headers: dict[str, str], external: str) -> int:
    items = client.get(f"/api/customers?search={external}", headers=sign_in(client, "admin")).json()["items"]
    return int(next(item["id"] for item in items))


def an_event(customer: str, key: str, kind: str, *, channel: str, at: str) -> dict[str, Any]:
    """The body of POST /api/events."""
    return {"customer": customer, "idempotency_key": key, "occurred_at": at, "channel": channel, "type": kind}


def count(engine: Engine, model: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_errors_are_4xx_with_detail_code_and_field(client: TestClient) -> None:
    assert client.post("/api/auth/token", json={"username": "admin", "password": "wrong"}).json() == {
        "detail": REFUSED, "code": "unauthorized", "field": None,
    }  # fmt: skip
    assert client.get("/api/customers").status_code == 401
    admin = sign_in(client, "admin")
    missing = client.get("/api/customers/987654", headers=admin)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    bad = client.get("/api/customers?limit=0", headers=admin)
    assert (bad.status_code, bad.json()["code"], bad.json()["field"]) == (422, "invalid_request", "limit")
    rule = client.post("/api/segments/preview", headers=admin, json={"rule": "tierr == 'A'"})
    assert (rule.status_code, rule.json()["code"]) == (422, "invalid_segment_rule")
    assert "did you mean tier" in rule.json()["detail"]


def test_events_are_stored_once_and_bad_ones_reported(client: TestClient, engine: Engine) -> None:
    admin = sign_in(client, "admin")
    event = an_event("crm:1", "e-1", "opened", channel="email", at="2024-05-01T10:00:00+02:00")
    assert client.post("/api/events", headers=admin, json=event).json() == {
        "created": 1,
        "duplicates": 0,
        "rejected": [],
        "triggers_fired": [],
    }
    assert client.post("/api/events", headers=admin, json=event).json()["duplicates"] == 1
    batch = [event, {**event, "idempotency_key": "e-2"}, {**event, "idempotency_key": "e-3", "customer": "crm:404"}]
    # Found by schemathesis: "²" passes str.isdigit() but is no id.
    odd = client.post(
        "/api/events/batch", headers=admin, json={"events": [{**event, "idempotency_key": "e-4", "customer": "\u00b2"}]}
    )
    assert odd.status_code == 201
    assert odd.json()["rejected"][0]["detail"] == "no customer matches '\u00b2'"
    reply = client.post("/api/events/batch", headers=admin, json={"events": batch}).json()
    assert (reply["created"], reply["duplicates"]) == (1, 1)
    assert reply["rejected"] == [{"index": 2, "field": "customer", "detail": "no customer matches 'crm:404'"}]
    stored = count(engine, s.Interaction, s.Interaction.source == "api")
    assert stored == 2
    with engine.connect() as conn:
        moment = conn.scalar(select(s.Interaction.occurred_at).where(s.Interaction.idempotency_key == "e-1"))
    assert moment is not None
    assert moment.hour == 8  # stored in UTC


def test_an_analyst_never_receives_personal_data(client: TestClient, engine: Engine) -> None:
    analyst = sign_in(client, "analyst")
    ann = customer_id(client, analyst, "ann@example.com")
    view = client.get(f"/api/customers/{ann}", headers=analyst)
    assert view.status_code == 200
    for secret in ("ann@example.com", "555", "Ann", "Lee"):
        assert secret not in view.text
    listing = client.get("/api/customers", headers=analyst).text
    assert "@" not in listing
    assert "Ann Lee" not in listing
    assert client.get("/api/customers?search=ann@example", headers=analyst).json()["total"] == 0  # no probing by e-mail
    export = client.get("/api/customers/export.csv", headers=analyst)
    assert export.status_code == 200
    assert "customer-" in export.text
    assert "@" not in export.text
    assert "Ann" not in export.text
    before = count(engine, s.Interaction)
    denied = client.post(
        "/api/events",
        headers=analyst,
        json={
            "customer": "crm:1",
            "idempotency_key": "x",
            "occurred_at": "2024-05-01T10:00:00",
            "channel": "web",
            "type": "visit",
        },
    )
    assert (denied.status_code, denied.json()["code"]) == (403, "forbidden")
    assert count(engine, s.Interaction) == before


def test_an_agent_cannot_export(client: TestClient, engine: Engine) -> None:
    agent = sign_in(client, "agent")
    reply = client.get("/api/customers/export.csv", headers=agent)
    assert (reply.status_code, reply.json()["code"]) == (403, "forbidden")
    assert reply.json()["detail"] == "an agent may not export"
    assert count(engine, s.AuditEvent, s.AuditEvent.action == "export") == 0
    assert (
        "ann@example.com"
        in client.get(f"/api/customers/{customer_id(client, agent, 'ann@example.com')}", headers=agent).text
    )


def test_a_manager_sees_only_their_portfolio(client: TestClient) -> None:
    manager = sign_in(client, "manager")
    listing = client.get("/api/customers", headers=manager).json()
    assert listing["total"] == 1
    assert listing["items"][0]["display_name"] == "Ann Lee"
    bob = customer_id(client, manager, "bob@example.org")
    hidden = client.get(f"/api/customers/{bob}", headers=manager)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found")
    assert client.get(f"/api/customers/{bob}/context", headers=manager).status_code == 404


def test_cases_and_segments_through_the_api(client: TestClient, engine: Engine) -> None:
    agent = sign_in(client, "agent")
    ann = customer_id(client, agent, "ann@example.com")
    opened = client.post(
        "/api/cases", headers=agent, json={"customer_id": ann, "subject": "Login fails", "kind": "question"}
    )
    assert opened.status_code == 201, opened.text
    case = opened.json()["id"]
    assert client.post(f"/api/cases/{case}/resolve", headers=agent, json={"text": "Password reset"}).json() == {
        "status": "resolved"
    }
    again = client.post(f"/api/cases/{case}/notes", headers=agent, json={"text": "late"})
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    assert client.post("/api/segments", headers=agent, json={"name": "x", "rule": "orders > 0"}).status_code == 403
    analyst = sign_in(client, "analyst")
    made = client.post("/api/segments", headers=analyst, json={"name": "everyone", "rule": "kind == 'customer'"})
    assert made.status_code == 201
    assert (
        client.post("/api/segments/preview", headers=analyst, json={"rule": "kind == 'customer'"}).json()["count"] == 3
    )


def test_an_event_through_the_api_fires_its_trigger(client: TestClient, engine: Engine) -> None:
    from patron.engage.triggers import create_trigger  # noqa: PLC0415

    create_trigger(
        engine,
        "complaint call",
        on_event="complaint",
        action="open_case",
        params={"subject": "Call back", "kind": "complaint"},
    )
    admin = sign_in(client, "admin")
    event = an_event("crm:2", "c-1", "complaint", channel="phone", at="2024-05-01T10:00:00")
    reply = client.post("/api/events", headers=admin, json=event).json()
    assert reply["triggers_fired"] == ["complaint call"]
    assert (
        client.post("/api/events", headers=admin, json=event).json()["triggers_fired"] == []
    )  # a resend fires nothing
    assert len(client.get("/api/cases/queue", headers=admin).json()) == 1


def test_an_event_through_the_api_keeps_segments_current(client: TestClient, engine: Engine) -> None:
    from patron.segments.rules import create_segment, evaluate_segments, segment_members  # noqa: PLC0415

    create_segment(engine, "in touch", "interactions >= 1")
    assert evaluate_segments(engine) == {"in touch": 0}
    admin = sign_in(client, "admin")
    event = an_event("crm:3", "t-1", "visit", channel="web", at="2024-05-01T10:00:00")
    assert client.post("/api/events", headers=admin, json=event).status_code == 201
    ids, total = segment_members(engine, "in touch")
    assert total == 1
    assert ids == [customer_id(client, admin, "cid@example.net")]


def test_the_real_time_profile_is_masked_by_role_and_every_read_is_audited(client: TestClient, engine: Engine) -> None:
    admin, analyst, manager = sign_in(client, "admin"), sign_in(client, "analyst"), sign_in(client, "manager")
    ann = customer_id(client, admin, "ann@example.com")
    full = client.get(f"/api/customers/{ann}/profile", headers=admin)
    assert full.status_code == 200
    body = full.json()
    assert body["customer"]["display_name"] == "Ann Lee"
    assert {i["value"] for i in body["identities"]} == {"1", "ann@example.com", "+12125550100"}
    assert (body["orders"], body["value"]) == ([], None)  # no orders, never scored: said, not left out
    masked = client.get(f"/api/customers/{ann}/profile", headers=analyst)
    assert masked.json()["customer"]["display_name"].startswith("customer-")
    for secret in ("ann@example.com", "2125550100", "Ann", "Lee"):  # whole values: "555" can be in a timestamp
        assert secret not in masked.text
    bob = customer_id(client, admin, "bob@example.org")
    assert client.get(f"/api/customers/{bob}/profile", headers=manager).status_code == 404
    assert client.get(f"/api/customers/{ann}/profile", headers=manager).status_code == 200
    assert client.get("/api/customers/999999/profile", headers=admin).json()["code"] == "not_found"
    flush_reads(engine)  # reads are written in batches; this is what the audit export does first
    with engine.connect() as conn:
        reads = conn.execute(
            select(s.AuditEvent.actor, s.AuditEvent.entity_id).where(s.AuditEvent.action == "read_pii")
        ).all()
    assert sorted(reads) == [("admin", ann), ("manager", ann)]  # the analyst read no personal data


def test_next_best_offer_through_the_api(client: TestClient, engine: Engine) -> None:
    admin = sign_in(client, "admin")
    ann = customer_id(client, admin, "ann@example.com")
    create_offer(engine, "welcome", margin=5.0)
    record_consent(engine, ann, channel="email")
    decide_offers(engine)
    reply = client.get(f"/api/customers/{ann}/next-best-offer", headers=admin).json()
    assert reply["offer"] == "welcome"
    assert reply["reason"].startswith("welcome: P(accept) 0.02")
    assert client.get("/api/customers/999999/next-best-offer", headers=admin).status_code == 404
    bob = customer_id(client, admin, "bob@example.org")
    assert client.get(f"/api/customers/{bob}/next-best-offer", headers=sign_in(client, "manager")).status_code == 404


def test_the_pages_live_fragments_count_explain_and_send_the_signed_out_to_sign_in(client: TestClient) -> None:
    signed_out = client.post("/segments/count", data={"rule": "revenue > 0"})
    assert signed_out.status_code == 401
    assert signed_out.headers["HX-Redirect"] == "/login"

    analyst = sign_in(client, "analyst")
    counted = client.post("/segments/count", data={"rule": 'source == "crm"'}, headers=analyst)
    assert counted.status_code == 200
    assert 'class="live ok"' in counted.text
    assert "3 of 3 customers match" in counted.text

    mistaken = client.post("/segments/count", data={"rule": "revenu > 0"}, headers=analyst)
    assert 'class="live error"' in mistaken.text
    assert "unknown field" in mistaken.text

    blank = client.post("/segments/count", data={"rule": "  "}, headers=analyst)
    assert "Type a rule" in blank.text

    unknown_import = client.get("/imports/0123456789ab/panel", headers=analyst)
    assert unknown_import.status_code == 404
    assert client.get("/campaigns/nosuch/live", headers=analyst).status_code == 404

    # A fragment that quotes what was asked for escapes it: a crafted link cannot run script in the page.
    hostile = "<img src=x onerror=alert(1)>"
    for path in (f"/campaigns/{hostile}/live", f"/imports/{hostile}/panel"):
        reply = client.get(path, headers=analyst)
        assert reply.status_code == 404
        assert "<img" not in reply.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in reply.text


def test_the_segment_builder_saves_a_segment_with_its_members_for_those_allowed(
    client: TestClient, engine: Engine
) -> None:
    refused = client.post("/segments", data={"rule": "orders >= 0", "name": "all"}, headers=sign_in(client, "agent"))
    assert refused.status_code == 403
    assert "orders &gt;= 0" in refused.text  # the rule typed is still in the builder
    assert count(engine, Segment) == 0

    admin = sign_in(client, "admin")
    saved = client.post(
        "/segments", data={"rule": 'source == "crm"', "name": "crm people"}, headers=admin, follow_redirects=False
    )
    assert (saved.status_code, saved.headers["location"]) == (303, "/segments?saved=crm%20people")
    page = client.get(saved.headers["location"], headers=admin).text
    assert "Segment &#39;crm people&#39; saved." in page
    with engine.connect() as conn:
        assert conn.scalar(select(Segment.member_count).where(Segment.name == "crm people")) == 3

    again = client.post("/segments", data={"rule": "orders > 0", "name": "crm people"}, headers=admin)
    assert again.status_code == 409
    assert "already a segment" in again.text.split('id="name-problem"', 1)[1][:120]  # beside the name
    slashed = client.post("/segments", data={"rule": "orders > 0", "name": "crm/web"}, headers=admin)
    assert slashed.status_code == 422
    assert "cannot hold a &#39;/&#39;" in slashed.text.split('id="name-problem"', 1)[1][:160]
    broken = client.post("/segments", data={"rule": "orders >>> 0", "name": "broken"}, headers=admin)
    assert broken.status_code == 422
    assert 'id="rule-problem"' in broken.text  # beside the rule
    assert "orders &gt;&gt;&gt; 0</textarea>" in broken.text


def test_the_customer_page_takes_the_source_id_and_e_mail_only_for_roles_that_see_them(client: TestClient) -> None:
    admin, analyst = sign_in(client, "admin"), sign_in(client, "analyst")
    by_source_id = client.get("/customers/crm:2", headers=admin)
    assert by_source_id.status_code == 200
    assert "Bob Ray" in by_source_id.text
    assert "Bob Ray" in client.get("/customers/bob@example.org", headers=admin).text
    assert client.get("/customers/crm:2", headers=analyst).status_code == 200  # pseudonymised, but found
    probe = client.get("/customers/bob@example.org", headers=analyst)  # no probing for addresses
    assert probe.status_code == 404
    assert "Customer not found" in probe.text
    assert client.get("/customers/crm:999", headers=admin).status_code == 404


def test_an_export_opens_a_formula_like_name_as_text(client: TestClient, engine: Engine, write_file: WriteFile) -> None:
    path = write_file("evil.csv", 'id,email,phone,name\n9,eve@example.com,,"=HYPERLINK(""http://x"",""y"")"\n')
    import_file(engine, path, parse_mapping(PEOPLE), rejects_dir=path.parent)
    exported = client.get("/api/customers/export.csv", headers=sign_in(client, "admin")).text
    names = [row["display_name"] for row in csv.DictReader(io.StringIO(exported))]
    assert '\'=HYPERLINK("http://x","y")' in names  # a leading apostrophe: a spreadsheet shows it, never runs it
    assert not any(name.startswith("=") for name in names)


def test_unknown_routes_answer_a_page_for_people_and_json_for_programs(client: TestClient) -> None:
    page = client.get("/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text
    api = client.get("/api/no/such/route")
    assert (api.status_code, api.json()["code"]) == (404, "not_found")
    wrong_method = client.delete("/api/customers")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "http_error")
