"""A scoring run: summaries → repeat-purchase and spend models → CLV → tiers, stored as a versioned run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, Unpack

import polars as pl
from sqlalchemy import Engine, Select, delete, func, insert, select

from patron.cif.columns import table_of
from patron.cif.facts import Scope, resolve_scope
from patron.cif.money import minor_exponent
from patron.cif.store import refresh_statistics
from patron.errors import FitError, InvalidInputError, NotFoundError
from patron.value.clv import ClvSettings, customer_lifetime_value
from patron.value.diagnostics import MODELS, ModelChoice, choose_model
from patron.value.discrete import bgbb_scores
from patron.value.fits import PurchaseFit, SpendFit, fit_purchases, fit_spend
from patron.value.lists import check_tier_cuts, tier_letters
from patron.value.models.base import PurchaseModel
from patron.value.models.bgbb import BetaGeometricBetaBinomial
from patron.value.models.gammagamma import GammaGamma
from patron.value.rfm import rfm_order, rfm_scores
from patron.value.schema import CustomerScore, ScoreRun
from patron.value.summary import Period, Summary, purchase_summary
from patron.value.transactions import load_transactions

ModelName = Literal["auto", "bgnbd", "paretonbd", "mbgnbd", "nbd", "bgbb"]
DEFAULT_TIER_CUTS = (0.2, 0.5)  # A = top 20 %, B = the next 30 %, C = the rest
Progress = Callable[[str], None]


@dataclass
class ScoreRunResult:
    run_id: int
    scope: Scope
    model: str
    parameters: dict[str, dict[str, float]]
    log_likelihood: float | None
    customers: int
    as_of: dt.date
    excluded: dict[str, int] = field(default_factory=dict)
    choice: ModelChoice | None = None
    scores: pl.DataFrame = field(default_factory=pl.DataFrame)
    notes: list[str] = field(default_factory=list)


def assign_tiers(values: pl.Series, cuts: tuple[float, ...] = DEFAULT_TIER_CUTS) -> tuple[pl.Series, pl.Series]:
    """Rank (1 = most valuable) and tier letter (A, B, C, …) by cumulative share of customers."""
    check_tier_cuts(cuts, field="tier_cuts")
    rank = values.rank(method="ordinal", descending=True).cast(pl.Int64).alias("rank")
    return rank, pl.DataFrame(rank).select(tier_of_rank(pl.col("rank"), len(values), cuts))["tier"]


def tier_of_rank(rank: pl.Expr, customers: int, cuts: tuple[float, ...]) -> pl.Expr:
    """The tier letter of a value rank (1 = most valuable) among ``customers``, by cumulative share."""
    return tier_letters((rank - 1) / max(customers, 1), cuts).alias("tier")


class RunOptions(TypedDict, total=False):
    """How a score run is made, wherever it runs (here or on Spark); every option has a default."""

    source: str | None  # default: the largest order source
    currency: str | None
    period: Period  # the models' time unit, default weeks
    as_of: dt.date | None  # the end of the calibration period, default the last order
    settings: ClvSettings | None  # CLV horizon, discount and default margin rate
    tier_cuts: tuple[float, ...]
    note: str | None
    progress: Progress | None


@dataclass(frozen=True)
class RunSettings:
    """``RunOptions`` with every default filled in: what both the embedded and the Spark run work from."""

    say: Progress
    settings: ClvSettings
    period: Period
    as_of: dt.date | None
    tier_cuts: tuple[float, ...]
    note: str | None

    @classmethod
    def of(cls, options: RunOptions) -> RunSettings:
        return cls(
            say=options.get("progress") or (lambda _message: None),
            settings=options.get("settings") or ClvSettings(),
            period=options.get("period", "W"),
            as_of=options.get("as_of"),
            tier_cuts=options.get("tier_cuts", DEFAULT_TIER_CUTS),
            note=options.get("note"),
        )


def score_customers(engine: Engine, *, model: ModelName = "auto", **options: Unpack[RunOptions]) -> ScoreRunResult:
    """Fit the models on every purchase up to ``as_of`` (default: the last order) and store the run."""
    given = RunSettings.of(options)
    say, settings, period, as_of, tier_cuts, note = (
        given.say, given.settings, given.period, given.as_of, given.tier_cuts, given.note
    )  # fmt: skip
    if model not in ("auto", "bgbb", *MODELS):
        raise InvalidInputError(f"unknown model {model!r}; use auto, {', '.join(MODELS)} or bgbb", field="model")
    scope = resolve_scope(engine, options.get("source"), options.get("currency"))
    say(f"reading orders of {scope.source} in {scope.currency}")
    transactions = load_transactions(engine, scope)
    summary = purchase_summary(transactions, observation_end=as_of, period=period)

    fitted, clv = _fit_and_value(transactions, summary, model, settings, say)
    scores = clv.with_columns(*assign_tiers(rfm_order(clv) if fitted.model == "rfm" else clv["clv"], tier_cuts))

    run = run_record(
        scope=scope, as_of=summary.observation_end, model=fitted.label, parameters=fitted.parameters,
        log_likelihood=fitted.log_likelihood, period=period, settings=settings, tier_cuts=tier_cuts,
        excluded=fitted.excluded(summary.excluded), note=note, customers=scores.height, fit_notes=fitted.notes,
    )  # fmt: skip
    run_id = _store_run(engine, scores, run)
    say(f"stored score run {run_id}")
    return ScoreRunResult(
        run_id, scope, fitted.model, fitted.parameters, fitted.log_likelihood, scores.height, summary.observation_end,
        run["excluded"], fitted.choice, scores, fitted.notes,
    )  # fmt: skip


def _fit_and_value(
    transactions: pl.DataFrame, summary: Summary, model: str, settings: ClvSettings, say: Progress
) -> tuple[FittedModels, pl.DataFrame]:
    """The fitted models and every customer's values: BG/BB when asked for, else the continuous models, else RFM."""
    if model == "bgbb":
        say(f"fitting BG/BB on opportunities of one period ({summary.period}) each")
        spend = fit_spend(summary)
        values, bgbb = bgbb_scores(transactions, summary, spend.model, settings)
        return FittedModels(None, spend, None, list(spend.notes), discrete=bgbb), values
    if model == "auto":
        say("choosing the repeat-purchase model on a held-out part of the history")
    fitted = fit_models(transactions, summary, model)
    if fitted.purchases is None or fitted.spend is None:
        say("no probability model can be fitted: tiers and lists from RFM scores")
        return fitted, rfm_scores(summary, settings.default_margin_rate)
    say(f"fitted {fitted.model} on {summary.frame.height:,} customers; computing lifetime values")
    return fitted, customer_lifetime_value(summary, fitted.purchases.model, fitted.spend.model, settings)


@dataclass
class FittedModels:
    """What a run forecasts with: a purchase and a spend fit, or neither (RFM), and every note on the way."""

    purchases: PurchaseFit | None
    spend: SpendFit | None
    choice: ModelChoice | None
    notes: list[str]
    discrete: BetaGeometricBetaBinomial | None = None  # a discrete-time (BG/BB) run

    @property
    def model(self) -> str:
        if self.discrete is not None:
            return self.discrete.name
        return "rfm" if self.purchases is None else self.purchases.name

    @property
    def label(self) -> str:
        """The run's model as stored: purchase model + spend model, or ``rfm``."""
        return "rfm" if self.spend is None else f"{self.model}+{self.spend.name}"

    @property
    def parameters(self) -> dict[str, dict[str, float]]:
        if self.spend is None:
            return {}
        purchases = self.discrete if self.discrete is not None else self.purchases.model if self.purchases else None
        found = {} if purchases is None else {purchases.name: purchases.params}
        return found | ({"gammagamma": self.spend.params} if self.spend.params else {})

    @property
    def log_likelihood(self) -> float | None:
        if self.discrete is not None:
            return self.discrete.log_likelihood
        return None if self.purchases is None else self.purchases.model.log_likelihood

    def excluded(self, summary_excluded: dict[str, int]) -> dict[str, int]:
        return with_spend_exclusions(summary_excluded, {} if self.spend is None else self.spend.excluded)


def fit_models(transactions: pl.DataFrame, summary: Summary, model: str) -> FittedModels:
    """The requested model (or the best by holdout), its NBD limit where there is no drop-out, and a spend model;
    no purchase model at all (an RFM run) when none can be fitted. Never raises ``FitError``."""
    notes: list[str] = []
    choice = None
    order = [model]
    if model == "auto":
        try:
            choice = choose_model(transactions, summary)
            order = choice.ranking()
            notes.append(choice.describe())
        except (FitError, InvalidInputError):  # too short a history, or too few repeat buyers, to hold a part out
            notes.append("no model could be fitted on the earlier part of the history: the models tried in turn")
            order = list(MODELS)
    for name in order:
        try:
            purchases = fit_purchases(name, summary)
        except FitError as error:
            notes.append(error.message)
            continue
        notes += purchases.notes
        spend = fit_spend(summary)
        return FittedModels(purchases, spend, choice, list(dict.fromkeys(notes + list(spend.notes))))
    notes.append("no repeat-purchase model can be fitted (too few repeat buyers): tiers from RFM scores")
    return FittedModels(None, None, choice, list(dict.fromkeys(notes)))


def _store_run(engine: Engine, scores: pl.DataFrame, run: dict[str, Any]) -> int:
    run_id = insert_run(engine, run)
    try:
        insert_scores(engine, score_rows(scores, run["currency"]).with_columns(pl.lit(run_id).alias("run_id")))
    except Exception:
        delete_run(engine, run_id)  # a run is stored whole or not at all
        raise
    return run_id


def insert_scores(engine: Engine, rows: pl.DataFrame) -> None:
    batch = rows.to_dicts()
    with engine.begin() as conn:
        for start in range(0, len(batch), 5000):
            conn.execute(insert(table_of(CustomerScore)), batch[start : start + 5000])
    refresh_statistics(engine, rows_written=len(batch))  # profile lookups read the newest scores by customer


def delete_run(engine: Engine, run_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(delete(table_of(CustomerScore)).where(table_of(CustomerScore).c.run_id == run_id))
        conn.execute(delete(table_of(ScoreRun)).where(table_of(ScoreRun).c.id == run_id))


def with_spend_exclusions(summary_excluded: dict[str, int], spend_excluded: dict[str, int]) -> dict[str, int]:
    """Everything a run left out: the summary's exclusions and the spend model's (prefixed, when any)."""
    return {**summary_excluded, **{f"spend_model:{k}": v for k, v in spend_excluded.items() if v}}


def fit_outcome(
    model: str, purchases: PurchaseModel, spend: GammaGamma | SpendFit, summary_excluded: dict[str, int]
) -> tuple[dict[str, int], dict[str, dict[str, float]]]:
    """What a run records of its fits: everything left out (by the summary and the spend model) and the parameters."""
    excluded = with_spend_exclusions(summary_excluded, spend.excluded)
    return excluded, {model: purchases.params} | ({spend.name: spend.params} if spend.params else {})


def run_record(
    *,
    scope: Scope,
    as_of: dt.date,
    model: str,
    parameters: dict[str, dict[str, float]],
    log_likelihood: float | None,
    period: str,
    settings: ClvSettings,
    tier_cuts: tuple[float, ...],
    excluded: dict[str, int],
    note: str | None,
    customers: int,
    fit_notes: list[str] | None = None,
) -> dict[str, Any]:
    """The score_runs row describing one run: what was fitted, on what, with which settings."""
    return {
        "as_of": as_of,
        "model": model if "+" in model or model == "rfm" else f"{model}+gammagamma",
        "period": period,
        "currency": scope.currency,
        "horizon_months": settings.horizon_months,
        "annual_discount_rate": settings.annual_discount_rate,
        "default_margin_rate": settings.default_margin_rate,
        "source": scope.source,
        "parameters": parameters,
        "log_likelihood": log_likelihood,
        "customers": customers,
        "excluded": excluded,
        "tier_cuts": list(tier_cuts),
        "note": note,
        "fit_notes": fit_notes or [],
    }


def insert_run(engine: Engine, run: dict[str, Any]) -> int:
    with engine.begin() as conn:
        return int(conn.execute(insert(table_of(ScoreRun)).values(run).returning(table_of(ScoreRun).c.id)).scalar_one())


def score_rows(scores: pl.DataFrame, currency: str) -> pl.DataFrame:
    """The customer_scores columns (money in minor units) of a scored frame; row-wise, so Spark runs it per batch."""
    unit = 10 ** minor_exponent(currency)

    def minor(column: str) -> pl.Expr:
        expression: pl.Expr = (pl.col(column) * unit).round(0).cast(pl.Int64)
        return expression

    return scores.select(
        "customer_id",
        "frequency",
        "recency",
        pl.col("T").alias("age"),
        "p_alive",
        "expected_purchases",
        minor("expected_margin_per_purchase").alias("expected_margin_per_purchase_minor"),
        minor("clv").alias("clv_minor"),
        minor("value_at_risk").alias("value_at_risk_minor"),
        minor("revenue").alias("revenue_minor"),
        "tier",
        "rank",
    )


RUNS = table_of(ScoreRun).c
SCORES = table_of(CustomerScore).c


def list_runs(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    query = select(table_of(ScoreRun)).order_by(RUNS.id.desc()).limit(limit)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def latest_run(engine: Engine, scope: Scope) -> dict[str, Any] | None:
    """The newest score run of one scope (its source and currency), or None before the first."""
    query = select(table_of(ScoreRun)).where(RUNS.currency == scope.currency).order_by(RUNS.id.desc()).limit(1)
    if scope.source is not None:
        query = query.where(RUNS.source == scope.source)
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else dict(row)


def latest_run_id(engine: Engine, source: str | None = None) -> int:
    query = select(RUNS.id).order_by(RUNS.id.desc()).limit(1)
    if source is not None:
        query = query.where(RUNS.source == source)
    with engine.connect() as conn:
        run_id = conn.scalar(query)
    if run_id is None:
        raise NotFoundError("there is no score run yet: run `patron value score` first", field="run")
    return int(run_id)


def run_scores(engine: Engine, run_id: int) -> pl.DataFrame:
    """Every customer's scores in one run."""
    with engine.connect() as conn:
        if conn.scalar(select(RUNS.id).where(RUNS.id == run_id)) is None:
            raise NotFoundError(f"there is no score run {run_id}", field="run")
        rows = conn.execute(select(table_of(CustomerScore)).where(SCORES.run_id == run_id)).all()
    return pl.DataFrame([dict(row._mapping) for row in rows], infer_schema_length=None)


def scores_page(
    engine: Engine, run_id: int, *, tier: str | None = None, within: Select[int] | None = None,
    limit: int = 50, offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """One page of a run's customer scores by rank (best first), optionally one tier or a set of customers."""
    conditions = [SCORES.run_id == run_id]
    if tier is not None:
        conditions.append(SCORES.tier == tier)
    if within is not None:
        conditions.append(SCORES.customer_id.in_(within))
    with engine.connect() as conn:
        if conn.scalar(select(RUNS.id).where(RUNS.id == run_id)) is None:
            raise NotFoundError(f"there is no score run {run_id}", field="run_id")
        total = int(conn.scalar(select(func.count()).select_from(table_of(CustomerScore)).where(*conditions)) or 0)
        rows = conn.execute(
            select(table_of(CustomerScore)).where(*conditions).order_by(SCORES.rank, SCORES.customer_id)
            .limit(limit).offset(offset)
        ).mappings().all()  # fmt: skip
    return [dict(row) for row in rows], total


def score_movement(engine: Engine, earlier: int, later: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Tier migration counts between two runs, and per-customer CLV change (customers in either run).

    A customer missing from a run appears as tier "-" there (new, or no longer scored).
    """
    before = run_scores(engine, earlier).select(
        "customer_id", pl.col("tier").alias("tier_before"), pl.col("clv_minor").alias("clv_before_minor")
    )
    after = run_scores(engine, later).select(
        "customer_id", pl.col("tier").alias("tier_after"), pl.col("clv_minor").alias("clv_after_minor")
    )
    moves = before.join(after, on="customer_id", how="full", coalesce=True).with_columns(
        pl.col("tier_before", "tier_after").fill_null("-"),
        (pl.col("clv_after_minor").fill_null(0) - pl.col("clv_before_minor").fill_null(0)).alias("clv_change_minor"),
    )
    matrix = moves.group_by("tier_before", "tier_after").len().sort("tier_before", "tier_after")
    return matrix, moves.sort("clv_change_minor")
