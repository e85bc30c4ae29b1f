"""The customer page as a workplace: log a contact and open a case in the browser, on both stores, through the
same domain functions as the API; bad input comes back beside its field with what was typed, nothing written;
a form sent twice writes once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from patron.app import create_app
from patron.auth.service import create_user
from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cif.view import resolve_customer
from patron.engage.consent import consent_in_force
from patron.service.metrics import daily_service_metrics
from patron.service.schema import Case
from tests.conftest import WriteFile
from tests.test_pages import CHROMIUM, serving, sign_in_page

PASSWORD = "a-long-password-1"
PEOPLE = "id,email,name\n1,ann@example.com,Ann Lee\n2,bob@example.org,Bob Ray\n"
MAPPING = {"source": {"system": "crm"}, "customers": {"external_id": "id", "email": "email", "display_name": "name"}}


@pytest.fixture
def people(engine: Engine, write_file: WriteFile) -> Engine:
    path = write_file("people.csv", PEOPLE)
    import_file(engine, path, parse_mapping(MAPPING), rejects_dir=path.parent)
    create_user(engine, "agent", PASSWORD, "agent")
    create_user(engine, "analyst", PASSWORD, "analyst")
    return engine


@pytest.fixture
def client(people: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(people), follow_redirects=False) as test_client:
        yield test_client


def _sign_in(client: TestClient, username: str) -> str:
    """Signs the client in (the session cookie) and returns the page's CSRF token for forms."""
    return _sign_in_as(client, username, "/customers/crm:1")


def _count(engine: Engine, table: Any, **where: Any) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(getattr(table.c, column) == value)
        return int(conn.scalar(query) or 0)


def test_a_form_sent_twice_writes_once_and_bad_input_writes_nothing(client: TestClient, people: Engine) -> None:
    csrf = _sign_in(client, "agent")
    interactions, cases = s.table_of(s.Interaction), s.table_of(Case)
    contact = {"csrf_token": csrf, "key": "k-1", "kind": "call", "direction": "inbound", "body": "Asked about =SUM(1)"}
    for _ in range(2):  # a double click, or a reload of the answer
        assert client.post("/customers/crm:1/contacts", data=contact).status_code == 303
    assert _count(people, interactions, source="web") == 1
    case = {"csrf_token": csrf, "key": "c-1", "subject": "Parcel late", "kind": "complaint", "priority": "high"}
    for _ in range(2):
        reply = client.post("/customers/ann@example.com/cases", data=case)
        assert (reply.status_code, reply.headers["location"]) == (303, "/customers/ann@example.com?done=case")
    assert _count(people, cases, source="web") == 1

    blank = {**case, "key": "c-2", "subject": "  ", "description": "typed before the subject"}
    refused = client.post("/customers/crm:1/cases", data=blank)
    assert refused.status_code == 422
    assert "a case needs a subject" in refused.text
    assert "typed before the subject" in refused.text  # what was typed is kept
    note = client.post("/customers/crm:1/contacts", data={**contact, "key": "k-2", "kind": "note", "body": ""})
    assert (note.status_code, "a note needs its text" in note.text) == (422, True)
    unknown = client.post("/customers/crm:1/contacts", data={**contact, "key": "k-3", "kind": "telegram"})
    assert unknown.status_code == 422
    assert (_count(people, cases, source="web"), _count(people, interactions, source="web")) == (1, 1)

    nobody = client.post("/customers/crm:99/cases", data={**case, "key": "c-3"})
    assert (nobody.status_code, "no customer matches" in nobody.text) == (404, True)
    csrf = _sign_in(client, "analyst")  # may read the customer, may not write
    assert (
        client.post("/customers/crm:1/contacts", data={**contact, "csrf_token": csrf, "key": "k-4"}).status_code == 403
    )
    assert client.post("/customers/crm:1/cases", data={**case, "csrf_token": csrf, "key": "c-4"}).status_code == 403
    assert (_count(people, cases, source="web"), _count(people, interactions, source="web")) == (1, 1)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_an_agent_logs_a_call_opens_a_case_and_resolves_it_on_first_contact(people: Engine, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    with serving(people) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        sign_in_page(page, url, "agent", PASSWORD)
        page.goto(url + "/customers?search=bob@example.org")  # found by e-mail
        page.locator("table a").first.click()
        expect(page.locator("h1")).to_have_text("Bob Ray")

        form = page.locator("#log-contact")
        form.locator("select[name=kind]").select_option("call")
        form.locator("input[name=outcome]").fill("call back tomorrow")
        form.locator("textarea[name=body]").fill("Wants to change the delivery address")
        form.locator("button").click()
        expect(page.get_by_role("status")).to_contain_text("Contact logged")
        expect(page.locator(".timeline li").first).to_contain_text("call via phone: call back tomorrow")

        case = page.locator("#open-case")
        case.locator("select[name=kind]").select_option("complaint")
        case.locator("textarea[name=description]").fill("Second late parcel this month")
        case.locator("button").click()  # no subject yet
        expect(page.locator("#case-subject-error")).to_have_text("a case needs a subject: what is it about?")
        expect(page.locator("#open-case textarea[name=description]")).to_have_value("Second late parcel this month")
        page.screenshot(path=str(tmp_path / "case-refused.png"), full_page=True)
        page.locator("#open-case input[name=subject]").fill("Late parcel")
        page.locator("#open-case button").click()
        expect(page.get_by_role("status")).to_contain_text("Case opened")
        expect(page.locator("#next-question")).to_contain_text("Late parcel")
        page.screenshot(path=str(tmp_path / "workplace.png"), full_page=True)

        page.goto(url + "/service")  # the case waits in the queue; resolved while the customer is still on the line
        page.locator("table tr", has_text="Late parcel").locator("a").first.click()  # the case, by its number
        expect(page.locator("h1")).to_contain_text("Late parcel")
        page.locator("#resolve-case button").click()  # nothing said yet
        expect(page.locator("#resolve-error")).to_have_text("say how it was resolved")
        page.screenshot(path=str(tmp_path / "resolve-refused.png"), full_page=True)
        page.locator("#resolve-case textarea").fill("Refunded the delivery fee")
        page.locator("#resolve-case button").click()
        expect(page.get_by_role("status")).to_contain_text("Resolved")
        expect(page.locator("#case-facts")).to_contain_text("Refunded the delivery fee")
        page.screenshot(path=str(tmp_path / "resolved.png"), full_page=True)
        browser.close()

    with people.connect() as conn:
        bob = conn.scalar(select(s.Identity.customer_id).where(s.Identity.value == "bob@example.org"))
        opened = conn.execute(select(Case.kind, Case.subject, Case.description).where(Case.customer_id == bob)).all()
        calls = conn.execute(
            select(s.Interaction.type, s.Interaction.outcome, s.Interaction.body).where(
                s.Interaction.customer_id == bob, s.Interaction.source == "web"
            )
        ).all()
    assert [tuple(row) for row in opened] == [("complaint", "Late parcel", "Second late parcel this month")]
    assert [tuple(row) for row in calls] == [("call", "call back tomorrow", "Wants to change the delivery address")]
    with people.connect() as conn:
        resolved = conn.execute(select(Case.status, Case.contacts, Case.resolution)).all()
    assert [tuple(row) for row in resolved] == [("resolved", 1, "Refunded the delivery fee")]
    today = daily_service_metrics(people).row(-1, named=True)  # the day's first-contact resolution moved
    assert (today["received"], today["resolved_first_contact"], today["fcr_ratio"]) == (1, 1, 1.0)


def test_case_actions_refuse_bad_input_and_count_contacts(client: TestClient, people: Engine) -> None:
    csrf = _sign_in(client, "agent")
    opened = client.post("/customers/crm:1/cases", data={"csrf_token": csrf, "key": "c-9", "subject": "Broken lid",
                                                         "kind": "complaint"})  # fmt: skip
    assert opened.status_code == 303
    with people.connect() as conn:
        case_id = conn.scalar(select(Case.id))
    assert f'href="/service/cases/{case_id}"' in client.get("/service?only=unassigned").text
    assert "No open case is escalated." in client.get("/service?only=escalated").text
    assert f'href="/service/cases/{case_id}"' in client.get("/service?only=nonsense").text  # the whole queue
    page = client.get(f"/service/cases/{case_id}")
    assert page.status_code == 200
    assert "Broken lid" in page.text
    assert 'id="resolve-case"' in page.text
    empty = client.post(f"/service/cases/{case_id}/resolve", data={"csrf_token": csrf, "text": "  "})
    assert empty.status_code == 422
    assert "say how it was resolved" in empty.text
    reopen_open = client.post(f"/service/cases/{case_id}/reopen", data={"csrf_token": csrf, "text": "again"})
    assert reopen_open.status_code == 409  # nothing to reopen: the reason beside the form, nothing written
    assert "not resolved: nothing to reopen" in reopen_open.text
    noted = client.post(f"/service/cases/{case_id}/notes", data={"csrf_token": csrf, "text": "Called back <b>",
                                                                  "contact": "yes"})  # fmt: skip
    assert noted.status_code == 303
    assert client.post(f"/service/cases/{case_id}/resolve", data={"csrf_token": csrf, "text": "New lid sent"}
                       ).status_code == 303  # fmt: skip
    with people.connect() as conn:
        status, contacts = conn.execute(select(Case.status, Case.contacts)).one()
    assert (status, contacts) == ("resolved", 2)  # the second contact: not resolved on the first
    assert daily_service_metrics(people).row(-1, named=True)["resolved_first_contact"] == 0
    again = client.post(f"/service/cases/{case_id}/reopen", data={"csrf_token": csrf, "text": "Lid broken too"})
    assert again.status_code == 303
    assert _count(people, table_of(Case), status="open") == 1

    analyst = _sign_in(client, "analyst")
    assert client.get(f"/service/cases/{case_id}").status_code == 403
    refused = client.post(f"/service/cases/{case_id}/resolve", data={"csrf_token": analyst, "text": "x"})
    assert refused.status_code == 403
    assert _count(people, table_of(Case), status="open") == 1
    assert client.get("/service/cases/999999").status_code == 403  # an analyst learns nothing about case ids
    _sign_in(client, "agent")
    missing = client.get("/service/cases/999999")
    assert missing.status_code == 404
    assert "there is no case 999999" in missing.text


def test_a_consent_is_recorded_once_and_withdrawn_from_the_customer_page(client: TestClient, people: Engine) -> None:
    csrf = _sign_in(client, "agent")
    grant = {"csrf_token": csrf, "channel": "email", "purpose": "marketing", "status": "granted", "wording": "v1"}
    assert client.post("/customers/crm:1/consents", data=grant).status_code == 303
    assert client.post("/customers/crm:1/consents", data=grant).status_code == 303  # a reload: the same again
    consents = table_of(s.Consent)
    assert _count(people, consents, status="granted") == 1
    bad = client.post("/customers/crm:1/consents", data={**grant, "channel": "pigeon", "wording": "v2"})
    assert bad.status_code == 422
    assert "choose email, sms, phone or mail" in bad.text
    assert 'value="v2"' in bad.text  # what was typed is kept
    assert _count(people, consents) == 1
    withdraw = client.post("/customers/crm:1/consents", data={**grant, "status": "withdrawn"})
    assert withdraw.status_code == 303
    assert "Consent recorded" in client.get(withdraw.headers["location"]).text
    assert not consent_in_force(people, resolve_customer(people, "crm:1"), channel="email")
    with people.connect() as conn:
        sources = list(conn.scalars(select(consents.c.source).order_by(consents.c.id)))
    assert sources == ["web:agent", "web:agent"]

    analyst = _sign_in(client, "analyst")
    assert 'id="record-consent"' not in client.get("/customers/crm:1").text
    refused = client.post("/customers/crm:1/consents", data={**grant, "csrf_token": analyst})
    assert refused.status_code == 403
    assert _count(people, consents) == 2


def test_details_are_edited_as_the_source_would_send_them_and_bad_values_refused(
    client: TestClient, people: Engine
) -> None:
    """Names, contacts and profile changed on the page go through the importer's checks: a bad e-mail address
    comes back beside its field with what was typed and nothing written; another customer's address is refused;
    a new address is added beside the old one and is the one campaigns use."""
    from patron.engage.campaigns import addresses_of  # noqa: PLC0415

    csrf = _sign_in(client, "agent")
    ann = resolve_customer(people, "crm:1")
    page = client.get("/customers/crm:1").text
    assert 'id="edit-details"' in page
    assert 'value="ann@example.com"' in page
    assert 'value="Ann Lee"' in page
    before = _count(people, s.table_of(s.Identity))

    bad = client.post("/customers/crm:1/details", data={"csrf_token": csrf, "email": "ann(at)example", "city": "Leeds"})
    assert bad.status_code == 422
    beside = bad.text.split('id="details-email-error"', 1)[1][:200]
    assert "not a valid e-mail address" in beside
    assert 'value="ann(at)example"' in bad.text
    assert 'value="Leeds"' in bad.text
    theirs = client.post("/customers/crm:1/details", data={"csrf_token": csrf, "email": "BOB@example.org"})
    assert theirs.status_code == 422
    assert "already customer" in theirs.text.split('id="details-email-error"', 1)[1][:200]
    assert _count(people, s.table_of(s.Identity)) == before
    with people.connect() as conn:
        assert conn.scalar(select(s.CustomerProfile.city).where(s.CustomerProfile.customer_id == ann)) is None

    saved = client.post("/customers/crm:1/details", data={
        "csrf_token": csrf, "first_name": "Anna", "display_name": "Ann Lee", "email": "anna.lee@example.com",
        "city": "Leeds", "country": "United Kingdom", "birth_date": "1980-02-29"})  # fmt: skip
    assert (saved.status_code, saved.headers["location"]) == (303, "/customers/crm:1?done=details")
    with people.connect() as conn:
        profile = conn.execute(
            select(s.CustomerProfile.city, s.CustomerProfile.country, s.CustomerProfile.birth_date)
            .where(s.CustomerProfile.customer_id == ann)
        ).one()  # fmt: skip
        first = conn.scalar(select(s.Customer.first_name).where(s.Customer.id == ann))
        audit = s.table_of(s.AuditEvent)
        runs = conn.execute(select(audit.c.interface, audit.c.action).where(audit.c.actor == "agent")).all()
    assert (profile.city, profile.country, str(profile.birth_date), first) == ("Leeds", "GB", "1980-02-29", "Anna")
    assert ("web", "import") in runs  # the audit names who changed it, and where
    assert addresses_of(people, [ann], "email") == {ann: "anna.lee@example.com"}
    page = client.get("/customers/crm:1?done=details").text
    assert "Details saved" in page
    assert "ann@example.com" in page
    assert "anna.lee@example.com" in page

    csrf = _sign_in(client, "analyst")  # may read, may not edit: no form, and refused
    assert 'id="edit-details"' not in client.get("/customers/crm:1").text
    assert client.post("/customers/crm:1/details", data={"csrf_token": csrf, "city": "York"}).status_code == 403


def test_a_case_is_taken_assigned_and_escalated_from_its_page(client: TestClient, people: Engine) -> None:
    """Take a case (the agent joins the desk), give it to someone who is not on the desk (refused beside the
    form), escalate it without and with a reason; the "mine" view shows what the agent owns."""
    from patron.service.cases import create_agent  # noqa: PLC0415

    create_agent(people, "mo", "Mo Manager", role="manager")
    csrf = _sign_in(client, "agent")
    opened = client.post("/customers/crm:2/cases", data={"csrf_token": csrf, "key": "c-1", "subject": "Late parcel"})
    assert opened.status_code == 303
    with people.connect() as conn:
        case_id, due_before = conn.execute(select(Case.id, Case.sla_due_at)).one()
    assert "No open case is mine." in client.get("/service?only=mine").text
    page = client.get(f"/service/cases/{case_id}").text
    assert "nobody yet" in page
    assert 'id="assign-case"' in page
    assert 'id="escalate-case"' in page

    stranger = client.post(f"/service/cases/{case_id}/assign", data={"csrf_token": csrf, "agent": "zed"})
    assert stranger.status_code == 422
    assert "there is no active agent &#39;zed&#39;" in stranger.text.split('id="assign-error"', 1)[1][:120]
    taken = client.post(f"/service/cases/{case_id}/assign", data={"csrf_token": csrf, "agent": "me"})
    assert (taken.status_code, taken.headers["location"]) == (303, f"/service/cases/{case_id}?done=assign")
    assert '<strong id="owner">agent</strong>' in client.get(f"/service/cases/{case_id}").text
    assert f'href="/service/cases/{case_id}"' in client.get("/service?only=mine").text

    why_not = client.post(f"/service/cases/{case_id}/escalate", data={"csrf_token": csrf, "text": " "})
    assert why_not.status_code == 422
    assert "say why it is escalated" in why_not.text
    with people.connect() as conn:
        assert conn.scalar(select(Case.escalated)) is False
    escalated = client.post(f"/service/cases/{case_id}/escalate",
                            data={"csrf_token": csrf, "text": "Third late parcel: may leave"})  # fmt: skip
    assert escalated.status_code == 303
    with people.connect() as conn:
        row = conn.execute(select(Case.escalated, Case.priority, Case.sla_due_at, Case.escalation_reason)).one()
    assert (row.escalated, row.priority, row.escalation_reason) == (True, "urgent", "Third late parcel: may leave")
    assert row.sla_due_at < due_before  # the window halved from now
    page = client.get(f"/service/cases/{case_id}").text
    assert 'id="escalate-case"' not in page  # once is enough
    assert '<strong id="owner">agent</strong>' in page  # someone owned it already: still theirs
    assert f'href="/service/cases/{case_id}"' in client.get("/service?only=escalated").text
    given = client.post(f"/service/cases/{case_id}/assign", data={"csrf_token": csrf, "agent": "mo"})
    assert given.status_code == 303
    assert "No open case is mine." in client.get("/service?only=mine").text


def test_a_contact_preference_is_set_on_the_page_and_the_contact_policy_obeys_it(
    client: TestClient, people: Engine
) -> None:
    from patron.engage.consent import contact_preferences, record_consent  # noqa: PLC0415
    from patron.engage.policy import check_contacts  # noqa: PLC0415

    ann = resolve_customer(people, "crm:1")
    record_consent(people, ann, channel="sms")
    csrf = _sign_in(client, "agent")
    bad = client.post("/customers/crm:1/preferences", data={"csrf_token": csrf, "channel": "sms",
                                                            "max_per_month": "twice"})  # fmt: skip
    assert bad.status_code == 422
    assert "a whole number" in bad.text.split('id="preference-max_per_month-error"', 1)[1][:100]
    assert 'value="twice"' in bad.text
    assert contact_preferences(people, ann) == []
    assert check_contacts(people, [ann], channel="sms")[ann].allowed

    none_at_all = {"csrf_token": csrf, "channel": "sms", "max_per_month": "0"}
    assert client.post("/customers/crm:1/preferences", data=none_at_all).status_code == 303
    decision = check_contacts(people, [ann], channel="sms")[ann]
    assert (decision.allowed, decision.reason) == (False, "asked for at most 0 sms contacts a month")
    preferred = {"csrf_token": csrf, "channel": "email", "preferred": "yes"}
    assert client.post("/customers/crm:1/preferences", data=preferred).status_code == 303
    assert contact_preferences(people, ann) == [
        {"channel": "email", "preferred": True, "max_per_month": None},
        {"channel": "sms", "preferred": False, "max_per_month": 0},
    ]
    page = client.get("/customers/crm:1?done=preference").text
    assert "Contact preference saved" in page
    assert "at most 0 contacts a month" in page
    with people.connect() as conn:
        audit = s.table_of(s.AuditEvent)
        trail = conn.scalars(select(audit.c.actor).where(audit.c.action == "contact_preference")).all()
    assert trail == ["agent", "agent"]
    csrf = _sign_in(client, "analyst")
    assert client.post("/customers/crm:1/preferences", data={**preferred, "csrf_token": csrf}).status_code == 403


def test_attributes_are_edited_with_their_own_types_checked(engine: Engine, write_file: WriteFile) -> None:
    path = write_file("members.csv", "id,email,spend,vip\n7,gus@example.com,40,yes\n")
    mapping = {"source": {"system": "club"}, "customers": {"external_id": "id", "email": "email", "attributes": {
        "spend": {"column": "spend", "type": "integer"}, "vip": {"column": "vip", "type": "boolean"}}}}  # fmt: skip
    import_file(engine, path, parse_mapping(mapping), rejects_dir=path.parent)
    create_user(engine, "agent", PASSWORD, "agent")
    gus = resolve_customer(engine, "club:7")
    attributes = s.table_of(s.CustomerAttribute)

    def stored() -> dict[str, object]:
        with engine.connect() as conn:
            rows = conn.execute(select(attributes.c.key, attributes.c.value_number, attributes.c.value_text)
                                .where(attributes.c.customer_id == gus)).all()  # fmt: skip
        return {key: (float(number) if number is not None else text) for key, number, text in rows}

    with TestClient(create_app(engine), follow_redirects=False) as client:
        csrf = _sign_in_as(client, "agent", "/customers/club:7")
        page = client.get("/customers/club:7").text
        assert 'name="attributes.spend" value="40"' in page
        assert 'name="attributes.vip" value="true"' in page
        bad = client.post("/customers/club:7/details", data={"csrf_token": csrf, "attributes.spend": "lots"})
        assert bad.status_code == 422
        assert 'id="details-attributes.spend-error"' in bad.text
        assert 'value="lots"' in bad.text
        assert stored() == {"spend": 40.0, "vip": "true"}
        stranger = client.post("/customers/club:7/details", data={"csrf_token": csrf, "attributes.shoe": "44"})
        assert stranger.status_code == 422
        assert "new attributes arrive with an import" in stranger.text
        saved = client.post("/customers/club:7/details",
                            data={"csrf_token": csrf, "attributes.spend": "120", "attributes.vip": "no"})  # fmt: skip
        assert saved.status_code == 303
    assert stored() == {"spend": 120.0, "vip": "false"}


def _sign_in_as(client: TestClient, username: str, page: str) -> str:
    """Signs in and returns the CSRF token ``page`` carries (every page does, for HTMX, forms or not)."""
    client.cookies.clear()
    assert client.post("/login", data={"username": username, "password": PASSWORD}).status_code == 303
    text = client.get(page).text
    return str(text.split('"X-CSRF-Token": "', 1)[1].split('"', 1)[0])
