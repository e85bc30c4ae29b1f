"""Each customer's own offer and recommended products in every send: a campaign set to "each customer's best offer"
goes over real SMTP (aiosmtpd) to exactly the consenting members; every message carries that customer's decided offer
and three products they have not bought; the contacts store which offer and why; responses are reported per offer.
And the bad inputs: an offer that expires between preparing and sending, a customer with no history (cold start), a
message that cannot be written, a campaign without a randomised control asked for uplift."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from patron.app import create_app
from patron.auth.service import authenticate, create_user, issue_token
from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.engage.call_list import call_list
from patron.engage.campaigns import create_campaign, prepare_campaign
from patron.engage.channels import SmtpChannel
from patron.engage.consent import record_consent
from patron.engage.offers import create_offer, next_best_offer
from patron.engage.recommendations import recommendations_for, train_recommendations
from patron.engage.report import offer_results
from patron.engage.schema import CampaignContact, Offer, Recommendation, RecommendedProduct, RecommenderRun
from patron.engage.sending import preview_messages, record_response, send_campaign
from patron.errors import InvalidInputError
from patron.predict.campaign_uplift import train_uplift
from tests.conftest import Inbox, WriteFile
from tests.test_pages import CHROMIUM, serving, sign_in_page

CATALOGUE = {"tent": "Dome tent", "stove": "Camping stove", "bag": "Sleeping bag", "lamp": "Head lamp",
             "novel": "Crime novel", "reading-lamp": "Reading lamp", "bookmark": "Leather bookmark",
             "shelf": "Book shelf", "batteries": "Batteries"}  # fmt: skip
SHOP = {
    "source": {"system": "outdoor", "format": "csv", "currency": "GBP", "date_format": "%Y-%m-%d"},
    "customers": {"external_id": "customer", "email": "email", "first_name": "first"},
    "orders": {"customer": "customer", "order_id": "order", "ordered_at": "date", "quantity": "quantity",
               "unit_price": "price", "product": "sku"},
    "products": {"sku": "sku", "name": "name"},
}  # fmt: skip
BODY = (
    "Dear {{ first_name }},\n{% if offer %}Your offer: {{ offer.name }}.{% endif %}\n"
    "{% for item in recommendations %}- {{ item.name }} at {{ item.price }}\n{% endfor %}{{ manager_signature }}"
)


def shop(engine: Engine, write_file: WriteFile) -> dict[str, int]:
    """60 customers (seeded): campers buy a tent, then bags, stoves and lamps; readers buy novels, then lamps, bookmarks
    and shelves; everyone buys batteries. Two customers are new (no orders): c61 and c62."""
    rng = random.Random(5)
    lines = ["customer,email,first,order,date,quantity,price,sku,name"]
    for number in range(1, 61):
        camper = number % 2 == 1
        first, follow = (
            ("tent", ["stove", "bag", "lamp"]) if camper else ("novel", ["reading-lamp", "bookmark", "shelf"])
        )
        bought = [first, "batteries", *rng.sample(follow, 2)]
        for index, sku in enumerate(bought):
            day = dt.date(2025, 1, 10) + dt.timedelta(days=40 * index + rng.randint(0, 20))
            lines.append(f"c{number},c{number}@example.com,Cus{number},o{number}-{index},{day},1,"
                         f"{9.5 + len(sku)},{sku},{CATALOGUE[sku]}")  # fmt: skip
    path = write_file("outdoor.csv", "\n".join(lines) + "\n")
    assert import_file(engine, path, parse_mapping(SHOP), rejects_dir=path.parent).rejected == 0
    people = write_file("new.csv", "customer,email,first\nc61,c61@example.com,New\nc62,c62@example.com,Newer\n")
    newcomers = {"source": SHOP["source"], "customers": SHOP["customers"]}
    assert import_file(engine, people, parse_mapping(newcomers), rejects_dir=people.parent).rejected == 0
    with engine.connect() as conn:
        found = conn.execute(select(s.Identity.value, s.Identity.customer_id).where(s.Identity.kind == "external"))
        ids = {str(value): int(customer) for value, customer in found}
    for number in range(1, 63):
        if number != 7:  # c7 never consented
            record_consent(engine, ids[f"c{number}"], channel="email")
    return ids


def owned(engine: Engine, customer_id: int) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.scalars(
                select(s.Product.name)
                .join(s.OrderLine, s.OrderLine.product_id == s.Product.id)
                .join(s.Order, s.Order.id == s.OrderLine.order_id)
                .where(s.Order.customer_id == customer_id)
            )
        )


def test_each_customer_gets_their_own_offer_and_products_over_smtp(
    engine: Engine, write_file: WriteFile, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    ids = shop(engine, write_file)
    trained = train_recommendations(engine, k=10)
    assert trained.customers == 60
    assert set(trained.hit_rate) == {"popularity", "item-item", "als", "bpr"}
    create_offer(engine, "camping weekend", margin=30, eligibility="revenue > 40")
    create_offer(engine, "welcome voucher", margin=5)

    create_campaign(
        engine, "autumn", "Autumn, for each their own", rule="orders >= 0", subject="For you, {{ first_name }}",
        body=BODY,
        control_share=0.1, best_offer=True,
    )  # fmt: skip
    prepared = prepare_campaign(engine, "autumn")
    assert prepared.members == 62
    assert prepared.control == 6
    assert prepared.blocked == ({"email consent for marketing not given": 1} if prepared.pending == 55 else {})
    previews = preview_messages(engine, "autumn", sample=2)
    assert len(previews) == 2
    assert all(p.offer and p.offer in p.body for p in previews)

    result = send_campaign(engine, "autumn", SmtpChannel("127.0.0.1", port, "news@patron.test"))
    assert (result.sent, result.failed, result.remaining) == (prepared.pending, 0, 0)
    with engine.connect() as conn:
        contacts = {
            row.customer_id: row
            for row in conn.execute(
                select(table_of(CampaignContact), table_of(Offer).c.name.label("offer_name")).outerjoin(
                    table_of(Offer), table_of(Offer).c.id == table_of(CampaignContact).c.offer_id
                )
            )
        }
    sent = {row.address: row for row in contacts.values() if row.status == "sent"}
    assert set(sent) == {str(message["To"]) for message in inbox.messages}  # exactly the eligible, consenting members
    assert ids["c7"] not in {row.customer_id for row in sent.values()}
    assert len(inbox.messages) == prepared.pending
    for message in inbox.messages:
        contact = sent[str(message["To"])]
        body = message.get_payload(decode=True).decode()
        # The customer's own decided offer, the same as the live next-best-offer lookup gives, and why.
        assert contact.offer_name == next_best_offer(engine, contact.customer_id).offer
        assert f"Your offer: {contact.offer_name}." in body
        assert contact.offer_reason.startswith(f"{contact.offer_name}: P(accept)")
        products = [line[2:].split(" at ")[0] for line in body.splitlines() if line.startswith("- ")]
        assert len(products) == 3
        assert not set(products) & owned(engine, contact.customer_id)
        assert all(line.endswith(" GBP") for line in body.splitlines() if line.startswith("- "))
    assert {row.offer_name for row in sent.values()} == {"camping weekend", "welcome voucher"}

    # A call list's briefings carry the same: the offer to make on the phone and the same three products.
    for briefing in call_list(engine, "orders > 0", limit=3):
        assert briefing.offer == next_best_offer(engine, briefing.customer_id, channel="phone").offer
        expected = [item.as_context() for item in recommendations_for(engine, briefing.customer_id, k=3).items]
        assert briefing.recommendations == expected
        assert len(expected) == 3

    # Cold start: a customer with no history gets the popular products, and says so.
    newcomer = recommendations_for(engine, ids["c61"], k=3)
    assert newcomer.basis == "popular"
    assert "cold start" in newcomer.explanation
    assert len(newcomer.items) == 3
    assert newcomer.items[0].name == "Batteries"  # everyone buys them

    # Responses recorded; the report splits the results per offer, beside the control group.
    responders = [row.customer_id for row in sent.values() if row.offer_name == "camping weekend"][:3]
    for customer in responders:
        record_response(engine, "autumn", customer, "bought", value=40.0, currency="GBP")
    by_offer = {row.offer: row for row in offer_results(engine, "autumn", "bought")}
    assert set(by_offer) == {"control", "camping weekend", "welcome voucher"}
    assert by_offer["camping weekend"].responders == 3
    assert by_offer["welcome voucher"].responders == 0
    assert by_offer["control"].contacted == 6
    assert sum(row.contacted for name, row in by_offer.items() if name != "control") == prepared.pending


def test_an_offer_that_expires_before_sending_is_not_sent(
    engine: Engine, write_file: WriteFile, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    shop(engine, write_file)
    create_offer(engine, "camping weekend", margin=30, eligibility="revenue > 40")
    create_offer(engine, "welcome voucher", margin=5)
    create_campaign(
        engine, "late", "Late", rule="orders > 0", subject="Hi", body=BODY, control_share=0, best_offer=True
    )
    prepared = prepare_campaign(engine, "late")
    yesterday = dt.date.today() - dt.timedelta(days=1)
    with engine.begin() as conn:
        conn.execute(
            update(table_of(Offer)).where(table_of(Offer).c.name == "camping weekend").values(valid_to=yesterday)
        )
    result = send_campaign(engine, "late", SmtpChannel("127.0.0.1", port, "news@patron.test"))
    with engine.connect() as conn:
        rows = conn.execute(
            select(table_of(CampaignContact).c.status, table_of(CampaignContact).c.reason, table_of(Offer).c.name)
            .join(table_of(Offer), table_of(Offer).c.id == table_of(CampaignContact).c.offer_id)
        ).all()  # fmt: skip
    expired = [row for row in rows if row.name == "camping weekend"]
    assert expired
    assert all(row.status == "blocked" and "no longer valid" in row.reason for row in expired)
    assert result.sent == len(inbox.messages) == sum(1 for row in rows if row.name == "welcome voucher")
    assert prepared.pending == result.sent + len(expired)
    assert all("camping weekend" not in message.get_payload(decode=True).decode() for message in inbox.messages)


def test_a_message_that_cannot_be_written_fails_that_contact_and_the_rest_go(
    engine: Engine, write_file: WriteFile, smtp: tuple[Inbox, int]
) -> None:
    _inbox, port = smtp
    shop(engine, write_file)
    create_offer(engine, "welcome voucher", margin=5)
    with pytest.raises(InvalidInputError, match="unknown variable"):
        create_campaign(
            engine, "typo", "Typo", rule="orders >= 0", subject="Hi", body="{{ frist_name }}", offer="welcome voucher"
        )
    # The offer is known but an attribute of it is not: found only when the message is written.
    body = "{% if first_name == 'Cus3' %}{{ offer.no_such.field }}{% endif %}Hello {{ first_name }}"
    create_campaign(
        engine, "odd", "Odd", rule="orders > 0", subject="Hi", body=body, control_share=0, offer="welcome voucher"
    )
    prepared = prepare_campaign(engine, "odd")
    result = send_campaign(engine, "odd", SmtpChannel("127.0.0.1", port, "news@patron.test"))
    assert (result.sent, result.failed, result.remaining) == (prepared.pending - 1, 1, 0)
    with engine.connect() as conn:
        failed = conn.execute(
            select(table_of(CampaignContact).c.reason).where(table_of(CampaignContact).c.status == "failed")
        ).scalar_one()
    assert "could not be written" in failed
    assert "no_such" in failed


def test_uplift_needs_a_randomised_control_group(engine: Engine, write_file: WriteFile) -> None:
    shop(engine, write_file)
    create_offer(engine, "welcome voucher", margin=5)
    create_campaign(
        engine,
        "all",
        "No control",
        rule="orders >= 0",
        subject="Hi",
        body="Hi",
        control_share=0,
        offer="welcome voucher",
    )
    prepare_campaign(engine, "all")
    with pytest.raises(InvalidInputError, match="randomised control group"):
        train_uplift(engine, "all-visit", campaign="all", kind="visit")
    with pytest.raises(InvalidInputError, match="there is no model called 'nothing'"):
        create_campaign(
            engine,
            "u",
            "U",
            rule="orders >= 0",
            subject="Hi",
            body="Hi",
            offer="welcome voucher",
            uplift_model="nothing",
        )
    with pytest.raises(InvalidInputError, match="needs an offer"):
        create_campaign(engine, "u", "U", rule="orders >= 0", subject="Hi", body="Hi", uplift_model="nothing")


def test_the_api_serves_a_customers_recommendations(engine: Engine, write_file: WriteFile) -> None:
    ids = shop(engine, write_file)
    client = TestClient(create_app(engine))
    create_user(engine, "agent", "a-long-password-1", role="agent")
    token = issue_token(engine, authenticate(engine, "agent", "a-long-password-1"))
    headers = {"Authorization": f"Bearer {token}"}
    before: dict[str, Any] = client.get(f"/api/customers/{ids['c1']}/recommendations", headers=headers).json()
    assert before["basis"] == "none"
    assert before["items"] == []
    train_recommendations(engine)
    answer = client.get(f"/api/customers/{ids['c1']}/recommendations?k=2", headers=headers).json()
    assert answer["basis"] == "personal"
    assert len(answer["items"]) == 2
    assert not {item["name"] for item in answer["items"]} & owned(engine, ids["c1"])
    assert answer["items"][0]["price"].endswith(" GBP")
    assert client.get(f"/api/customers/{ids['c1']}/recommendations?k=0", headers=headers).status_code == 422
    for _ in range(2):  # the last two runs are kept; an older one goes with its rows
        train_recommendations(engine)
    with engine.connect() as conn:
        runs = conn.scalars(select(table_of(RecommenderRun).c.id)).all()
        kept = set(conn.scalars(select(table_of(Recommendation).c.run_id).distinct()))
        priced = set(conn.scalars(select(table_of(RecommendedProduct).c.run_id).distinct()))
    assert len(runs) == 2
    assert kept == priced == set(runs)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_the_pages_show_a_customers_products_and_a_campaigns_messages(
    engine: Engine, write_file: WriteFile, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    """In Chromium: a manager sees a customer's recommended products and what the first customers of a campaign get
    (their own offer and products); an analyst sees the results per offer but no one's message."""
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    _, port = smtp
    ids = shop(engine, write_file)
    train_recommendations(engine)
    create_offer(engine, "camping weekend", margin=30, eligibility="revenue > 40")
    create_campaign(engine, "web", "Web", rule="orders > 0", subject="Hi {{ first_name }}", body=BODY, best_offer=True)
    prepare_campaign(engine, "web")
    send_campaign(engine, "web", SmtpChannel("127.0.0.1", port, "news@patron.test"))
    with engine.connect() as conn:
        sent = conn.scalars(
            select(table_of(CampaignContact).c.customer_id).where(table_of(CampaignContact).c.status == "sent")
        ).all()
    record_response(engine, "web", sent[0], "bought", value=30.0, currency="GBP")
    create_user(engine, "admin", "admin-password", "admin")
    create_user(engine, "ana", "ana-password", "analyst")
    products = [item.name for item in recommendations_for(engine, ids["c1"], k=5).items]
    with serving(engine) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        sign_in_page(page, url, "admin", "admin-password")
        page.goto(f"{url}/customers/{ids['c1']}")
        expect(page.locator("#recommended li")).to_have_count(5)
        expect(page.locator("#recommended")).to_contain_text(products[0])
        page.goto(f"{url}/campaigns/web")
        expect(page.locator("#previews article")).to_have_count(3)
        expect(page.locator("#previews")).to_contain_text("offer camping weekend")
        expect(page.locator("#offers")).to_contain_text("camping weekend")
        page.screenshot(path=str(tmp_path / "campaign-admin.png"), full_page=True)
        page.click("text=sign out")
        sign_in_page(page, url, "ana", "ana-password")
        page.goto(f"{url}/campaigns/web")
        expect(page.locator("#offers")).to_contain_text("camping weekend")
        expect(page.locator("#previews")).to_have_count(0)
        assert "Dear Cus" not in page.content()  # nobody's message
        page.screenshot(path=str(tmp_path / "campaign-analyst.png"), full_page=True)
        browser.close()
