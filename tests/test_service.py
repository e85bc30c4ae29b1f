"""Service: CFPB complaints as cases with per-day metrics checked against the raw file; the case life cycle,
escalation, the conversation context and the knowledge base, on both stores."""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.demo import load_demo
from patron.errors import ConflictError, InvalidInputError, NotFoundError
from patron.service import cases as desk
from patron.service.complaints import cases_from_complaints
from patron.service.context import conversation_context
from patron.service.knowledge import add_article, search_articles, suggest_for_case
from patron.service.metrics import daily_service_metrics, service_figure
from patron.service.schema import Case
from patron.value.schema import CustomerScore, ScoreRun
from tests.conftest import SHARED_DATA, WriteFile, needs

CFPB = SHARED_DATA / "cfpb-complaints" / "Consumer_Complaints.csv"


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


@needs(CFPB)
def test_cfpb_complaints_become_cases_and_the_daily_figures_match_the_raw_file(engine: Engine) -> None:
    load_demo(engine, SHARED_DATA, names=("cfpb-complaints",))  # the demo load turns complaints into cases
    assert count(engine, table_of(Case)) == 349
    assert cases_from_complaints(engine) == 0  # once each

    with CFPB.open(newline="", encoding="utf-8") as handle:
        raw = list(csv.DictReader(handle))
    cases = table_of(Case)
    with engine.connect() as conn:
        channels = Counter(
            {str(k): int(n) for k, n in conn.execute(select(cases.c.channel, func.count()).group_by(cases.c.channel))}
        )
        outcomes = Counter(
            {str(k): int(n) for k, n in conn.execute(select(cases.c.outcome, func.count()).group_by(cases.c.outcome))}
        )
    assert channels == Counter(row["Submitted via"] for row in raw)
    assert outcomes == Counter(row["Company response to consumer"] for row in raw)

    received = Counter(dt.datetime.strptime(row["Date received"], "%m/%d/%Y").date() for row in raw)
    first_contact = Counter(
        dt.datetime.strptime(row["Date received"], "%m/%d/%Y").date()
        for row in raw
        if row["Company response to consumer"].startswith("Closed") and row["Consumer disputed?"] != "Yes"
    )
    metrics = daily_service_metrics(engine)
    by_day = {row["day"]: row for row in metrics.iter_rows(named=True)}
    assert {day: row["received"] for day, row in by_day.items() if row["received"]} == dict(received)
    for day, total in received.items():
        assert by_day[day]["resolved_first_contact"] == first_contact[day]
        assert by_day[day]["fcr_ratio"] == pytest.approx(first_contact[day] / total)
    figure = service_figure(metrics)
    assert sum(figure.data[0].y) == 349


ORDERS: dict[str, Any] = {
    "source": {"system": "shop", "format": "csv", "currency": "USD", "date_format": "%Y-%m-%d"},
    "customers": {"external_id": "customer", "display_name": "name"},
    "orders": {"customer": "customer", "order_id": "order", "ordered_at": "date", "revenue": "amount"},
}


@pytest.fixture
def shop(engine: Engine, write_file: WriteFile) -> dict[str, int]:
    path = write_file(
        "orders.csv", "customer,name,order,date,amount\nann,Ann,o1,2024-05-01,120\nbob,Bob,o2,2024-05-02,15\n"
    )
    import_file(engine, path, parse_mapping(ORDERS), rejects_dir=path.parent / "rejects")
    with engine.connect() as conn:
        ids = {str(name): int(i) for name, i in conn.execute(select(s.Customer.display_name, s.Customer.id))}
    desk.create_agent(engine, "alice", "Alice Agent")
    desk.create_agent(engine, "mona", "Mona Manager", role="manager")
    return {str(name): int(i) for name, i in ids.items()}


def give_tier(engine: Engine, customer_id: int, tier: str) -> None:
    with engine.begin() as conn:
        run = conn.execute(
            insert(table_of(ScoreRun))
            .values(
                as_of=dt.date(2024, 6, 1), source="shop", model="bgnbd+gammagamma", period="W", currency="USD",
                horizon_months=36, annual_discount_rate=0.1, default_margin_rate=0.3, parameters={}, log_likelihood=0.0,
                customers=1, excluded={}, tier_cuts=[0.2, 0.5],
            )
            .returning(table_of(ScoreRun).c.id)
        ).scalar_one()  # fmt: skip
        conn.execute(
            insert(table_of(CustomerScore)).values(
                run_id=run, customer_id=customer_id, frequency=3, recency=10.0, age=20.0, p_alive=0.4,
                expected_purchases=2.0, expected_margin_per_purchase_minor=1000, clv_minor=50000,
                value_at_risk_minor=30000, revenue_minor=12000, tier=tier, rank=1,
            )
        )  # fmt: skip


def test_a_case_lives_opens_updates_resolves_reopens_in_the_ledger(engine: Engine, shop: dict[str, int]) -> None:
    ann = shop["Ann"]
    opened = desk.open_case(engine, ann, subject="Parcel arrived damaged", kind="complaint", channel="email")
    assert opened.escalated is False
    case = desk.get_case(engine, opened.id)
    assert case["sla_due_at"] - case["opened_at"] == dt.timedelta(hours=48)  # no score yet: the default level
    desk.assign_case(engine, opened.id, "alice", actor="mona")
    desk.update_case(engine, opened.id, note="Called the courier", customer_contact=True, actor="alice")
    desk.resolve_case(engine, opened.id, "Replacement sent", actor="alice")
    with pytest.raises(ConflictError, match="is resolved; reopen it"):
        desk.update_case(engine, opened.id, note="late note")
    desk.reopen_case(engine, opened.id, "Replacement also damaged")
    case = desk.get_case(engine, opened.id)
    assert (case["status"], case["contacts"], case["reopened"]) == ("open", 2, 1)
    interactions = table_of(s.Interaction)
    with engine.connect() as conn:
        ledger = conn.scalars(
            select(interactions.c.type).where(interactions.c.customer_id == ann).order_by(interactions.c.id)
        ).all()
    assert ledger == ["case_opened", "case_assigned", "case_contact", "case_resolved", "case_reopened"]


def test_bad_input_changes_nothing(engine: Engine, shop: dict[str, int]) -> None:
    cases = table_of(Case)
    with pytest.raises(NotFoundError, match="no customer 999"):
        desk.open_case(engine, 999, subject="x")
    with pytest.raises(InvalidInputError, match="the subject is 201 characters"):
        desk.open_case(engine, shop["Ann"], subject="x" * 201)
    with pytest.raises(InvalidInputError, match="kind must be one of"):
        desk.open_case(engine, shop["Ann"], subject="x", kind="rant")
    with pytest.raises(NotFoundError, match="no active agent 'ghost'"):
        desk.open_case(engine, shop["Ann"], subject="x", agent="ghost")
    assert count(engine, cases) == 0
    assert count(engine, table_of(s.Interaction)) == 0

    opened = desk.open_case(engine, shop["Bob"], subject="Where is my order?", kind="question")
    before = desk.get_case(engine, opened.id)
    with pytest.raises(NotFoundError, match="no active agent 'ghost'"):
        desk.assign_case(engine, opened.id, "ghost")
    with pytest.raises(InvalidInputError, match="the note is 5,001 characters"):
        desk.update_case(engine, opened.id, note="n" * 5001)
    with pytest.raises(NotFoundError, match="no case 12345"):
        desk.resolve_case(engine, 12345, "done")
    assert desk.get_case(engine, opened.id) == before
    assert count(engine, table_of(s.Interaction)) == 1  # only the opening


def test_a_valuable_customers_second_complaint_is_escalated_to_a_manager(engine: Engine, shop: dict[str, int]) -> None:
    ann, bob = shop["Ann"], shop["Bob"]
    give_tier(engine, ann, "A")
    ordinary = desk.open_case(engine, bob, subject="Question about invoice", kind="question")
    first = desk.open_case(engine, ann, subject="Late delivery", kind="complaint", at=dt.datetime(2024, 6, 1, 9))
    assert first.escalated is False
    assert desk.get_case(engine, first.id)["sla_due_at"] == dt.datetime(2024, 6, 1, 13)  # tier A: 4 hours
    second = desk.open_case(engine, ann, subject="Wrong size again", kind="complaint", at=dt.datetime(2024, 9, 1, 9))
    assert second.escalated is True
    assert second.assigned_to == "mona"
    assert "2 complaints in 12 months" in (second.escalation_reason or "")
    queue = desk.work_queue(engine)
    assert queue[0]["id"] == second.id
    assert {row["id"] for row in queue} == {ordinary.id, first.id, second.id}
    views = {view: [row["id"] for row in desk.work_queue(engine, only=view, me="mona")] for view in desk.QUEUE_VIEWS}
    assert views == {"mine": [second.id], "overdue": [second.id, first.id], "escalated": [second.id],
                     "unassigned": [first.id, ordinary.id]}  # fmt: skip
    assert desk.work_queue(engine, only="mine") == []  # nobody asking: nobody's
    with pytest.raises(InvalidInputError, match="only"):
        desk.work_queue(engine, only="theirs")
    now = dt.datetime(2024, 6, 1, 12, 30)  # first is due at 13:00 after opening at 9:00: in its last quarter
    first_case = desk.get_case(engine, first.id)
    moments = (now, now.replace(hour=10), now.replace(hour=14))
    assert [desk.due_state(first_case, moment) for moment in moments] == ["due soon", None, "overdue"]

    context = conversation_context(engine, ann)
    assert context.next_question.startswith("Apologise about \u201cWrong size again\u201d")
    assert [c["id"] for c in context.open_cases] == [second.id, first.id]
    assert context.interactions[0]["type"] in ("case_escalated", "case_opened")
    assert context.orders[0]["revenue_minor"] == 12000
    assert context.scores["tier"] == "A"


def test_context_asks_for_contact_preferences_when_nothing_is_open(engine: Engine, shop: dict[str, int]) -> None:
    context = conversation_context(engine, shop["Bob"])
    assert context.open_cases == []
    assert "how often" in context.next_question
    with pytest.raises(NotFoundError):
        conversation_context(engine, 424242)


def test_knowledge_base_search_and_suggestions(engine: Engine, shop: dict[str, int]) -> None:
    returns = add_article(
        engine, "Returning a damaged parcel", "How to return goods damaged in transit.", category="delivery"
    )
    add_article(engine, "Changing your password", "Open settings and choose a new password.", category="account")
    add_article(engine, "Guide for new parents", "What to buy in the first year.", segment="new parents")
    assert [a["id"] for a in search_articles(engine, "damaged parcel")] == [returns]
    assert search_articles(engine, "damaged password") == []  # all words must match
    assert {a["title"] for a in search_articles(engine, "damaged password", any_word=True)} == {
        "Returning a damaged parcel",
        "Changing your password",
    }
    # Search syntax in the query is reduced to plain words, never passed through.
    assert search_articles(engine, 'title:"x" OR password* NEAR(') == search_articles(engine, "title password near")
    assert search_articles(engine, "!!") == []
    case = desk.open_case(engine, shop["Ann"], subject="My parcel came damaged", kind="complaint")
    assert suggest_for_case(engine, case.id)[0]["id"] == returns
