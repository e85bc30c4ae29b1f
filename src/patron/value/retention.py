"""Retention of contract customers (subscriptions, telecom contracts) with the shifted-beta-geometric model.

Each customer's tenure (whole periods), whether they cancelled (status ``churned``) and a cohort (say, the contract
type) are read from the customer file; one sBG is fitted per cohort on the customers' own censored tenures. Out
come the retention curve and survival per cohort, and for each active customer the discounted expected residual
lifetime (DERL, in payments) and its value: DERL × periodic charge × margin rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from sqlalchemy import Engine, select

from patron.cif import schema as s
from patron.cif.facts import read_frame
from patron.errors import InvalidInputError
from patron.settings import get_settings
from patron.value.models.sbg import ShiftedBetaGeometric

C = s.Customer.__table__.c
A = s.CustomerAttribute.__table__.c
CURVE_PERIODS = 24


@dataclass(frozen=True)
class CohortRetention:
    cohort: str
    customers: int
    churned: int
    alpha: float
    beta: float
    retention: list[float]  # r(1), r(2), …: the share renewing at each period
    survival: list[float]  # S(1), S(2), …
    mean_residual_lifetime: float  # DERL of the active customers, in payments
    note: str | None = None  # set when the fit is the geometric limit


@dataclass
class RetentionReport:
    cohorts: list[CohortRetention]
    customers: pl.DataFrame  # customer_id, cohort, tenure, churned, residual_lifetime, residual_value
    left_out: dict[str, int] = field(default_factory=dict)


def read_contracts(engine: Engine, tenure: str, cohort: str | None, charge: str | None) -> pl.DataFrame:
    """customer_id, churned, tenure, cohort, charge: one row per customer who has the tenure attribute."""
    keys = [key for key in (tenure, cohort, charge) if key]
    query = (
        select(C.id, C.status, A.key, A.value_number, A.value_text)
        .join(s.CustomerAttribute.__table__, A.customer_id == C.id)
        .where(A.key.in_(keys))
    )
    schema = {
        "customer_id": pl.Int64(),
        "status": pl.String(),
        "key": pl.String(),
        "number": pl.Float64(),
        "text": pl.String(),
    }
    long = read_frame(engine, query, schema)
    if long.filter(pl.col("key") == tenure).height == 0:
        raise InvalidInputError(f"no customer has the attribute {tenure!r} (their tenure in periods)", field="tenure")
    value = pl.coalesce(pl.col("text"), pl.col("number").cast(pl.String))
    wide = long.with_columns(value.alias("value")).pivot("key", index=["customer_id", "status"], values="value")
    return wide.select(
        "customer_id",
        (pl.col("status") == "churned").alias("churned"),
        pl.col(tenure).cast(pl.Float64, strict=False).alias("tenure"),
        (pl.col(cohort) if cohort and cohort in wide.columns else pl.lit("all")).fill_null("(none)").alias("cohort"),
        (
            pl.col(charge).cast(pl.Float64, strict=False)
            if charge and charge in wide.columns
            else pl.lit(None, dtype=pl.Float64)
        ).alias("charge"),
    )


def contract_retention(
    engine: Engine, *, tenure: str = "tenure_months", cohort: str | None = "contract",
    charge: str | None = "monthly_charges", annual_discount_rate: float = 0.10, periods_per_year: int = 12,
    margin_rate: float | None = None,
) -> RetentionReport:  # fmt: skip
    """Fit one sBG per cohort and value every active customer's residual lifetime."""
    contracts = read_contracts(engine, tenure, cohort, charge)
    usable = contracts.filter(pl.col("tenure").is_not_null() & (pl.col("tenure") >= 1))
    left_out = {"customers_without_a_whole_period_of_tenure": contracts.height - usable.height}
    usable = usable.with_columns(pl.col("tenure").floor())
    rate = (1 + annual_discount_rate) ** (1 / periods_per_year) - 1
    margin = get_settings().default_margin_rate if margin_rate is None else margin_rate
    cohorts, valued = [], []
    for (name,), group in usable.group_by("cohort", maintain_order=True):
        if not group["churned"].any():
            left_out[f"cohort {name}: nobody cancelled yet"] = group.height
            continue
        model = ShiftedBetaGeometric().fit(group["tenure"].to_numpy(), group["churned"].to_numpy())
        periods = np.arange(1, CURVE_PERIODS + 1)
        active = group.filter(~pl.col("churned"))
        derl = model.residual_lifetime(active["tenure"].to_numpy() - 1, rate) if active.height else np.empty(0)
        cohorts.append(
            CohortRetention(
                str(name), group.height, int(group["churned"].sum()), model.params["alpha"], model.params["beta"],
                model.retention(periods).tolist(), model.survival(periods).tolist(),
                float(derl.mean()) if len(derl) else float("nan"), model.note,
            )
        )  # fmt: skip
        valued.append(
            active.with_columns(pl.Series("residual_lifetime", derl)).with_columns(
                (pl.col("residual_lifetime") * pl.col("charge") * margin).alias("residual_value")
            )
        )
    if not cohorts:
        raise InvalidInputError("no cohort has a cancellation yet: retention cannot be estimated", field="cohort")
    customers = pl.concat(valued) if valued else usable.head(0)
    return RetentionReport(sorted(cohorts, key=lambda item: -item.customers), customers.sort("customer_id"), left_out)
