"""Acceptance: the real demo data sets load through their mappings, with counts taken from the raw files."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine, Executable, func, select

from patron.cif import schema as s
from patron.demo import demo_file, load_demo
from patron.demo.sets import DEMO_SETS
from tests.conftest import NEEDS_SHARED_DATA, SHARED_DATA

pytestmark = NEEDS_SHARED_DATA


def scalar(engine: Engine, query: Executable) -> Any:
    with engine.connect() as conn:
        return conn.scalar(query)


def read_csv(name: str, delimiter: str = ",") -> list[dict[str, str]]:
    path = demo_file(name, SHARED_DATA)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def test_cdnow_loads_every_customer_and_transaction(engine: Engine, tmp_path: Path) -> None:
    [result] = load_demo(engine, SHARED_DATA, names=("cdnow",), rejects_dir=tmp_path)
    lines = [line.split() for line in demo_file("cdnow", SHARED_DATA).read_text().splitlines()[1:] if line.strip()]
    assert (len({fields[0] for fields in lines}), len(lines)) == (23_570, 69_659)
    assert (result.read, result.written, result.rejected) == (69_659, 69_659, 0)
    assert scalar(engine, select(func.count()).select_from(s.Customer)) == 23_570
    assert scalar(engine, select(func.count()).select_from(s.OrderLine)) == 69_659
    expected_cents = sum(int((Decimal(fields[3]) * 100).to_integral_value()) for fields in lines)
    assert scalar(engine, select(func.sum(s.OrderLine.revenue_minor))) == expected_cents
    rerun = load_demo(engine, SHARED_DATA, names=("cdnow",), rejects_dir=tmp_path)[0]
    assert (rerun.written, rerun.unchanged) == (0, 69_659)


@pytest.mark.slow
def test_all_demo_sets_load_into_sqlite_with_source_counts(sqlite_engine: Engine, tmp_path: Path) -> None:
    results = {r.source + ":" + r.path.name: r for r in load_demo(sqlite_engine, SHARED_DATA, rejects_dir=tmp_path)}
    assert len(results) == len(DEMO_SETS)
    assert all(result.rejected == 0 for result in results.values()), {k: r.rejects[:3] for k, r in results.items()}
    engine = sqlite_engine

    telco = read_csv("telco-churn")
    churned = scalar(engine, select(func.count()).where(s.Customer.source == "telco", s.Customer.status == "churned"))
    assert churned == sum(row["Churn"] == "Yes" for row in telco) == 1_869
    assert scalar(engine, select(func.count()).where(s.Customer.source == "telco")) == len(telco) == 7_043

    personality = read_csv("customer-personality", delimiter="\t")
    accepted = sum(int(row[f"AcceptedCmp{n}"]) for row in personality for n in range(1, 6))
    accepted += sum(int(row["Response"]) for row in personality)
    assert (
        scalar(
            engine,
            select(func.count())
            .select_from(s.CampaignResponse)
            .join(s.Campaign)
            .where(s.Campaign.source == "personality"),
        )
        == accepted
        == 1_001
    )
    spend = sum(
        int(row[c])
        for row in personality
        for c in (
            "MntWines",
            "MntFruits",
            "MntMeatProducts",
            "MntFishProducts",
            "MntSweetProducts",
            "MntGoldProds",
        )
    )
    assert (
        scalar(
            engine,
            select(func.sum(s.OrderLine.revenue_minor)).join(s.Order).where(s.Order.source == "personality"),
        )
        == spend * 100
    )

    hillstrom = pl.read_csv(demo_file("hillstrom-email", SHARED_DATA), infer_schema_length=None)
    campaign = select(s.Campaign.id).where(s.Campaign.campaign_key == "hillstrom-2008").scalar_subquery()
    responses = select(func.count()).select_from(s.CampaignResponse).where(s.CampaignResponse.campaign_id == campaign)
    assert scalar(engine, responses.where(s.CampaignResponse.kind == "visit")) == hillstrom["visit"].sum() == 9_394
    assert scalar(engine, responses.where(s.CampaignResponse.kind == "conversion")) == 578
    spend_cents = scalar(engine, select(func.sum(s.CampaignResponse.value_minor)))
    assert spend_cents == round(hillstrom["spend"].sum() * 100) == 6_725_813
    controls = select(func.count()).where(s.CampaignMember.campaign_id == campaign, s.CampaignMember.is_control)
    assert scalar(engine, controls) == (hillstrom["segment"] == "No E-Mail").sum() == 21_306

    complaints = read_csv("cfpb-complaints")
    by_channel = dict(
        engine.connect()
        .execute(
            select(s.Interaction.channel, func.count())
            .where(s.Interaction.type == "complaint")
            .group_by(s.Interaction.channel)
        )
        .all()
    )
    expected: dict[str, int] = {}
    for row in complaints:
        expected[row["Submitted via"]] = expected.get(row["Submitted via"], 0) + 1
    assert by_channel == expected == {"Web": 314, "Phone": 17, "Referral": 11, "Postal mail": 7}

    payments = pl.read_parquet(demo_file("olist-payments", SHARED_DATA))
    assert scalar(engine, select(func.count()).select_from(s.Payment)) == payments.height == 103_886
    assert scalar(engine, select(func.sum(s.Payment.amount_minor))) == 1_600_887_212
    assert scalar(engine, select(func.count()).select_from(s.Product)) == len(read_csv("olist-products")) == 32_951
    english = scalar(engine, select(s.Category.label).where(s.Category.name == "beleza_saude"))
    assert english == "health_beauty"
    leads = read_csv("olist-leads")
    prospects = select(func.count()).where(s.Customer.kind == "prospect")
    assert scalar(engine, prospects) == len(leads) == 8_000
