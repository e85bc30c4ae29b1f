"""The summary's compiled pass against the definitions written out in plain Python, on generated histories in any
order, with returns, free orders, unknown costs, a holdout and customers first seen late."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.errors import InvalidInputError
from patron.value.summary import purchase_summary

START = dt.date(2024, 1, 1)
CALIBRATION_END = START + dt.timedelta(days=20)
OBSERVATION_END = START + dt.timedelta(days=30)

Line = tuple[int, int, float, float | None]
lines_strategy = st.lists(
    st.tuples(
        st.integers(1, 6),  # customer
        st.integers(0, 35),  # day offset: some after the observation end
        st.sampled_from([-30.0, -5.0, 0.0, 2.5, 10.0, 40.0]),
        st.one_of(st.none(), st.sampled_from([0.0, 1.0, 7.5])),  # cost, often unknown
    ),
    min_size=1,
    max_size=40,
)


def by_the_definitions(lines: list[Line]) -> dict[int, dict[str, Any]]:
    """Net each customer's day, then a day with net revenue ≥ 0 is a purchase occasion (calibration) or a holdout
    occasion (after it); returns lower revenue; margin is revenue − cost on the lines whose cost is known, and an
    amount nobody recorded stays unknown."""
    days: dict[tuple[int, int], list[Line]] = defaultdict(list)
    for line in lines:
        if line[1] <= (OBSERVATION_END - START).days:
            days[(line[0], line[1])].append(line)
    customers: dict[int, dict[str, Any]] = {}
    calibration_days = (CALIBRATION_END - START).days
    for (customer, day), day_lines in sorted(days.items()):
        net = sum(line[2] for line in day_lines)
        costed = [line for line in day_lines if line[3] is not None]  # margin = revenue − cost on these lines
        row = customers.setdefault(
            customer,
            {
                "occasions": [],
                "revenue": 0.0,
                "cost": None,
                "margin": None,
                "return_days": 0,
                "holdout": 0,
                "holdout_revenue": 0.0,
            },
        )
        if day > calibration_days:
            if net >= 0:
                row["holdout"] += 1
                row["holdout_revenue"] += net
            continue
        row["revenue"] += net
        if costed:
            row["cost"] = (row["cost"] or 0.0) + sum(line[3] or 0.0 for line in costed)
            row["margin"] = (row["margin"] or 0.0) + sum(line[2] - (line[3] or 0.0) for line in costed)
        if net >= 0:
            row["occasions"].append((day, net))
        else:
            row["return_days"] += 1
    expected = {}
    for customer, row in customers.items():
        if not row["occasions"]:
            continue
        (first, first_revenue), (last, _) = row["occasions"][0], row["occasions"][-1]
        repeats = len(row["occasions"]) - 1
        expected[customer] = {
            "frequency": repeats,
            "recency": float(last - first),
            "T": float(calibration_days - first),
            "monetary_value": (sum(r for _, r in row["occasions"]) - first_revenue) / repeats if repeats else 0.0,
            "revenue": row["revenue"],
            "cost": row["cost"],
            "margin": row["margin"],
            "return_days": row["return_days"],
            "first_purchase": START + dt.timedelta(days=first),
            "last_purchase": START + dt.timedelta(days=last),
            "frequency_holdout": row["holdout"],
            "revenue_holdout": row["holdout_revenue"],
        }
    return expected


@settings(max_examples=150, deadline=None)
@given(lines=lines_strategy, shuffle_seed=st.integers(0, 2**16))
def test_the_compiled_pass_agrees_with_the_definitions(lines: list[Line], shuffle_seed: int) -> None:
    frame = pl.DataFrame(
        {
            "customer_id": [line[0] for line in lines],
            "at": [START + dt.timedelta(days=line[1]) for line in lines],
            "revenue": [line[2] for line in lines],
            "cost": [line[3] for line in lines],
        },
        schema_overrides={"cost": pl.Float64},
    ).sample(fraction=1.0, shuffle=True, seed=shuffle_seed)
    expected = by_the_definitions(lines)
    if not expected:
        with pytest.raises(InvalidInputError):
            purchase_summary(frame, calibration_end=CALIBRATION_END, observation_end=OBSERVATION_END, period="D")
        return
    summary = purchase_summary(frame, calibration_end=CALIBRATION_END, observation_end=OBSERVATION_END, period="D")
    got = {row.pop("customer_id"): row for row in summary.frame.to_dicts()}
    assert got.keys() == expected.keys()
    for customer, row in expected.items():
        assert got[customer] == pytest.approx(row), customer
    left_out = summary.excluded.get("customers_first_seen_after_calibration_end", 0) + summary.excluded.get(
        "customers_without_a_purchase_occasion", 0
    )
    in_window = {line[0] for line in lines if line[1] <= (OBSERVATION_END - START).days}
    assert left_out == len(in_window) - len(expected)


def test_string_customer_ids_keep_their_own_values() -> None:
    frame = pl.DataFrame(
        {"customer_id": ["b", "a", "b", "a"], "at": [START, START, START + dt.timedelta(days=3), START],
         "revenue": [1.0, 2.0, 3.0, 4.0]}
    )  # fmt: skip
    summary = purchase_summary(frame, observation_end=START + dt.timedelta(days=5), period="D")
    assert summary.frame.select("customer_id", "frequency", "revenue").rows() == [("a", 0, 6.0), ("b", 1, 4.0)]
