"""Campaigns from the browser, on both stores: a wizard from a saved segment (bad input beside its field, nothing
written), the message previewed for one of its customers, the campaign prepared with the contact policy's verdict
shown before anything goes, sent over real SMTP (aiosmtpd) to exactly the eligible, consenting members, a response
recorded on the page and counted in the report; a manager's campaign reaches their portfolio only. The marketer's
journey runs in Chromium."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select

from patron.app import create_app
from patron.auth.service import create_user
from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.engage.campaigns import CAMPAIGNS, CONTACTS, MEMBERS, PLANS, RESPONSES, create_campaign, prepare_campaign
from patron.engage.consent import record_consent
from patron.segments.rules import create_segment, evaluate_segments
from patron.settings import get_settings
from tests.conftest import Inbox, WriteFile
from tests.test_pages import CHROMIUM, serving, sign_in_page

PASSWORD = "a-long-password-1"
# Twelve customers: 11 has no e-mail address, 9 never consented, 10 withdrew.
PEOPLE = "id,email,name\n" + "".join(f"{i},{'' if i == 11 else f'c{i}@example.com'},Client {i}\n" for i in range(1, 13))
MAPPING = {"source": {"system": "crm"}, "customers": {"external_id": "id", "email": "email", "display_name": "name"}}
RULE = 'source == "crm"'


@pytest.fixture
def base(engine: Engine, write_file: WriteFile) -> Engine:
    path = write_file("people.csv", PEOPLE)
    import_file(engine, path, parse_mapping(MAPPING), rejects_dir=path.parent)
    ids = _ids(engine)
    for external, customer in ids.items():
        if external != "9":
            record_consent(engine, customer, channel="email")
    record_consent(engine, ids["10"], channel="email", status="withdrawn")
    for user, role in (("mark", "admin"), ("mia", "manager"), ("agent", "agent"), ("ana", "analyst")):
        create_user(engine, user, PASSWORD, role)
    with engine.begin() as conn:  # Mia manages the account of customers 1 and 2
        accounts = table_of(s.Account)
        account = conn.execute(
            insert(accounts).values(source="crm", account_key="a1", name="Lee & Co", manager="mia")
            .returning(accounts.c.id)
        ).scalar_one()  # fmt: skip
        for external in ("1", "2"):
            conn.execute(
                insert(table_of(s.AccountContact)).values(account_id=account, customer_id=ids[external], role="buyer")
            )
    create_segment(engine, "crm people", RULE)
    create_segment(engine, "the twelfth", 'source == "crm" and customer_id == ' + str(ids["12"]))
    evaluate_segments(engine)
    return engine


@pytest.fixture
def smtp_settings(smtp: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """The app's settings point at the local SMTP server."""
    inbox, port = smtp
    monkeypatch.setenv("PATRON_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PATRON_SMTP_PORT", str(port))
    get_settings.cache_clear()
    yield inbox
    get_settings.cache_clear()


def _ids(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(s.Identity.value, s.Identity.customer_id).where(s.Identity.kind == "external"))
        return {str(value): int(customer) for value, customer in rows}


def _sign_in(client: TestClient, username: str) -> str:
    client.cookies.clear()
    assert client.post("/login", data={"username": username, "password": PASSWORD}).status_code == 303
    page = client.get("/campaigns").text
    return str(page.split('"X-CSRF-Token": "', 1)[1].split('"', 1)[0])


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def _wait_until_sent(engine: Engine, key: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            status = conn.scalar(
                select(PLANS.c.status).join(CAMPAIGNS, CAMPAIGNS.c.id == PLANS.c.campaign_id)
                .where(CAMPAIGNS.c.campaign_key == key)
            )  # fmt: skip
        if status == "sent":
            return str(status)
        time.sleep(0.1)
    return str(status)


def _treated(engine: Engine, key: str) -> list[str]:
    """The source ids of the campaign's members outside the control group."""
    with engine.connect() as conn:
        members = conn.execute(
            select(MEMBERS.c.customer_id).join(CAMPAIGNS, CAMPAIGNS.c.id == MEMBERS.c.campaign_id)
            .where(CAMPAIGNS.c.campaign_key == key, MEMBERS.c.is_control.is_(False))
        ).scalars().all()  # fmt: skip
    by_customer = {customer: external for external, customer in _ids(engine).items()}
    return [by_customer[member] for member in members]


def _eligible_addresses(engine: Engine, key: str) -> set[str]:
    """Whom the store says the campaign may reach: treated members with an address and consent in force."""
    return {f"c{external}@example.com" for external in _treated(engine, key) if external not in ("9", "10", "11")}


REASONS = {"9": "email consent for marketing not given", "10": "email consent for marketing withdrawn",
           "11": "no e-mail address"}  # fmt: skip


def _blocked_reasons(engine: Engine, key: str) -> list[str]:
    """Why the treated members 9, 10 and 11 cannot be e-mailed (each may have been drawn into the control)."""
    return [REASONS[external] for external in _treated(engine, key) if external in REASONS]


BODY = "Dear {{ name }},\nspring is here.\n{{ manager_signature }}"
WIZARD = {"segment": "crm people", "key": "spring-mail", "name": "Spring mail", "control": "10", "arms": "A",
          "subject": "Hello {{ first_name }}", "body": BODY}  # fmt: skip


def test_bad_input_in_the_wizard_comes_back_beside_its_field_and_writes_nothing(base: Engine) -> None:
    with TestClient(create_app(base), follow_redirects=False) as client:
        csrf = _sign_in(client, "mark")
        assert 'href="/campaigns/new"' in client.get("/campaigns").text
        wizard = client.get("/campaigns/new", params={"segment": "crm people"})
        assert wizard.status_code == 200
        assert 'value="crm-people-' in wizard.text
        assert 'value="10"' in wizard.text
        cases = [
            ({"key": "has space"}, "key-error", "a key of letters"),
            ({"control": "150"}, "control-error", "below 100 %"),
            ({"control": "ten"}, "control-error", "as a percentage"),
            ({"segment": ""}, "segment-error", "choose one of the saved segments"),
            ({"body": "Hi {{ nope }}"}, "body-error", "unknown variable(s) nope"),
            ({"subject": "{% if %}"}, "subject-error", "does not parse"),
        ]
        for change, field, message in cases:
            reply = client.post("/campaigns/new", data={"csrf_token": csrf, **WIZARD, **change})
            assert reply.status_code == 422, change
            beside = reply.text.split(f'id="{field}"', 1)[1][:300]
            assert message in beside, (change, beside)
            typed = next(iter(change.values()))
            if typed and "{" not in typed:
                assert f'value="{typed}"' in reply.text  # what was typed is kept
        assert (_count(base, CAMPAIGNS), _count(base, PLANS)) == (0, 0)

        sample = client.post("/campaigns/new/preview", data={"csrf_token": csrf, **WIZARD})
        assert "Hello Client" in sample.text
        assert "Dear Client" in sample.text
        assert "one of 12 customers" in sample.text
        broken = client.post("/campaigns/new/preview", data={"csrf_token": csrf, **WIZARD, "body": "{{ nope }}"})
        assert 'role="alert"' in broken.text
        assert "unknown variable" in broken.text
        assert _count(base, CAMPAIGNS) == 0

        csrf = _sign_in(client, "ana")  # an analyst does not run campaigns
        assert client.get("/campaigns/new").status_code == 403
        assert client.post("/campaigns/new", data={"csrf_token": csrf, **WIZARD}).status_code == 403
        assert _count(base, CAMPAIGNS) == 0


def test_a_campaign_is_prepared_sent_over_smtp_to_the_consenting_and_answered(
    base: Engine, smtp_settings: Inbox
) -> None:
    inbox = smtp_settings
    with TestClient(create_app(base), follow_redirects=False) as client:
        csrf = _sign_in(client, "mark")
        created = client.post("/campaigns/new", data={"csrf_token": csrf, **WIZARD})
        assert (created.status_code, created.headers["location"]) == (303, "/campaigns/spring-mail?done=prepared")
        page = client.get("/campaigns/spring-mail?done=prepared").text
        eligible = _eligible_addresses(base, "spring-mail")
        assert f'<strong id="to-send">{len(eligible)} e-mails</strong>' in page
        for reason in _blocked_reasons(base, "spring-mail"):
            assert f"<td>{reason}</td><td>1</td>" in page
        assert "held out as the control group" in page
        assert inbox.messages == []  # nothing goes before Send

        assert client.post("/campaigns/spring-mail/send", data={"csrf_token": csrf}).status_code == 303
        assert _wait_until_sent(base, "spring-mail") == "sent"
        assert sorted(message["To"] for message in inbox.messages) == sorted(eligible)
        assert all(message["Subject"].startswith("Hello Client") for message in inbox.messages)
        again = client.post("/campaigns/spring-mail/send", data={"csrf_token": csrf})  # a second click
        assert again.status_code in (303, 409)
        assert len(inbox.messages) == len(eligible)  # nobody twice
        assert client.post("/campaigns/spring-mail/discard", data={"csrf_token": csrf}).status_code == 409

        customer = sorted(_ids(base).items())[0][0]  # crm:1 or any member: responses count for the control too
        refused = client.post("/campaigns/spring-mail/responses",
                              data={"csrf_token": csrf, "customer": f"crm:{customer}", "kind": "Bought!"})  # fmt: skip
        assert refused.status_code == 422
        assert "lower-case words" in refused.text
        assert 'value="Bought!"' in refused.text
        nobody = client.post("/campaigns/spring-mail/responses",
                             data={"csrf_token": csrf, "customer": "crm:404", "kind": "bought"})  # fmt: skip
        assert nobody.status_code == 422
        assert "no customer matches" in nobody.text
        assert _count(base, RESPONSES) == 0
        answered = client.post(
            "/campaigns/spring-mail/responses",
            data={"csrf_token": csrf, "customer": "c3@example.com", "kind": "bought", "value": "25"},
        )
        assert answered.status_code == 303  # fmt: skip
        page = client.get("/campaigns/spring-mail").text
        assert "bought 1" in page
        assert 'id="arms"' in page
        with base.connect() as conn:
            assert conn.scalar(select(RESPONSES.c.value_minor)) == 2500


def test_a_campaign_without_control_says_what_it_cannot_tell_and_a_draft_can_be_discarded(base: Engine) -> None:
    with TestClient(create_app(base), follow_redirects=False) as client:
        csrf = _sign_in(client, "mark")
        reply = client.post("/campaigns/new", data={"csrf_token": csrf, **WIZARD, "control": "0"})
        assert reply.status_code == 303
        page = client.get("/campaigns/spring-mail").text
        assert "no control group" in page
        assert "not whether the campaign made them respond" in page
        assert client.post("/campaigns/spring-mail/discard", data={"csrf_token": csrf}).status_code == 303
        assert (_count(base, CAMPAIGNS), _count(base, PLANS), _count(base, MEMBERS), _count(base, CONTACTS)) == (
            0, 0, 0, 0)  # fmt: skip


def test_a_managers_campaign_reaches_their_portfolio_only(base: Engine, smtp_settings: Inbox) -> None:
    ids = _ids(base)
    create_campaign(base, "everyone", "Everyone", rule=RULE, subject="Hi", body="Hi {{ name }}", control_share=0)
    prepare_campaign(base, "everyone")  # an admin's campaign over the whole base
    with TestClient(create_app(base), follow_redirects=False) as client:
        csrf = _sign_in(client, "mia")
        assert client.post("/campaigns/everyone/send", data={"csrf_token": csrf}).status_code == 403
        assert client.post("/campaigns/everyone/discard", data={"csrf_token": csrf}).status_code == 403
        outside = client.post("/campaigns/new/preview", data={"csrf_token": csrf, **WIZARD, "segment": "the twelfth"})
        assert "selects nobody" in outside.text
        assert "Client 12" not in outside.text
        created = client.post("/campaigns/new", data={"csrf_token": csrf, **WIZARD, "control": "0"})
        assert created.status_code == 303
        with base.connect() as conn:
            members = conn.execute(
                select(MEMBERS.c.customer_id).join(CAMPAIGNS, CAMPAIGNS.c.id == MEMBERS.c.campaign_id)
                .where(CAMPAIGNS.c.campaign_key == "spring-mail")
            ).scalars().all()  # fmt: skip
        assert sorted(members) == sorted([ids["1"], ids["2"]])
        assert client.post("/campaigns/spring-mail/send", data={"csrf_token": csrf}).status_code == 303
        assert _wait_until_sent(base, "spring-mail") == "sent"
    assert sorted(message["To"] for message in smtp_settings.messages) == ["c1@example.com", "c2@example.com"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_a_marketer_saves_a_segment_targets_it_previews_sends_and_sees_a_response(
    base: Engine, smtp_settings: Inbox
) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    inbox = smtp_settings
    with serving(base) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        sign_in_page(page, url, "mark", PASSWORD)
        page.goto(url + "/segments")
        page.locator("#rule").fill('source == "crm" and customer_id > 0')
        expect(page.locator("#live-count")).to_contain_text("12 of 12 customers match")
        page.locator("input[name=name]").fill("spring list")
        page.get_by_role("button", name="Save segment").click()
        expect(page.get_by_role("status")).to_contain_text("Segment 'spring list' saved.")
        page.get_by_role("link", name="spring list").click()
        expect(page.locator("#member-count")).to_have_text("12")

        page.locator("#target").click()
        expect(page.locator("#segment")).to_have_value("spring list")
        expect(page.locator("#control")).to_have_value("10")
        page.locator("#subject").fill("Spring news for {{ first_name }}")
        page.locator("#preview-button").click()
        expect(page.locator("#sample-message")).to_contain_text("Spring news for Client")
        page.locator("#prepare-button").click()
        expect(page.get_by_role("status")).to_contain_text("Nothing is sent yet")
        key = page.url.split("/campaigns/", 1)[1].split("?", 1)[0]
        eligible = _eligible_addresses(base, key)
        expect(page.locator("#to-send")).to_have_text(f"{len(eligible)} e-mails")
        expect(page.locator("#blocked")).to_contain_text("no e-mail address")
        assert inbox.messages == []

        page.locator("#send").click()
        expect(page.get_by_role("status")).to_contain_text("Sending")
        expect(page.locator("#live-status")).to_have_text("sent", timeout=20_000)  # the panel polls every 5 s
        assert sorted(message["To"] for message in inbox.messages) == sorted(eligible)

        form = page.locator("#record-response")
        form.locator("input[name=customer]").fill(sorted(eligible)[0])
        form.locator("input[name=kind]").fill("clicked")
        form.get_by_role("button", name="Record").click()
        expect(page.get_by_role("status")).to_contain_text("Response recorded")
        expect(page.locator("#live-responses")).to_have_text("clicked 1")
        expect(page.locator("#arms")).to_contain_text("A")
        browser.close()
    with base.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(RESPONSES).where(RESPONSES.c.kind == "clicked")) == 1


ACTIONS = ("#edit-details", "#log-contact", "#open-case", "#record-consent", "#target", "#export", "#edit-segment",
           "#delete-segment", "#new-campaign", "#send", "#discard", "#record-response", "#assign-case")  # fmt: skip
MAY_USE = {
    "ana": {"#export", "#edit-segment", "#delete-segment"},  # an analyst exports pseudonyms and manages segments
    "agent": {"#edit-details", "#log-contact", "#open-case", "#record-consent", "#assign-case"},
}


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_the_analyst_and_the_agent_see_no_personal_data_or_action_they_may_not_take(
    base: Engine, tmp_path: Any
) -> None:
    """Journey (d): every page of the journeys as the analyst and as the agent; the screenshots are looked at."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415  (browser tests only)

    from patron.service.cases import open_case  # noqa: PLC0415

    create_campaign(base, "spring-mail", "Spring", rule=RULE, subject="Hi", body="Hi {{ name }}", control_share=0.1)
    prepare_campaign(base, "spring-mail")
    case = open_case(base, _ids(base)["1"], subject="Late parcel", kind="complaint").id
    pages = ["/customers", "/customers/crm:1", "/segments", "/segments/crm%20people", "/campaigns",
             "/campaigns/spring-mail", "/service", f"/service/cases/{case}", "/campaigns/new"]  # fmt: skip
    seen: dict[tuple[str, str], tuple[int, str, set[str]]] = {}
    with serving(base) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        for user in ("ana", "agent"):
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            sign_in_page(page, url, user, PASSWORD)
            for path in pages:
                reply = page.goto(url + path)
                assert reply is not None
                shown = {selector for selector in ACTIONS if page.locator(selector).count()}
                seen[(user, path)] = (reply.status, page.locator("main").inner_text(), shown)
                name = path.strip("/").replace("/", "-").replace("%20", "-") or "home"
                page.screenshot(path=str(tmp_path / f"{user}-{name}.png"), full_page=True)
            page.close()
        browser.close()
    for (user, path), (_, text, shown) in seen.items():
        assert shown <= MAY_USE[user], (user, path, shown - MAY_USE[user])
        if user == "ana":
            assert "Client " not in text, (path, "a name")
            assert "@example.com" not in text, (path, "an e-mail address")
    assert seen[("ana", "/customers/crm:1")][0] == 200  # what the analyst may read, pseudonymised
    assert seen[("ana", "/segments/crm%20people")][2] == {"#export", "#edit-segment", "#delete-segment"}
    assert seen[("ana", f"/service/cases/{case}")][0] == 403
    assert seen[("agent", "/customers/crm:1")][2] == MAY_USE["agent"] - {"#assign-case"}
    assert "Client 1" in seen[("agent", "/customers/crm:1")][1]  # the agent serves customers by name
    assert seen[("agent", f"/service/cases/{case}")][2] == {"#assign-case"}
    assert {seen[(user, "/campaigns/new")][0] for user in ("ana", "agent")} == {403}


def test_a_send_the_mail_server_stops_says_why_and_carries_on_without_sending_twice(
    base: Engine, smtp_settings: Inbox
) -> None:
    from patron.engage.drafting import is_sending  # noqa: PLC0415

    inbox = smtp_settings
    inbox.refuse_after = 3  # the server answers "try again later" from the fourth message on
    with TestClient(create_app(base), follow_redirects=False) as client:
        csrf = _sign_in(client, "mark")
        assert client.post("/campaigns/new", data={"csrf_token": csrf, **WIZARD}).status_code == 303
        eligible = _eligible_addresses(base, "spring-mail")
        assert client.post("/campaigns/spring-mail/send", data={"csrf_token": csrf}).status_code == 303
        deadline = time.monotonic() + 60
        while is_sending("spring-mail") and time.monotonic() < deadline:
            time.sleep(0.1)
        page = client.get("/campaigns/spring-mail").text
        assert 'id="send-stopped"' in page
        assert "channel failed" in page.split('id="send-stopped"', 1)[1][:300]
        assert f"Carry on sending ({len(eligible) - 3} left)" in page
        assert len(inbox.messages) == 3

        inbox.refuse_after = None
        assert client.post("/campaigns/spring-mail/send", data={"csrf_token": csrf}).status_code == 303
        assert _wait_until_sent(base, "spring-mail") == "sent"
        assert 'id="send-stopped"' not in client.get("/campaigns/spring-mail").text
    assert sorted(message["To"] for message in inbox.messages) == sorted(eligible)  # each once


@pytest.fixture
def sms_gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, str]]]:
    """A local SMS gateway's webhook (every text it is given), and the app's settings pointing at it."""
    received: list[dict[str, str]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200 if self.headers.get("Authorization") == "Bearer gateway-token" else 401)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PATRON_SMS_WEBHOOK_URL", f"http://127.0.0.1:{server.server_address[1]}/sms")
    monkeypatch.setenv("PATRON_SMS_WEBHOOK_TOKEN", "gateway-token")
    get_settings.cache_clear()
    try:
        yield received
    finally:
        get_settings.cache_clear()
        server.shutdown()
        server.server_close()


TEXTING = {"segment": "phones", "key": "text-ahead", "name": "Text ahead", "channel": "sms", "control": "0",
           "arms": "A", "subject": "", "body": "Hi {{ first_name }}, your order is on its way"}  # fmt: skip


def _phones(engine: Engine, write_file: WriteFile) -> None:
    """Three customers of a phone book: Ann consents to texts, Bob does not, Cid consents but has no number."""
    path = write_file("phones.csv", "id,phone,first\np1,+1 212 555 0101,Ann\np2,+1 212 555 0102,Bob\np3,,Cid\n")
    mapping = {"source": {"system": "tel"}, "customers": {"external_id": "id", "phone": "phone", "first_name": "first"}}
    import_file(engine, path, parse_mapping(mapping), rejects_dir=path.parent)
    ids = _ids(engine)
    for external in ("p1", "p3"):
        record_consent(engine, ids[external], channel="sms")
    create_segment(engine, "phones", 'source == "tel"')
    evaluate_segments(engine)


def test_a_text_message_campaign_from_the_wizard_reaches_the_consenting_phones(
    base: Engine, write_file: WriteFile, sms_gateway: list[dict[str, str]]
) -> None:
    _phones(base, write_file)
    with TestClient(create_app(base), follow_redirects=False) as client:
        csrf = _sign_in(client, "mark")
        assert client.post("/campaigns/new", data={"csrf_token": csrf, **TEXTING}).status_code == 303
        prepared = client.get("/campaigns/text-ahead").text
        assert "1 text message</strong> will go" in prepared
        assert "Send 1 text message now" in prepared
        blocked = prepared.split('id="blocked"', 1)[1].split("</table>", 1)[0]
        assert "<td>sms consent for marketing not given</td><td>1</td>" in blocked  # Bob
        assert "<td>no phone number</td><td>1</td>" in blocked  # Cid
        assert client.post("/campaigns/text-ahead/send", data={"csrf_token": csrf}).status_code == 303
        assert _wait_until_sent(base, "text-ahead") == "sent"
    assert sms_gateway == [{"to": "+12125550101", "text": "Hi Ann, your order is on its way"}]


def test_without_an_sms_gateway_the_wizard_offers_no_texts_and_refuses_one_beside_the_channel(base: Engine) -> None:
    with TestClient(create_app(base), follow_redirects=False) as client:
        csrf = _sign_in(client, "mark")
        wizard = client.get("/campaigns/new?segment=crm%20people").text
        assert 'value="sms"  disabled>Text message (SMS): no SMS gateway is configured' in wizard
        refused = client.post("/campaigns/new", data={"csrf_token": csrf, **WIZARD, "channel": "sms"})
        assert refused.status_code == 422
        assert "PATRON_SMS_WEBHOOK_URL" in refused.text.split('id="channel-error"', 1)[1][:400]
        no_subject = client.post("/campaigns/new", data={"csrf_token": csrf, **WIZARD, "subject": " "})
        assert no_subject.status_code == 422
        assert "an e-mail needs a subject" in no_subject.text.split('id="subject-error"', 1)[1][:200]
    assert _count(base, CAMPAIGNS) == 0
