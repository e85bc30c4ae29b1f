"""Scoring runs and differentiation lists on a real store (SQLite and PostgreSQL), through the importer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from sqlalchemy import Engine, func, select

from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.errors import InvalidInputError, NotFoundError
from patron.value.base import customer_base
from patron.value.lists import (
    bottom_customers,
    costly_customers,
    declining_customers,
    lost_valuable,
    pareto_curve,
    tiers,
    top_customers,
    valuable_complainers,
    value_at_risk,
    wallet_gaps,
)
from patron.value.schema import CustomerScore
from patron.value.scoring import list_runs, run_scores, score_customers, score_movement
from tests.conftest import WriteFile

ORDERS: dict[str, Any] = {
    "source": {"system": "shop", "format": "csv", "currency": "EUR", "date_format": "%Y-%m-%d"},
    "customers": {"external_id": "customer", "display_name": "name"},
    "orders": {
        "customer": "customer",
        "order_id": "order",
        "ordered_at": "date",
        "revenue": "amount",
        "cost": "cost",
        "category": "category",
    },
}
COMPLAINTS: dict[str, Any] = {
    "source": {"system": "shop", "format": "csv", "date_format": "%Y-%m-%d"},
    "interactions": [
        {
            "id": "ticket",
            "customer": "customer",
            "occurred_at": "date",
            "channel": {"value": "phone"},
            "direction": {"value": "inbound"},
            "type": "type",
        }
    ],
}


def load(engine: Engine, path: Path, mapping: dict[str, Any]) -> None:
    result = import_file(engine, path, parse_mapping(mapping), rejects_dir=path.parent / "rejects")
    assert result.rejected == 0, result.rejects[:3]


def simulated_orders(customers: int = 400, seed: int = 11) -> str:
    """Purchases drawn from a BG/NBD process over two years (deterministic seed)."""
    rng = np.random.default_rng(seed)
    start = dt.date(2023, 1, 1)
    rows = ["customer,name,order,date,amount,cost,category"]
    for customer in range(customers):
        rate = rng.gamma(0.8, 1 / 20)  # purchases per day
        dropout = rng.beta(1.0, 4.0)
        day = int(rng.integers(0, 180))
        spend = rng.gamma(6.0, 5.0)
        number = 0
        while day <= 729:
            number += 1
            amount = round(float(rng.gamma(6.0, spend / 6.0)), 2) + 1
            date = start + dt.timedelta(days=day)
            rows.append(f"s{customer},Sim {customer},s{customer}-{number},{date},{amount:.2f},{amount * 0.6:.2f},books")
            if rng.random() < dropout:
                break
            day += int(rng.exponential(1 / rate)) + 1
    return "\n".join(rows) + "\n"


def test_a_score_run_is_stored_and_movement_between_runs_adds_up(engine: Engine, write_file: WriteFile) -> None:
    orders = simulated_orders()
    load(engine, write_file("orders.csv", orders), ORDERS)
    earlier = score_customers(engine, model="bgnbd", as_of=dt.date(2024, 6, 30), note="mid-2024")
    later = score_customers(engine, model="auto")
    assert later.as_of == max(dt.date.fromisoformat(row.split(",")[3]) for row in orders.splitlines()[1:])
    assert earlier.scope.source == "shop"
    assert earlier.scope.currency == "EUR"
    assert later.model in ("bgnbd", "paretonbd")
    assert later.choice is not None

    runs = list_runs(engine)
    assert [run["id"] for run in runs] == [later.run_id, earlier.run_id]
    assert runs[1]["note"] == "mid-2024"
    assert runs[1]["parameters"]["bgnbd"]["r"] > 0
    stored = run_scores(engine, earlier.run_id)
    assert stored.height == earlier.customers
    assert stored["tier"].value_counts().sort("tier")["count"].to_list() == [
        int(earlier.customers * 0.2),
        int(earlier.customers * 0.5) - int(earlier.customers * 0.2),
        earlier.customers - int(earlier.customers * 0.5),
    ]
    assert (stored["p_alive"].is_between(0, 1)).all()
    assert (stored["clv_minor"] >= 0).all()
    # Cost is 60 % of revenue, so the CLV uses each customer's 40 % margin, not the 30 % default.
    assert earlier.scores["margin_rate"].to_numpy() == pytest.approx(0.4, abs=0.01)

    matrix, moves = score_movement(engine, earlier.run_id, later.run_id)
    before_sizes = stored.group_by("tier").len().rename({"len": "size"})
    row_sums = matrix.filter(pl.col("tier_before") != "-").group_by("tier_before").agg(pl.col("len").sum())
    joined = before_sizes.join(row_sums, left_on="tier", right_on="tier_before")
    assert joined.height == 3
    assert (joined["size"] == joined["len"]).all()
    newcomers = matrix.filter(pl.col("tier_before") == "-")["len"].sum()
    assert newcomers == later.customers - earlier.customers
    assert moves.height == later.customers


def test_scores_go_when_their_customer_or_run_goes(engine: Engine, write_file: WriteFile) -> None:
    load(engine, write_file("orders.csv", simulated_orders(120, seed=3)), ORDERS)
    run = score_customers(engine, model="bgnbd")
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(CustomerScore)) == run.customers


def test_scoring_an_empty_store_or_unknown_source_says_what_to_do(engine: Engine) -> None:
    with pytest.raises(InvalidInputError, match="no orders yet"):
        score_customers(engine)
    with pytest.raises(NotFoundError, match="no score run 99"):
        run_scores(engine, 99)


def line(customer: str, order: str, date: str, amount: float, category: str, *, cost: float | None = None) -> str:
    """One order line; the cost defaults to half the amount."""
    return f"{customer},{customer.title()},{order},{date},{amount},{amount / 2 if cost is None else cost},{category}"


@pytest.fixture
def shop(engine: Engine, write_file: WriteFile) -> Engine:
    """A small shop whose customers each land on one list for a known reason (as of 2024-12-31)."""
    rows = [
        # declining: 1,200 in 2023-12/2024-01 window the year before, 100 in the last year
        line("decliner", "d1", "2023-03-01", 600, "books"),
        line("decliner", "d2", "2023-09-01", 600, "music"),
        line("decliner", "d3", "2024-06-01", 100, "games"),
        # lost: a big spender whose last order was 600 days ago
        line("lost", "l1", "2023-05-10", 1500, "books", cost=700),
        line("lost", "l2", "2023-05-11", 500, "music"),
        # costly: sells at a loss
        line("costly", "c1", "2024-11-01", 50, "games", cost=80),
        # wallet gap: a big spender in books only
        line("reader", "r1", "2024-02-01", 900, "books", cost=400),
        line("reader", "r2", "2024-10-01", 900, "books", cost=400),
        # complainer: valuable, two complaints this year
        line("grumbler", "g1", "2024-03-01", 700, "music", cost=300),
        line("grumbler", "g2", "2024-12-31", 700, "games", cost=300),
    ]
    rows += [line(f"small{i}", f"s{i}", "2024-12-01", 20 + i, "music", cost=10) for i in range(15)]
    load(
        engine,
        write_file("orders.csv", "customer,name,order,date,amount,cost,category\n" + "\n".join(rows) + "\n"),
        ORDERS,
    )
    complaints = "ticket,customer,date,type\nt1,grumbler,2024-04-01,complaint\nt2,grumbler,2024-09-01,complaint\n"
    complaints += "t3,reader,2024-05-01,complaint\nt4,costly,2024-11-05,question\n"
    load(engine, write_file("complaints.csv", complaints), COMPLAINTS)
    return engine


def names(frame: pl.DataFrame) -> list[str]:
    return [str(name) for name in frame["name"].to_list()]


def test_each_list_finds_its_customer_with_a_reason(shop: Engine) -> None:
    frame, scope, as_of = customer_base(shop)
    assert (scope.source, scope.currency, as_of) == ("shop", "EUR", dt.date(2024, 12, 31))
    assert frame.height == 20

    declining = declining_customers(frame).rows
    assert names(declining) == ["Lost", "Decliner"]  # stopping altogether is the steepest decline
    assert declining["reason"][1] == "spent 100.0 in the last 12 months against 1200.0 the 12 before (8.0 %)"
    lost = lost_valuable(frame).rows
    assert names(lost) == ["Lost"]
    assert "last order 600 days ago" in lost["reason"][0]
    costly = costly_customers(frame, cost_per_interaction=5.0).rows
    assert names(costly) == ["Costly"]
    assert "(1 interactions) = -35.0" in costly["reason"][0]
    gaps = wallet_gaps(frame).rows
    assert "Reader" in names(gaps)
    assert gaps.filter(pl.col("name") == "Reader")["reason"][0] == "buys only books of 3 categories; never games, music"
    complainers = valuable_complainers(frame).rows
    assert names(complainers) == ["Grumbler"]
    assert complainers["reason"][0].startswith("2 complaints in the last year")


def test_tiers_top_bottom_and_pareto_use_revenue_until_a_score_run_exists(shop: Engine) -> None:
    frame, _, _ = customer_base(shop)
    tiered = tiers(frame).rows
    assert tiered["tier"].value_counts().sort("tier")["count"].to_list() == [4, 6, 10]
    assert names(tiered.filter(pl.col("tier") == "A")) == ["Lost", "Reader", "Grumbler", "Decliner"]
    assert tiered["reason"][0] == "revenue to date 2000.0; top 0–20 % by revenue to date"
    assert top_customers(frame, 0.25).rows.height == 5
    bottom = bottom_customers(frame).rows
    assert bottom.height == 4
    assert names(bottom)[0] == "Lost"
    assert bottom["reason"][0] == "no order for 600 days; nothing bought in the last year"
    curve = pareto_curve(frame)
    total = frame["revenue"].sum()
    assert curve.share_of_value(0.2) == pytest.approx((2000 + 1800 + 1400 + 1300) / total)
    assert curve.points["value_share"][-1] == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="needs lifetime values"):
        value_at_risk(frame)
    with pytest.raises(InvalidInputError, match="cuts"):
        tiers(frame, (0.5, 0.2))


def test_wallet_gap_explains_itself_when_orders_carry_no_categories(engine: Engine, write_file: WriteFile) -> None:
    rows = "customer,name,order,date,amount,cost,category\n" + "".join(
        f"{line(f'c{i}', f'o{i}', '2024-01-01', 10 + i, 'all')}\n" for i in range(5)
    )
    load(engine, write_file("orders.csv", rows), ORDERS)
    frame, _, _ = customer_base(engine)
    result = wallet_gaps(frame)
    assert result.rows.height == 0
    assert "map product categories" in result.note
