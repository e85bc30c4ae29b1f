"""One customer-facts frame: value lists, segment rules, models and the customer page agree for every customer.

The store holds CDNOW (USD, a real extract) and a generated shop selling in JPY and USD, so a customer of the shop
has orders in two currencies: nothing may add them up, and yen (no minor unit) must not be divided by 100.
"""

from __future__ import annotations

import datetime as dt
import random
import tomllib
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine

from patron.cif.facts import Scope, main_scope
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cif.view import customer_view
from patron.predict.models import train_model
from patron.segments.expression import Context, compile_rule
from patron.segments.features import build_features, feature_schema
from patron.value.base import customer_base
from tests.conftest import SHARED_DATA, WriteFile, needs

CDNOW = SHARED_DATA / "cdnow" / "CDNOW_master.txt"
MAPPINGS = Path(__file__).resolve().parent.parent / "src" / "patron" / "demo" / "mappings"
SHOP = {
    "source": {"system": "shop", "format": "csv", "currency": "JPY", "date_format": "%Y-%m-%d"},
    "customers": {"external_id": "customer"},
    "orders": {
        "customer": "customer", "order_id": "order", "ordered_at": "date", "revenue": "amount",
        "currency": "currency",
    },
}  # fmt: skip
COMPARED = ["orders", "revenue", "last_order", "days_since_last_order"]


def _shop_file(write_file: WriteFile) -> Path:
    """300 customers, 1-6 orders each in 2023, mostly in yen, some in dollars (with cents)."""
    rng = random.Random(17)
    lines = ["customer,order,date,amount,currency"]
    order = 0
    for customer in range(1, 301):
        for _ in range(rng.randint(1, 6)):
            order += 1
            day = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(365))
            if rng.random() < 0.25:
                lines.append(f"s{customer},o{order},{day},{rng.randint(100, 99_999) / 100:.2f},USD")
            else:
                lines.append(f"s{customer},o{order},{day},{rng.randint(300, 60_000)},JPY")
    return write_file("shop.csv", "\n".join(lines) + "\n")


@pytest.fixture
def two_currencies(engine: Engine, write_file: WriteFile) -> Engine:
    cdnow = tomllib.loads((MAPPINGS / "cdnow.toml").read_text())
    cdnow.pop("file")
    head = write_file("cdnow.txt", "\n".join(CDNOW.read_text().splitlines()[:4000]) + "\n")  # ~1,300 customers
    import_file(engine, head, parse_mapping(cdnow), rejects_dir=head.parent)
    shop = _shop_file(write_file)
    import_file(engine, shop, parse_mapping(SHOP), rejects_dir=shop.parent)
    return engine


@needs(CDNOW)
@pytest.mark.parametrize(("source", "currency"), [("cdnow", "USD"), ("shop", "JPY"), ("shop", "USD")])
def test_lists_rules_models_and_the_customer_page_report_the_same_facts(
    two_currencies: Engine, source: str, currency: str
) -> None:
    engine, scope = two_currencies, Scope(source, currency)
    base, _, as_of = customer_base(engine, source=source, currency=currency)
    assert base.height > 50
    features = build_features(engine, scope=scope)
    assert features.as_of == as_of  # one default as-of day: the scope's newest order
    bought = features.customers.filter(pl.col("orders") > 0).select("customer_id", *COMPARED)
    assert bought.sort("customer_id").equals(base.select("customer_id", *COMPARED).sort("customer_id"))

    # A segment rule on revenue and recency selects exactly the customers the value list's figures say.
    revenue_cut = float(base["revenue"].to_numpy().mean())
    recency_cut = int(base["days_since_last_order"].to_numpy().mean())
    rule = compile_rule(f"revenue > {revenue_cut} and days_since_last_order < {recency_cut}", feature_schema(engine))
    members = features.customers.filter(rule.expression(Context(features.categories, features.as_of)))
    expected = base.filter((pl.col("revenue") > revenue_cut) & (pl.col("days_since_last_order") < recency_cut))
    assert sorted(members["customer_id"]) == sorted(expected["customer_id"])
    assert 0 < len(expected) < base.height

    # The predictive model learns from the same customers on the same day.
    card = train_model(
        engine, f"big-{source}-{currency}", target=f"revenue > {revenue_cut}", population="orders > 0", scope=scope
    ).card
    assert (card.train_rows + card.holdout_rows, card.as_of) == (base.height, as_of.isoformat())

    # The customer page shows each scope's facts, the same figures.
    for row in base.sample(5, seed=3).iter_rows(named=True):
        shown = [f for f in customer_view(engine, row["customer_id"]).facts if (f["source"], f["currency"]) == (
            source, currency)]  # fmt: skip
        assert len(shown) == 1
        assert {name: shown[0][name] for name in COMPARED} == {name: row[name] for name in COMPARED}


@needs(CDNOW)
def test_yen_are_whole_units_and_currencies_are_never_added(two_currencies: Engine) -> None:
    engine = two_currencies
    yen, _, _ = customer_base(engine, source="shop", currency="JPY")
    dollars, _, _ = customer_base(engine, source="shop", currency="USD")
    both = yen.join(dollars, on="customer_id", suffix="_usd")
    assert both.height > 10  # shop customers with orders in both currencies
    assert (yen["revenue"] >= 300).all()  # yen amounts as given, not divided by 100
    page = customer_view(engine, int(both["customer_id"][0])).facts
    assert sorted((f["source"], f["currency"]) for f in page) == [("shop", "JPY"), ("shop", "USD")]
    assert main_scope(engine)[0] == Scope(None, "USD")  # segment rules default to the main currency
