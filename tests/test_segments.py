"""Rule segments: the expression language, set-wise membership and per-event updates, on both stores."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine

from patron.cif.events import EventIn, ingest_events
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.errors import ConflictError
from patron.segments.expression import Context, SegmentRuleError, compile_rule
from patron.segments.features import build_features, feature_schema
from patron.segments.frame_cache import current_features
from patron.segments.rules import apply_event, create_segment, evaluate_segments, members_of, preview, segment_members
from tests.conftest import WriteFile

SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.Int64(),
    "tier": pl.String(),
    "p_alive": pl.Float64(),
    "revenue": pl.Float64(),
    "orders": pl.Int64(),
    "last_order": pl.Date(),
    "attributes.contract": pl.String(),
    "responded.cmp1": pl.Boolean(),
}
FRAME = pl.DataFrame(
    {
        "customer_id": [1, 2, 3, 4],
        "tier": ["A", "A", "B", None],
        "p_alive": [0.2, 0.9, 0.1, None],
        "revenue": [500.0, 800.0, 40.0, 0.0],
        "orders": [5, 2, 1, 0],
        "last_order": [dt.date(2024, 12, 1), dt.date(2023, 1, 1), dt.date(2024, 6, 1), None],
        "attributes.contract": ["Month-to-month", "Two year", None, "Month-to-month"],
        "responded.cmp1": [True, False, False, True],
    }
)
CATEGORIES = pl.DataFrame(
    {
        "customer_id": [1, 2, 3],
        "category": ["tents", "tents", "boots"],
        "last_day": [dt.date(2024, 7, 1), dt.date(2022, 7, 1), dt.date(2024, 7, 1)],
    }
)
CONTEXT = Context(CATEGORIES, dt.date(2024, 12, 31))


def members(rule: str) -> list[int]:
    compiled = compile_rule(rule, SCHEMA)
    return FRAME.filter(compiled.expression(CONTEXT))["customer_id"].to_list()


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ('tier == "A" and p_alive < 0.5', [1]),
        ("tier = 'A' AND NOT p_alive < 0.5", [2]),  # SQL habits are accepted
        ('tier in ["A", "B"] and bought("tents", months=12)', [1]),
        ('bought("tents")', [1, 2]),
        ("revenue / orders > 50 or attributes.contract == 'Two year'", [1, 2]),
        ("0.05 < p_alive <= 0.2", [1, 3]),
        ("last_order >= days_ago(365)", [1, 3]),
        ('last_order < date("2024-01-01")', [2]),
        ("is_missing(tier) or responded.cmp1", [1, 4]),
        ("tier <> 'A'", [3]),  # missing data is not a match
        ("tier not in ['A']", [3]),
    ],
)
def test_rules_select_the_right_customers(rule: str, expected: list[int]) -> None:
    assert members(rule) == expected


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("tierr == 'A'", "unknown field 'tierr'; did you mean tier"),
        ("p_alive > 'high'", "cannot compare a number with a text"),
        ("tier > 'A'", "a text can only be compared with == or !="),
        ("revenue + tier > 3", "arithmetic (+ - * /) works on numbers only"),
        ("revenue", "must be a condition"),
        ("__import__('os').system('rm -rf /')", "calls to __import__('os').system are not allowed"),
        ("tier == 'A'; DROP TABLE customers", "not a valid rule"),
        ("tier == 'A' or 1 == 1 --", "not a valid rule"),
        ("open('/etc/passwd')", "calls to open are not allowed"),
        ("FRAME.__class__", "only attributes.<name>, responded.<name>, spend.<name> may use a dot"),
        ("[x for x in tier]", "a comprehension is not allowed"),
        ("tier[0] == 'A'", "indexing ([...]) is not allowed"),
        ("bought(tier)", "the category of bought() must be a text literal"),
        ("date('yesterday') < last_order", "'yesterday' is not a date"),
        ("tier in tier", "'in' needs a list of values"),
        ("", "the rule is empty"),
        ("tier == 'A' and " * 300 + "tier == 'A'", "longer than"),
    ],
)
def test_bad_rules_are_rejected_with_the_reason(rule: str, message: str) -> None:
    with pytest.raises(SegmentRuleError) as caught:
        compile_rule(rule, SCHEMA)
    assert message in caught.value.message
    assert caught.value.code == "invalid_segment_rule"


ORDERS: dict[str, Any] = {
    "source": {"system": "shop", "format": "csv", "currency": "USD", "date_format": "%Y-%m-%d"},
    "customers": {"external_id": "customer", "attributes": {"plan": "plan"}},
    "orders": {
        "customer": "customer",
        "order_id": "order",
        "ordered_at": "date",
        "revenue": "amount",
        "category": "category",
    },
}


def load(engine: Engine, path: Any) -> None:
    result = import_file(engine, path, parse_mapping(ORDERS), rejects_dir=path.parent / "rejects")
    assert result.rejected == 0


def test_segments_are_evaluated_setwise_and_kept_current_per_event(engine: Engine, write_file: WriteFile) -> None:
    rows = "customer,plan,order,date,amount,category\n"
    rows += "ann,gold,o1,2024-11-01,300,tents\nann,gold,o2,2024-12-01,250,boots\n"
    rows += "bob,basic,o3,2023-05-01,20,boots\ncid,gold,o4,2024-12-20,15,boots\n"
    load(engine, write_file("orders.csv", rows))
    as_of = dt.date(2024, 12, 31)
    create_segment(engine, "campers", 'bought("tents", months=12)')
    create_segment(engine, "big gold", "attributes.plan == 'gold' and revenue >= 100")
    create_segment(engine, "lapsed", "days_since_last_order > 365")
    with pytest.raises(ConflictError):
        create_segment(engine, "campers", "orders > 0")
    with pytest.raises(SegmentRuleError, match=r"unknown field 'attributes\.colour'"):
        create_segment(engine, "colourful", "attributes.colour == 'red'")

    counts = evaluate_segments(engine, as_of=as_of)
    assert counts == {"big gold": 1, "campers": 1, "lapsed": 1}
    assert preview(engine, "attributes.plan == 'gold'", as_of=as_of).count == 2
    ids, total = segment_members(engine, "big gold")
    assert total == 1

    # cid buys a tent: only the purchase-driven segments are looked at, and cid joins two of them.
    load(engine, write_file("more.csv", "customer,plan,order,date,amount,category\ncid,gold,o5,2024-12-30,400,tents\n"))
    features = build_features(engine, as_of=as_of)
    cid = int(features.customers.filter(pl.col("revenue") == 415.0)["customer_id"][0])
    effect = apply_event(engine, cid, "purchase", as_of=as_of)
    assert sorted(effect.joined) == ["big gold", "campers"]
    assert effect.left == []
    assert sorted(effect.checked) == ["big gold", "campers", "lapsed"]
    assert apply_event(engine, cid, "interaction", as_of=as_of).checked == []
    # The incremental result equals a full re-evaluation.
    after, total = segment_members(engine, "big gold")
    assert total == 2
    assert cid in after
    assert ids[0] in after
    assert evaluate_segments(engine, as_of=as_of) == {"big gold": 2, "campers": 2, "lapsed": 1}


def test_the_live_count_reuses_the_kept_frame_until_the_store_changes(engine: Engine, write_file: WriteFile) -> None:
    """Counting as someone types reads the frame once; an import, an event or a score run makes the next count see
    it (the data stamp moved), and the count always equals one from a freshly built frame."""
    load(
        engine, write_file("orders.csv", "customer,plan,order,date,amount,category\nann,gold,o1,2024-11-01,300,tents\n")
    )
    first = current_features(engine)
    assert current_features(engine) is first  # nothing changed: the same frame, no rebuild
    assert preview(engine, "revenue > 100", sample=0).count == 1
    load(
        engine, write_file("more.csv", "customer,plan,order,date,amount,category\nbob,basic,o2,2024-12-01,500,boots\n")
    )
    assert current_features(engine) is not first
    assert preview(engine, "revenue > 100", sample=0).count == 2
    complaint = EventIn(customer="shop:ann", idempotency_key="k1", occurred_at=dt.datetime(2024, 11, 15),
                        channel="phone", type="complaint")  # fmt: skip
    assert ingest_events(engine, [complaint]).rejected == []
    assert preview(engine, "complaints_last_year >= 1", sample=0).count == 1
    for rule in ("revenue > 100", "complaints_last_year >= 1", "bought('boots')", "attributes.plan == 'gold'"):
        fresh = members_of(build_features(engine), compile_rule(rule, feature_schema(engine)))
        assert preview(engine, rule, sample=0).count == len(fresh)
