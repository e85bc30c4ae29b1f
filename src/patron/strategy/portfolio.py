"""Customers as a portfolio: mean and variance of cash flows per segment, the efficient frontier, managers' P&L.

Following Markowitz (1952, "Portfolio Selection", Journal of Finance 7(1)) as carried to customer bases by
Ryals (2003, "Making customers pay: measuring and managing customer risk and returns", Journal of Strategic
Marketing 11(3)) and Buhl & Heinrich (2008, "Valuing Customer Portfolios under Risk-Return-Aspects", IJMM):
a segment is an asset whose return is the monthly margin per customer; weights are the share of the marketing
effort (or of the base) given to each segment. Limits: the covariance is estimated from the history's months,
so it needs many more months than segments, and it assumes tomorrow's co-movement is yesterday's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.optimize import minimize
from sqlalchemy import Engine, select

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.facts import Scope, resolve_scope
from patron.cif.money import minor_unit
from patron.cif.stored_results import storable
from patron.errors import InvalidInputError
from patron.segments.features import build_features, feature_schema, parts_for
from patron.settings import get_settings
from patron.value.schema import CustomerScore, ScoreRun
from patron.value.transactions import load_transactions

Array = np.ndarray
MAX_SEGMENTS = 12


@storable
@dataclass(frozen=True)
class FrontierPoint:
    risk: float  # standard deviation of the monthly cash flow per customer
    expected: float  # mean monthly cash flow per customer
    weights: dict[str, float]


def _margins(engine: Engine, scope: Scope) -> pl.DataFrame:
    """customer_id, month, margin (revenue × the default margin rate where no cost was recorded)."""
    lines = load_transactions(engine, scope)
    return lines.select(
        "customer_id",
        pl.col("at").dt.truncate("1mo").cast(pl.Date).alias("month"),
        pl.coalesce("margin", pl.col("revenue") * get_settings().default_margin_rate).alias("margin"),
    )


def segment_cash_flows(engine: Engine, *, by: str = "tier", source: str | None = None) -> pl.DataFrame:
    """Per month and segment (the values of feature ``by``): customers and margin per customer."""
    schema = feature_schema(engine)
    if by not in schema:
        raise InvalidInputError(f"{by!r} is not a customer field; segments need one such as tier", field="by")
    customers = build_features(engine, parts=parts_for([by])).customers
    members = customers.select("customer_id", pl.col(by).cast(pl.String).alias("segment")).drop_nulls("segment")
    if members.is_empty():
        raise InvalidInputError(f"no customer has a value for {by!r} yet (run `patron value score` for tiers)")
    margins = _margins(engine, resolve_scope(engine, source))
    sizes = members.group_by("segment").len("customers")
    if sizes.height > MAX_SEGMENTS:
        raise InvalidInputError(
            f"{by!r} has {sizes.height:,} values: a portfolio takes {MAX_SEGMENTS} segments at most", field="by"
        )
    months = margins.select("month").unique()
    per_month = (
        margins.join(members, on="customer_id")
        .group_by("month", "segment")
        .agg(pl.col("margin").sum())
        .join(months.join(sizes, how="cross"), on=["month", "segment"], how="right")
        .with_columns(pl.col("margin").fill_null(0.0))
        .with_columns((pl.col("margin") / pl.col("customers")).alias("margin_per_customer"))
        .sort("month", "segment")
    )
    return per_month.select("month", "segment", "customers", "margin_per_customer")


def moments(flows: pl.DataFrame) -> tuple[list[str], Array, Array]:
    """Segment names, mean monthly margin per customer, and the covariance matrix across months."""
    wide = flows.pivot(on="segment", index="month", values="margin_per_customer").sort("month").fill_null(0.0)
    names = [name for name in wide.columns if name != "month"]
    if len(names) < 2:
        raise InvalidInputError("a portfolio needs at least two segments")
    if wide.height <= len(names):
        raise InvalidInputError(
            f"{wide.height} months of history cannot estimate a covariance of {len(names)} segments"
        )
    if len(names) > MAX_SEGMENTS:
        raise InvalidInputError(
            f"{len(names)} segments are too many for a portfolio; group them into {MAX_SEGMENTS} or fewer"
        )
    values = wide.select(names).to_numpy()
    covariance = np.cov(values, rowvar=False)
    if np.linalg.cond(covariance) > 1e12:
        raise InvalidInputError(
            "some segments' cash flows move in lockstep (or never vary): their risks cannot be told apart"
        )
    return names, values.mean(axis=0), covariance


def minimum_variance(expected: Array, covariance: Array, target: float, *, long_only: bool = True) -> Array:
    """Weights (summing to 1) with the least variance among those whose expected return is ``target``."""
    n = len(expected)
    if not long_only:
        return _unconstrained(expected, covariance, target)
    # Cash flows in money put the variance in the thousands and the returns in the hundreds; SLSQP then stops short
    # ("positive directional derivative") on half the targets of a real shop's tiers. Units of the largest return
    # and of the mean variance leave the optimum where it is and let it converge.
    return_unit = float(np.abs(expected).max()) or 1.0
    scaled_expected, scaled_target = expected / return_unit, target / return_unit
    scaled_covariance = covariance / (float(np.trace(covariance)) / n or 1.0)
    constraints = [
        {"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(n)},
        {"type": "eq", "fun": lambda w: w @ scaled_expected - scaled_target, "jac": lambda w: scaled_expected},
    ]
    result = minimize(
        lambda w: w @ scaled_covariance @ w, np.full(n, 1.0 / n), jac=lambda w: 2 * scaled_covariance @ w,
        bounds=[(0.0, 1.0)] * n, constraints=constraints, method="SLSQP", options={"ftol": 1e-15, "maxiter": 500},
    )  # fmt: skip
    if not result.success:
        raise InvalidInputError(
            f"no mix of segments was found that earns {target:.4g} a customer a month on average, between the lowest "
            f"segment's {expected.min():.4g} and the highest's {expected.max():.4g} (the optimiser: {result.message})"
        )
    return np.asarray(np.clip(result.x, 0.0, 1.0), dtype=np.float64)


def _unconstrained(expected: Array, covariance: Array, target: float) -> Array:
    """Merton (1972): the frontier with short positions allowed, in closed form."""
    inverse = np.linalg.inv(covariance)
    ones = np.ones(len(expected))
    a, b, c = ones @ inverse @ ones, ones @ inverse @ expected, expected @ inverse @ expected
    d = a * c - b * b
    weights = inverse @ ((c - b * target) / d * ones + (a * target - b) / d * expected)
    return np.asarray(weights, dtype=np.float64)


def efficient_frontier(
    names: list[str], expected: Array, covariance: Array, *, points: int = 25, long_only: bool = True
) -> list[FrontierPoint]:
    """From the minimum-variance portfolio up to the highest expected return, ``points`` portfolios."""
    ones = np.ones(len(expected))
    global_min = np.linalg.solve(covariance, ones)
    global_min = global_min / global_min.sum()
    if long_only and (global_min < 0).any():
        start = minimum_variance(expected, covariance, float(expected.min()), long_only=True)
        candidates = [start] + [
            minimum_variance(expected, covariance, float(t), long_only=True)
            for t in np.linspace(float(expected.min()), float(expected.max()), 200)
        ]
        global_min = min(candidates, key=lambda w: float(w @ covariance @ w))
    lowest = float(global_min @ expected)
    frontier = []
    for target in np.linspace(lowest, float(expected.max()), points):
        weights = minimum_variance(expected, covariance, float(target), long_only=long_only)
        frontier.append(
            FrontierPoint(
                float(np.sqrt(max(weights @ covariance @ weights, 0.0))),
                float(weights @ expected),
                {name: float(w) for name, w in zip(names, weights, strict=True)},
            )
        )
    return frontier


def best_for_risk(frontier: list[FrontierPoint], risk: float) -> FrontierPoint:
    """The frontier portfolio with the highest expected return whose risk is at most ``risk``."""
    admissible = [point for point in frontier if point.risk <= risk + 1e-12]
    if not admissible:
        lowest = min(point.risk for point in frontier)
        raise InvalidInputError(f"no portfolio is that safe: the least risk possible is {lowest:.4g}", field="risk")
    return max(admissible, key=lambda point: point.expected)


def manager_pnl(engine: Engine, *, source: str | None = None) -> pl.DataFrame:
    """Per account manager and month: customers, revenue, cost, margin; and each manager's CLV change between
    the last two score runs (in major units; empty when fewer than two runs exist)."""
    accounts, contacts = table_of(s.Account).c, table_of(s.AccountContact).c
    with engine.connect() as conn:
        rows = conn.execute(
            select(accounts.manager, contacts.customer_id)
            .join_from(table_of(s.AccountContact), table_of(s.Account), accounts.id == contacts.account_id)
            .where(accounts.manager.is_not(None))
            .distinct()
        ).all()
    owners = pl.DataFrame(rows, schema={"manager": pl.String, "customer_id": pl.Int64}, orient="row")
    scope = resolve_scope(engine, source)
    lines = load_transactions(engine, scope).join(owners, on="customer_id")
    pnl = (
        lines.group_by("manager", pl.col("at").dt.truncate("1mo").cast(pl.Date).alias("month"))
        .agg(
            pl.col("customer_id").n_unique().alias("buying_customers"),
            pl.col("revenue").sum(),
            pl.col("cost").sum(),
            pl.coalesce("margin", pl.col("revenue") * get_settings().default_margin_rate).sum().alias("margin"),
        )
        .sort("manager", "month")
    )
    return pnl.join(_clv_change(engine, owners, scope.currency), on="manager", how="left")


def _clv_change(engine: Engine, owners: pl.DataFrame, currency: str) -> pl.DataFrame:
    runs, scores = table_of(ScoreRun).c, table_of(CustomerScore).c
    with engine.connect() as conn:
        latest = conn.scalars(select(runs.id).order_by(runs.id.desc()).limit(2)).all()
        if len(latest) < 2:
            return pl.DataFrame(schema={"manager": pl.String, "clv_change": pl.Float64})
        query = select(scores.run_id, scores.customer_id, scores.clv_minor).where(scores.run_id.in_(latest))
        rows = conn.execute(query).all()
    schema = {"run_id": pl.Int64, "customer_id": pl.Int64, "clv_minor": pl.Int64}
    frame = pl.DataFrame(rows, schema=schema, orient="row").join(owners, on="customer_id")
    newer, older = latest
    clv = pl.col("clv_minor")
    change = (clv.filter(pl.col("run_id") == newer).sum() - clv.filter(pl.col("run_id") == older).sum()) / minor_unit(
        currency
    )
    return frame.group_by("manager").agg(change.alias("clv_change"))
