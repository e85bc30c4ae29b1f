"""A campaign end to end on both stores: target, control group, contact policy, real SMTP delivery (a local
aiosmtpd server), a failure mid-batch and its resumption, responses and the report."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine, func, select

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.engage.campaigns import create_campaign, prepare_campaign
from patron.engage.channels import SmtpChannel
from patron.engage.consent import record_consent
from patron.engage.letters import LetterBatch
from patron.engage.offers import create_offer
from patron.engage.recommend import ItemItemRecommender, evaluate, purchases
from patron.engage.report import campaign_report
from patron.engage.schema import OfferCandidate, OfferDecision
from patron.engage.sending import contact_statuses, record_response, send_campaign
from patron.errors import InvalidInputError, NotFoundError
from tests.conftest import Inbox, WriteFile

SHOP: dict[str, Any] = {
    "source": {"system": "shop", "format": "csv", "currency": "USD", "date_format": "%Y-%m-%d"},
    "customers": {"external_id": "id", "email": "email", "first_name": "first", "display_name": "name"},
    "orders": {"customer": "id", "order_id": "order", "ordered_at": "date", "revenue": "amount"},
}
BODY = "Dear {{ first_name }},\nthanks for your order of {{ last_purchase }}.\n{{ manager_signature }}"


def customers(engine: Engine, write_file: WriteFile, *, consenting: Iterable[int] = ()) -> dict[str, int]:
    """21 shop customers c1..c21 (c21 without an e-mail address); those ``consenting`` grant e-mail consent."""
    rows = "id,email,first,name,order,date,amount\n" + "".join(
        f"c{i},c{i}@example.com,Cus{i},Cus{i} Tomer,o{i},2024-0{1 + i % 9}-15,{20 + i}\n" for i in range(1, 21)
    )
    rows += "c21,,Nomail,Nomail Tomer,o21,2024-03-01,50\n"
    path = write_file("shop.csv", rows)
    assert import_file(engine, path, parse_mapping(SHOP), rejects_dir=path.parent).rejected == 0
    with engine.connect() as conn:
        found = conn.execute(select(s.Identity.value, s.Identity.customer_id).where(s.Identity.kind == "external"))
        ids = {str(value): int(customer) for value, customer in found}
    for number in consenting:
        record_consent(engine, ids[f"c{number}"], channel="email")
    return ids


def test_campaign_reaches_exactly_the_eligible_consenting_customers(
    engine: Engine, write_file: WriteFile, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    ids = customers(engine, write_file, consenting=[n for n in range(1, 22) if n not in (2, 3)])  # c2, c3 never did
    record_consent(engine, ids["c4"], channel="email", status="withdrawn")  # withdrawal takes effect at once
    with engine.begin() as conn:
        conn.execute(
            table_of(s.ContactPreference).insert().values(customer_id=ids["c5"], channel="email", max_per_month=0)
        )

    create_campaign(
        engine, "spring", "Spring thank-you", rule="orders > 0", subject="Thank you, {{ first_name }}", body=BODY,
        control_share=0.2, arms=("A", "B"),
    )  # fmt: skip
    prepared = prepare_campaign(engine, "spring")
    assert prepared.members == 21
    assert prepared.control == 4
    statuses = contact_statuses(engine, "spring")
    assert statuses["control"] == 4
    assert sum(statuses.values()) == 21

    with engine.connect() as conn:
        rows = conn.execute(select(table_of(s.Customer).c.id)).all()
        plan = {
            int(r.customer_id): (r.status, r.reason)
            for r in conn.execute(select(s.Base.metadata.tables["campaign_contacts"]))
        }
    assert len(rows) == 21
    reason = {customer: why for customer, (_status, why) in plan.items()}
    eligible = {customer for customer, (status, _) in plan.items() if status == "pending"}
    # Every refusal is recorded with its reason, and the reasons are the ones set up above.
    refusals = {
        "c2": "email consent for marketing not given",
        "c3": "email consent for marketing not given",
        "c4": "email consent for marketing withdrawn",
        "c5": "asked for at most 0 email contacts a month",
        "c21": "no e-mail address",
    }
    for name, expected in refusals.items():
        if plan[ids[name]][0] != "control":
            assert reason[ids[name]] == expected

    inbox.refuse_after = 3  # the channel fails mid-batch
    first = send_campaign(engine, "spring", SmtpChannel("127.0.0.1", port, "news@patron.test"))
    assert (first.sent, first.failed) == (3, 1)
    assert first.error is not None
    assert contact_statuses(engine, "spring")["pending"] == len(eligible) - 3
    inbox.refuse_after = None
    second = send_campaign(engine, "spring", SmtpChannel("127.0.0.1", port, "news@patron.test"))
    assert second.sent == len(eligible) - 3
    assert second.remaining == 0

    recipients = [message["To"] for message in inbox.messages]
    assert len(recipients) == len(set(recipients))  # nobody twice
    with engine.connect() as conn:
        emails = dict(
            conn.execute(select(s.Identity.customer_id, s.Identity.value).where(s.Identity.kind == "email")).all()
        )
    assert set(recipients) == {emails[c] for c in eligible}
    sample = inbox.messages[0]
    assert sample["Subject"].startswith("Thank you, Cus")
    assert "thanks for your order of 2024-" in sample.get_payload()
    assert "Your customer team" in sample.get_payload()

    # Simulated responses: every contacted customer opens, half of them buy; one control customer buys too.
    treated = sorted(eligible)
    for index, customer in enumerate(treated):
        record_response(
            engine, "spring", customer, "bought" if index % 2 else "opened", value=30.0 if index % 2 else None
        )
    control = [c for c, (status, _) in plan.items() if status == "control"]
    record_response(engine, "spring", control[0], "bought", value=10.0)
    report = campaign_report(engine, "spring", "bought")
    arms = {arm.arm: arm for arm in report.arms}
    assert arms["control"].responders == 1
    assert sum(arm.responders for arm in report.arms if not arm.is_control) == len(treated) // 2
    assert all(arm.ci_low is not None for arm in report.arms if not arm.is_control)


def test_withdrawing_consent_stops_a_running_campaigns_sends(
    engine: Engine, write_file: WriteFile, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    customers(engine, write_file, consenting=range(1, 21))
    create_campaign(
        engine, "autumn", "Autumn news", rule="orders > 0", subject="News for {{ first_name }}", body=BODY,
        control_share=0.0,
    )  # fmt: skip
    prepare_campaign(engine, "autumn")
    channel = SmtpChannel("127.0.0.1", port, "news@patron.test")
    first = send_campaign(engine, "autumn", channel, limit=5)
    assert first.sent == 5
    with engine.connect() as conn:
        contacts = s.Base.metadata.tables["campaign_contacts"]
        waiting = [int(c) for c in conn.scalars(select(contacts.c.customer_id).where(contacts.c.status == "pending"))]
    leaving = waiting[3]
    record_consent(engine, leaving, channel="email", status="withdrawn")  # while the campaign is under way

    rest = send_campaign(engine, "autumn", channel)
    assert rest.sent == len(waiting) - 1
    assert rest.remaining == 0
    with engine.connect() as conn:
        address = conn.scalar(
            select(s.Identity.value).where(s.Identity.customer_id == leaving, s.Identity.kind == "email")
        )
        fate = conn.execute(select(contacts.c.status, contacts.c.reason).where(contacts.c.customer_id == leaving)).one()
    assert address not in [message["To"] for message in inbox.messages]
    assert len(inbox.messages) == 5 + len(waiting) - 1
    assert tuple(fate) == ("blocked", "consent withdrawn after the campaign was prepared")


POSTAL: dict[str, Any] = {
    "source": {"system": "shop", "format": "csv", "currency": "USD", "date_format": "%Y-%m-%d"},
    "customers": {"external_id": "id", "first_name": "first", "display_name": "name",
                  "profile": {"street": "street", "postal_code": "zip", "city": "city"}},
    "orders": {"customer": "id", "order_id": "order", "ordered_at": "date", "revenue": "amount"},
}  # fmt: skip


def test_direct_mail_is_a_letter_batch_for_exactly_the_customers_with_an_address(
    engine: Engine, write_file: WriteFile, tmp_path: Path
) -> None:
    rows = "id,first,name,street,zip,city,order,date,amount\n" + "".join(
        f"m{i},Zoë{i},Zoë Müller {i},{i} Lindenweg,1{i:04d},Köln,o{i},2024-05-0{1 + i % 9},{30 + i}\n"
        for i in range(1, 7)
    )
    rows += "m7,Nopost,Nopost Person,,,,o7,2024-05-09,40\n"
    assert import_file(engine, write_file("post.csv", rows), parse_mapping(POSTAL)).rejected == 0
    with engine.connect() as conn:
        ids = dict(
            conn.execute(select(s.Identity.value, s.Identity.customer_id).where(s.Identity.kind == "external")).all()
        )
    for customer in ids.values():
        record_consent(engine, customer, channel="mail")
    create_campaign(
        engine, "letters", "Letter", rule="orders > 0", subject="A gift for you, {{ first_name }}",
        body="Dear {{ first_name }},\nthank you for your order of {{ last_purchase }}.", channel="mail",
        control_share=0.0,
    )  # fmt: skip
    prepared = prepare_campaign(engine, "letters")
    assert prepared.pending == 6
    assert prepared.blocked == {"no postal address": 1}

    folder = tmp_path / "letters"
    batch = LetterBatch(folder, when=dt.date(2026, 11, 23))
    first = send_campaign(engine, "letters", batch, limit=4)
    rest = send_campaign(engine, "letters", LetterBatch(folder, when=dt.date(2026, 11, 23)))  # a resumed batch
    assert (first.sent, rest.sent, rest.remaining) == (4, 2, 0)
    printed = batch.close()

    manifest = (folder / "manifest.csv").read_text(encoding="utf-8").splitlines()
    assert manifest[0] == "letter,address,subject"
    assert [line.split(",")[0] for line in manifest[1:]] == ["1", "2", "3", "4", "5", "6"]
    assert all("Lindenweg" in line and "Köln" in line for line in manifest[1:])
    assert sorted(p.name for p in folder.glob("letter-*.pdf")) == [f"letter-{n:04d}.pdf" for n in range(1, 7)]
    pdf = printed.read_bytes()
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 4  # this run's four letters, one page each
    assert contact_statuses(engine, "letters") == {"sent": 6, "blocked": 1}


def test_bad_campaign_input_is_refused(engine: Engine, write_file: WriteFile) -> None:
    customers(engine, write_file)
    with pytest.raises(InvalidInputError, match=r"unknown variable\(s\) shoe_size"):
        create_campaign(engine, "x", "X", rule="orders > 0", subject="Hi", body="Your size: {{ shoe_size }}")
    with pytest.raises(InvalidInputError, match="does not parse"):
        create_campaign(engine, "x", "X", rule="orders > 0", subject="Hi {{ name", body="b")
    with pytest.raises(InvalidInputError, match="negative margin"):
        create_offer(engine, "loss leader", margin=-5.0)
    with pytest.raises(InvalidInputError, match="control share"):
        create_campaign(engine, "x", "X", rule="orders > 0", subject="Hi", body="b", control_share=1.0)
    with engine.connect() as conn:
        assert conn.scalar(select(table_of(s.Campaign).c.id)) is None  # nothing was half-made


def test_thompson_sampling_sends_most_customers_to_the_better_arm() -> None:
    from patron.engage.bandit import thompson_allocation  # noqa: PLC0415

    # After a first wave in which arm B answered 30 % and arm A 5 % (200 members each):
    chosen = thompson_allocation(["A", "B"], {"A": (200, 10), "B": (200, 60)}, 1000, seed=1)
    assert chosen.count("B") > 990
    # With no evidence yet, the arms share the base about evenly.
    fresh = thompson_allocation(["A", "B", "C"], {}, 3000, seed=1)
    assert all(800 < fresh.count(arm) < 1200 for arm in "ABC")
    # Close arms both keep being tried.
    close = thompson_allocation(["A", "B"], {"A": (50, 10), "B": (50, 11)}, 1000, seed=1)
    assert 200 < close.count("A") < 800


def test_a_bandit_wave_learns_from_the_first_wave(engine: Engine, write_file: WriteFile) -> None:
    ids = customers(engine, write_file)
    for customer in ids.values():
        record_consent(engine, customer, channel="email")
    create_campaign(
        engine, "wave1", "Wave 1", rule="orders > 0", subject="Hi", body="b", control_share=0.0, arms=("A", "B")
    )
    prepare_campaign(engine, "wave1")
    with engine.connect() as conn:
        members = conn.execute(select(s.CampaignMember.customer_id, s.CampaignMember.arm)).all()
    for customer, arm in members:
        if arm == "B":
            record_response(engine, "wave1", customer, "clicked")
    create_campaign(
        engine, "wave2", "Wave 2", rule="orders > 0", subject="Hi", body="b", control_share=0.0, arms=("A", "B")
    )
    prepare_campaign(engine, "wave2", learn_from=("wave1", "clicked"))
    with engine.connect() as conn:
        second = conn.execute(
            select(s.CampaignMember.arm, func.count())
            .join(s.Campaign, s.Campaign.id == s.CampaignMember.campaign_id)
            .where(s.Campaign.campaign_key == "wave2")
            .group_by(s.CampaignMember.arm)
        ).all()
    assert dict(second).get("B", 0) >= 19  # B answered every time in wave 1: nearly all of wave 2 goes to B


def _two_offers(engine: Engine, write_file: WriteFile, voucher_channel: str | None = None) -> dict[str, int]:
    """The small shop, e-mail consent from c1, c2 and c12, a bundle for those who spent 30 and a voucher for all."""
    ids = customers(engine, write_file)
    for name in ("c1", "c2", "c12"):
        record_consent(engine, ids[name], channel="email")
    create_offer(engine, "big bundle", margin=40.0, eligibility="revenue >= 30")
    create_offer(engine, "small voucher", margin=5.0, channel=voucher_channel)
    return ids


def test_next_best_offer_takes_the_highest_expected_value_the_policy_allows(
    engine: Engine, write_file: WriteFile
) -> None:
    from patron.engage.offers import next_best_offers  # noqa: PLC0415

    ids = _two_offers(engine, write_file)
    choices = {c.customer_id: c for c in next_best_offers(engine, customer_ids=[ids["c1"], ids["c3"], ids["c12"]])}
    assert choices[ids["c12"]].offer == "big bundle"  # spent 32: eligible for both, the bundle is worth more
    assert choices[ids["c12"]].reason.startswith(
        "big bundle: P(accept) 0.02 (bought 0 times in 0 offers made) × margin 40.00"
    )
    assert choices[ids["c1"]].offer == "small voucher"  # spent 21: only the voucher
    assert choices[ids["c3"]].offer is None
    assert choices[ids["c3"]].reason == "not contacted: email consent for marketing not given"
    budgeted = next_best_offers(engine, customer_ids=[ids["c1"], ids["c12"]], budget=1)
    assert [c.offer for c in budgeted] == ["big bundle", None]
    assert budgeted[1].reason == "outside the budget"


def test_call_list_briefs_each_customer_on_one_page(engine: Engine, write_file: WriteFile) -> None:
    from patron.engage.call_list import briefings_csv, briefings_html, call_list  # noqa: PLC0415

    customers(engine, write_file)
    briefings = call_list(engine, "revenue >= 35", limit=10)
    assert [b.name for b in briefings][:2] == ["Nomail Tomer", "Cus20 Tomer"]  # most revenue first (no scores yet)
    assert len(briefings) == 7  # c15..c20 spent 35..40, c21 spent 50
    assert all(b.questions for b in briefings)
    assert "How, and how often" in " ".join(briefings[0].questions)
    html = briefings_html(briefings, "Call list")
    assert html.count("<section>") == 7
    assert "Nomail Tomer" in html
    assert (
        briefings_csv(briefings).splitlines()[0]
        == "customer_id,name,tier,clv,revenue,open_cases,first_question,offer,recommended"
    )


def test_sms_through_a_webhook_resumes_after_the_gateway_fails(engine: Engine, write_file: WriteFile) -> None:
    import json  # noqa: PLC0415
    import threading  # noqa: PLC0415
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: PLC0415

    from patron.engage.channels import WebhookSmsChannel  # noqa: PLC0415

    received: list[dict[str, str]] = []
    state = {"refuse": True}

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if state["refuse"] and len(received) >= 1:
                self.send_response(503)
            else:
                received.append(payload)
                self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        path = write_file("phones.csv", "id,phone,first\np1,+1 212 555 0101,Ann\np2,+1 212 555 0102,Bob\np3,,Cid\n")
        mapping = parse_mapping(
            {
                "source": {"system": "tel", "format": "csv"},
                "customers": {"external_id": "id", "phone": "phone", "first_name": "first"},
            }
        )
        import_file(engine, path, mapping, rejects_dir=path.parent)
        with engine.connect() as conn:
            people = dict(
                conn.execute(
                    select(s.Identity.value, s.Identity.customer_id).where(s.Identity.kind == "external")
                ).all()
            )
        for person in people.values():
            record_consent(engine, person, channel="sms")
        create_campaign(
            engine,
            "text",
            "Text",
            rule="kind == 'customer'",
            subject="",
            body="Hi {{ first_name }}",
            channel="sms",
            control_share=0.0,
        )
        prepared = prepare_campaign(engine, "text")
        assert prepared.blocked == {"no phone number": 1}
        url = f"http://127.0.0.1:{server.server_address[1]}/sms"
        first = send_campaign(engine, "text", WebhookSmsChannel(url))
        assert (first.sent, first.failed) == (1, 1)
        assert "503" in (first.error or "")
        state["refuse"] = False
        assert send_campaign(engine, "text", WebhookSmsChannel(url)).sent == 1
        assert sorted(r["to"] for r in received) == ["+12125550101", "+12125550102"]
        assert {r["text"] for r in received} == {"Hi Ann", "Hi Bob"}
    finally:
        server.shutdown()
        server.server_close()


def test_item_to_item_recommendations_beat_popularity_on_a_time_split(engine: Engine, write_file: WriteFile) -> None:
    """Generated shop (seeded): campers buy a tent, then a sleeping bag and a stove; readers buy novels, then a
    reading lamp; everyone buys batteries. Popularity recommends batteries and tents to everyone; item-to-item
    recommends what customers like them bought next (the evaluation on a real shop is in test_real_shop.py)."""
    rng = random.Random(11)
    lines = ["customer,order,date,amount,sku"]

    def line(customer: int, sku: str, months: tuple[int, int]) -> str:
        day = f"2025-0{rng.randint(*months)}-1{rng.randint(0, 9)}"
        return f"c{customer},o{len(lines)},{day},{rng.randint(10, 90)},{sku}"

    for customer in range(1, 301):
        camper = customer % 3 != 0
        lines += [line(customer, sku, (1, 2)) for sku in (("tent" if camper else "novel"), "batteries")]
        follow_up = rng.choice(["sleeping-bag", "stove"]) if camper else "reading-lamp"
        # Half the customers bought their follow-up before the split (the history to learn from), half after.
        lines.append(line(customer, follow_up, (3, 5) if customer % 2 else (7, 9)))
    shop = {
        "source": {"system": "outdoor", "format": "csv", "currency": "EUR", "date_format": "%Y-%m-%d"},
        "customers": {"external_id": "customer"},
        "orders": {"customer": "customer", "order_id": "order", "ordered_at": "date", "revenue": "amount",
                   "product": "sku"},
    }  # fmt: skip
    assert import_file(engine, write_file("outdoor.csv", "\n".join(lines) + "\n"), parse_mapping(shop)).rejected == 0
    bought = purchases(engine, item="product")
    assert bought.height == 900

    result = evaluate(bought, dt.date(2025, 6, 30), k=1, models=["popularity", "item-item"])
    assert result.customers == 150
    assert result.hit_rate["item-item"] > result.hit_rate["popularity"] + 0.3
    assert result.hit_rate["popularity"] < 0.4  # tents and batteries for everyone: only some campers hit
    recommender = ItemItemRecommender().fit(bought.filter(pl.col("day") <= dt.date(2025, 6, 30)))
    reader = next(c for c in range(1, 301) if c % 3 == 0 and c % 2 == 0)  # reads, lamp still to come
    with engine.connect() as conn:
        reader_id = conn.scalar(select(s.Identity.customer_id).where(s.Identity.value == f"c{reader}"))
        sku = {str(id_): name for id_, name in conn.execute(select(s.Product.id, s.Product.sku))}
    assert [sku[item] for item in recommender.recommend(int(reader_id or 0), k=1)] == ["reading-lamp"]
    assert "novel" not in {sku[item] for item in recommender.recommend(int(reader_id or 0), k=5)}  # never owned


def test_offers_are_decided_a_range_of_customers_at_a_time_and_replace_the_last_decision(
    engine: Engine, write_file: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    from patron.engage import offers  # noqa: PLC0415

    ids = _two_offers(engine, write_file, voucher_channel="email")
    everyone = sorted(ids.values())
    one_go = offers.decide_offers(engine)
    with engine.connect() as conn:
        whole = sorted(
            (row.customer_id, row.offer_id, row.expected_value)
            for row in conn.execute(select(table_of(OfferCandidate)))
        )
        first = conn.scalar(select(func.max(OfferDecision.decided_at)))
    monkeypatch.setattr(offers, "DECIDED_PER_TRANSACTION", 3)  # several ranges, the last one short
    seen: list[tuple[int, int]] = []
    assert offers.decide_offers(engine, progress=lambda done, total: seen.append((done, total))) == one_go
    with engine.connect() as conn:
        rows = conn.execute(select(table_of(OfferCandidate))).all()
    assert sorted((row.customer_id, row.offer_id, row.expected_value) for row in rows) == whole  # nothing twice
    by_customer: dict[int, list[Any]] = {}
    for row in sorted(rows, key=lambda row: (row.customer_id, row.rank)):
        by_customer.setdefault(row.customer_id, []).append(row)
    for ranked in by_customer.values():  # ranks 0, 1, … best first
        assert [row.rank for row in ranked] == list(range(len(ranked)))
        assert [row.expected_value for row in ranked] == sorted((row.expected_value for row in ranked), reverse=True)
    with engine.connect() as conn:  # every offer judged once, by the second decision
        judged = conn.execute(select(OfferDecision.offer_id, OfferDecision.decided_at)).all()
    assert sorted(offer for offer, _ in judged) == sorted({row.offer_id for row in rows} - {None})
    assert len({at for _, at in judged}) == 1
    assert first is not None
    assert first < judged[0][1]
    assert seen[-1] == (len(everyone), len(everyone))
    assert len(seen) == -(-len(everyone) // 3)


def test_decided_offers_give_the_live_answer_and_go_stale_when_offers_change(
    engine: Engine, write_file: WriteFile
) -> None:
    from patron.engage.offers import decide_offers, next_best_offer, next_best_offers  # noqa: PLC0415

    ids = _two_offers(engine, write_file, voucher_channel="email")
    everyone = sorted(ids.values())
    live = {c.customer_id: c for c in next_best_offers(engine, customer_ids=everyone)}
    assert decide_offers(engine) == len(everyone)
    with engine.connect() as conn:
        stored = conn.execute(select(table_of(OfferCandidate))).all()
    assert {row.customer_id for row in stored} == set(everyone)  # ineligible customers get a row saying so
    for customer in everyone:
        fast = next_best_offer(engine, customer)
        assert (fast.offer, fast.expected_value) == (live[customer].offer, live[customer].expected_value)
        if fast.offer is not None:
            assert fast.reason.startswith(live[customer].reason + " (decided ")
    assert next_best_offer(engine, ids["c1"], channel="sms").offer is None  # the voucher is for e-mail only
    create_offer(engine, "gold tier", margin=90.0, eligibility="revenue >= 30")  # the old decision is void
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(table_of(OfferCandidate))) == 0
    assert next_best_offer(engine, ids["c12"]).offer == "gold tier"  # worked out live until decided again
    with pytest.raises(NotFoundError):
        next_best_offer(engine, 10**9)
