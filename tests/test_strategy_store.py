"""Strategy analytics on real stores and real data: links import, influencers, portfolios with managers' P&L,
the budget plan on CDNOW, deal proneness on customer-personality, and the API with its role check."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select

from patron.app import create_app
from patron.auth.service import create_user
from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.facts import resolve_scope
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.demo import demo_mapping
from patron.strategy.budget import customer_equity
from patron.strategy.network import customer_graph, import_links, influencer_scores
from patron.strategy.plans import budget_plan, portfolio_plan, price_sensitivity
from patron.strategy.schema import CustomerLink
from patron.value.scoring import score_customers
from patron.value.transactions import load_transactions
from tests.conftest import SHARED_DATA, WriteFile

pytestmark = pytest.mark.slow
PEOPLE: dict[str, Any] = {
    "source": {"system": "crm", "format": "csv"},
    "customers": {"external_id": "id", "display_name": "name"},
}
TALKS: dict[str, Any] = {
    "source": {"system": "crm", "format": "csv", "date_format": "%Y-%m-%d"},
    "interactions": [
        {"id": "id", "customer": "customer", "occurred_at": "day", "channel": {"value": "web"},
         "direction": {"value": "inbound"}, "type": "type"}
    ],
}  # fmt: skip


def _links(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table_of(CustomerLink))) or 0)


def test_links_import_reports_bad_rows_keeps_the_rest_and_never_duplicates(
    engine: Engine, write_file: WriteFile
) -> None:
    people = write_file("people.csv", "id,name\n" + "".join(f"{n},Person {n}\n" for n in range(1, 6)))
    import_file(engine, people, parse_mapping(PEOPLE))
    links = write_file(
        "links.csv",
        "from,to,kind,weight\ncrm:1,crm:2,referral,1\ncrm:1,crm:3,referral,\ncrm:2,crm:9,referral,1\n"
        "crm:3,crm:3,declared,1\ncrm:4,crm:5,friendship,1\ncrm:4,crm:5,shared_address,-2\ncrm:4,crm:5,shared_address,2\n",
    )
    first = import_links(engine, links, source="referral-programme")
    assert first.created == 3
    assert [line for line, _ in first.rejected] == [4, 5, 6, 7]
    reasons = dict(first.rejected)
    assert "no customer" in reasons[4] or "crm:9" in reasons[4]
    assert "themselves" in reasons[5]
    assert "friendship" in reasons[6]
    assert "positive" in reasons[7]
    again = import_links(engine, links, source="referral-programme")
    assert (again.created, again.duplicates) == (0, 3)
    assert _links(engine) == 3
    graph = customer_graph(engine)
    assert graph.number_of_edges() == 3
    assert max(weight for _, _, weight in graph.edges(data="weight")) == 2.0


def test_influencer_score_is_reach_times_engagement_times_sentiment(
    sqlite_engine: Engine, write_file: WriteFile
) -> None:
    people = write_file("people.csv", "id,name\n" + "".join(f"{n},Person {n}\n" for n in range(1, 6)))
    import_file(sqlite_engine, people, parse_mapping(PEOPLE))
    # A star: 1 knows 2, 3, 4; 4 knows 5. 1 recommends us twice and complains once; 5 complains.
    import_links(sqlite_engine, write_file("links.csv", "from,to,kind\ncrm:1,crm:2,referral\ncrm:1,crm:3,referral\n"
                                           "crm:1,crm:4,declared\ncrm:4,crm:5,declared\n"), source="test")  # fmt: skip
    talks = write_file(
        "talks.csv",
        "id,customer,day,type\nt1,1,2026-03-01,recommendation\nt2,1,2026-04-01,referral\nt3,1,2026-05-01,complaint\n"
        "t4,5,2026-05-02,complaint\n",
    )
    import_file(sqlite_engine, talks, parse_mapping(TALKS))
    scores = influencer_scores(sqlite_engine, customer_graph(sqlite_engine), as_of=dt.date(2026, 6, 30))
    by_id = {row["reach_count"]: row for row in scores.to_dicts()}
    top = scores.row(0, named=True)
    assert top["reach_count"] == 4  # 2, 3, 4 directly and 5 through 4
    assert top["sentiment"] == pytest.approx((2 + 1) / (2 + 1 + 2))
    assert top["engagement"] == pytest.approx(1.0)  # three interactions: the most of anyone
    assert top["score"] == pytest.approx(1.0 * 1.0 * 0.6)
    five = scores.filter(pl.col("negative") == 1, pl.col("positive") == 0).row(0, named=True)
    assert five["sentiment"] == pytest.approx(1 / 3)
    assert five["engagement"] == pytest.approx(np.log1p(1) / np.log1p(3))
    assert five["reach"] == pytest.approx(2 / 4)  # 4 and 1
    assert by_id  # every linked customer is scored
    assert scores.height == 5


@pytest.fixture
def cdnow(sqlite_engine: Engine) -> Engine:
    import_file(sqlite_engine, SHARED_DATA / "cdnow" / "CDNOW_master.txt", demo_mapping("cdnow"))
    score_customers(sqlite_engine, model="bgnbd")
    return sqlite_engine


def test_portfolio_of_tiers_and_a_managers_pnl_on_cdnow(cdnow: Engine) -> None:
    with cdnow.begin() as conn:
        account = conn.execute(
            insert(table_of(s.Account)).values(source="crm", account_key="big", name="Big buyers", manager="maria")
            .returning(table_of(s.Account).c.id)
        ).scalar_one()  # fmt: skip
        conn.execute(
            insert(table_of(s.AccountContact)),
            [{"account_id": account, "customer_id": customer, "role": "buyer"} for customer in range(1, 101)],
        )
    plan = portfolio_plan(cdnow, by="tier", risk=1.4)
    assert plan.segments == ["A", "B", "C"]
    assert plan.customers == {"A": 4714, "B": 7071, "C": 11785}
    assert plan.expected[0] > plan.expected[1] > plan.expected[2]  # A earns most per customer and month
    assert plan.months == 18
    risks = [point.risk for point in plan.frontier]
    assert risks == sorted(risks)
    assert all(sum(point.weights.values()) == pytest.approx(1.0) for point in plan.frontier)
    assert plan.chosen is not None
    assert plan.chosen.risk <= 1.4

    lines = load_transactions(cdnow, resolve_scope(cdnow, None)).filter(pl.col("customer_id") <= 100)
    managers = plan.managers
    assert managers["manager"].unique().to_list() == ["maria"]
    assert managers["revenue"].sum() == pytest.approx(lines["revenue"].sum())
    assert managers["margin"].sum() == pytest.approx(float(lines["revenue"].sum()) * 0.30)  # CDNOW has no costs


def test_budget_plan_on_cdnow_spends_where_equity_is_highest(cdnow: Engine) -> None:
    plan = budget_plan(cdnow)
    inputs, best = plan.inputs, plan.unconstrained
    assert inputs.customers == 23_570
    assert inputs.prospects == 0
    assert plan.assumed_curves
    assert best.acquisition_per_prospect == 0.0
    for retention in np.linspace(0, 5 * inputs.margin, 200):
        assert best.equity >= customer_equity(inputs, 0.0, float(retention)) - 1e-6
    assert [row.budget for row in plan.table][2] == pytest.approx(best.budget)
    assert plan.at_risk["value_at_risk"].to_list() == sorted(plan.at_risk["value_at_risk"].to_list(), reverse=True)


def test_deal_proneness_on_customer_personality(sqlite_engine: Engine) -> None:
    source = SHARED_DATA / "customer-personality" / "marketing_campaign.csv"
    raw = pl.read_csv(source, separator="\t")
    import_file(sqlite_engine, source, demo_mapping("customer-personality"))
    customers, segments = price_sensitivity(sqlite_engine, by="education")
    assert set(segments["segment"]) == set(raw["Education"].unique())
    channels = pl.col("NumWebPurchases") + pl.col("NumCatalogPurchases") + pl.col("NumStorePurchases")
    usable = raw.filter(channels > 0)
    assert customers.height == usable.height
    phd = usable.filter(pl.col("Education") == "PhD")
    share = phd.select((pl.col("NumDealsPurchases") / channels).clip(upper_bound=1.0).alias("share"))["share"]
    row = segments.filter(pl.col("segment") == "PhD").row(0, named=True)
    assert row["customers"] == phd.height
    assert row["deal_share"] == pytest.approx(float(share.mean()))  # type: ignore[arg-type]
    assert row["low"] < row["deal_share"] < row["high"]
    # Shrinking pulls each customer towards the segment's pooled share (all deals / all purchases), never past it.
    deals = float(phd.select(pl.min_horizontal("NumDealsPurchases", channels)).to_series().sum())
    assert row["pooled_share"] == pytest.approx(deals / float(phd.select(channels).to_series().sum()))
    pooled = customers.join(segments.select("segment", "pooled_share"), on="segment")
    own_gap = (pooled["raw_share"] - pooled["pooled_share"]).abs()
    assert ((pooled["shrunk_share"] - pooled["pooled_share"]).abs() <= own_gap + 1e-9).all()
    assert (pooled["shrunk_share"] != pooled["raw_share"]).mean() > 0.9  # type: ignore[operator]


@pytest.fixture
def client(cdnow: Engine) -> Iterator[TestClient]:
    for role in ("analyst", "agent", "manager"):
        create_user(cdnow, role, "a long password", role)
    with TestClient(create_app(cdnow), raise_server_exceptions=False) as test_client:
        yield test_client


def _headers(client: TestClient, role: str) -> dict[str, str]:
    reply = client.post("/api/auth/token", json={"username": role, "password": "a long password"})
    return {"Authorization": f"Bearer {reply.json()['token']}"}


def test_strategy_api_answers_analysts_refuses_agents_and_takes_links(client: TestClient, cdnow: Engine) -> None:
    analyst, agent, manager = (_headers(client, role) for role in ("analyst", "agent", "manager"))
    budget = client.get("/api/strategy/budget?amount=50000", headers=analyst)
    assert budget.status_code == 200, budget.text
    body = budget.json()
    assert body["best"]["budget"] == 50000
    assert all(row["name"].startswith("customer-") for row in body["retain_first"])  # pseudonyms for analysts
    assert client.get("/api/strategy/portfolio", headers=analyst).json()["segments"][0]["segment"] == "A"
    refused = client.get("/api/strategy/budget", headers=agent)
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"

    empty = client.get("/api/strategy/network", headers=analyst).json()
    assert (empty["links"], empty["influencers"]) == (0, [])
    links = {"source": "crm", "links": [{"from": "1", "to": "2", "kind": "referral"},
                                        {"from": "1", "to": "3", "kind": "referral"},
                                        {"from": "1", "to": "99999999", "kind": "referral"}]}  # fmt: skip
    outside = client.post("/api/strategy/links", headers=manager, json=links).json()  # none in their portfolio
    assert (outside["created"], [item["reason"] for item in outside["rejected"]]) == (
        0,
        ["no customer matches '1'"] * 3,
    )
    posted = client.post("/api/strategy/links", headers=analyst, json=links)
    assert posted.status_code == 200, posted.text
    assert posted.json()["created"] == 2
    assert [item["position"] for item in posted.json()["rejected"]] == [2]
    assert client.post("/api/strategy/links", headers=agent, json={"source": "x", "links": [
        {"from": "2", "to": "3", "kind": "referral"}]}).status_code == 403  # fmt: skip
    assert _links(cdnow) == 2
    assert client.get("/api/strategy/pricing", headers=analyst).status_code == 422  # no deal counts in CDNOW
    assert client.get("/api/strategy/portfolio?by=customer_id", headers=analyst).status_code == 422
