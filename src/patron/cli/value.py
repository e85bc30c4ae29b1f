"""``patron value``: fit the lifetime-value models, store scoring runs, and print the differentiation lists."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from patron.cli.shared import console, open_store, print_rows, reports_errors
from patron.errors import InvalidInputError
from patron.value.list_names import LIST_NAMES

if TYPE_CHECKING:
    import polars as pl
    from rich.table import Table

    from patron.value.summary import Period

value_app = typer.Typer(
    help="Customer value: lifetime-value models, scoring runs and value lists.", no_args_is_help=True
)

SourceOption = Annotated[str | None, typer.Option(help="Order source to analyse (default: the largest).")]
AsOfOption = Annotated[
    dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Analyse as of this day (default: the last order).")
]


def _table(frame: pl.DataFrame, title: str, limit: int) -> Table:
    from rich.table import Table  # noqa: PLC0415 - Rich's tables load only when one is printed

    table = Table(title=title)
    for name in frame.columns:
        table.add_column(name, overflow="fold")
    for row in frame.head(limit).iter_rows():
        table.add_row(*(_cell(value) for value in row))
    return table


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


@value_app.command("fit")
@reports_errors
def fit(
    source: SourceOption = None,
    period: Annotated[str, typer.Option(help="Time unit: D, W, M or Y.")] = "W",
    calibration_end: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="End of calibration; later orders are the holdout.")
    ] = None,
    as_of: AsOfOption = None,
) -> None:
    """Fit BG/NBD, Pareto/NBD and Gamma-Gamma and show parameters, fit and (with a holdout) forecast accuracy."""
    from patron.cif.facts import resolve_scope  # noqa: PLC0415
    from patron.errors import FitError  # noqa: PLC0415
    from patron.value.diagnostics import MODELS, calibration_vs_holdout, holdout_error  # noqa: PLC0415
    from patron.value.fits import fit_purchases  # noqa: PLC0415
    from patron.value.models.gammagamma import GammaGamma  # noqa: PLC0415
    from patron.value.summary import purchase_summary  # noqa: PLC0415
    from patron.value.transactions import load_transactions  # noqa: PLC0415

    engine = open_store()
    scope = resolve_scope(engine, source)
    transactions = load_transactions(engine, scope)
    summary = purchase_summary(
        transactions,
        calibration_end=calibration_end.date() if calibration_end else None,
        observation_end=as_of.date() if as_of else None,
        period=_period(period),
    )
    console.print(
        f"{scope.source} ({scope.currency}): {summary.frame.height:,} customers, calibration to "
        f"{summary.calibration_end}, observed to {summary.observation_end}, time unit {summary.period}"
    )
    for note, count in summary.excluded.items():
        console.print(f"  left out: {count:,} {note.replace('_', ' ')}")
    for name in MODELS:
        try:
            fit = fit_purchases(name, summary)
        except FitError as failed:
            console.print(f"[bold]{name}[/bold]: no fit: {failed.message}")
            continue
        model = fit.model
        for fit_note in fit.notes:
            console.print(f"  {fit_note}", markup=False)
        params = ", ".join(f"{k}={v:.4g}" for k, v in model.params.items())
        console.print(f"[bold]{name}[/bold]: {params}; log-likelihood {model.log_likelihood:,.1f}")
        if summary.has_holdout:
            error = holdout_error(model, summary)
            console.print(
                f"  holdout: forecast {error.forecast_total:,.0f} repeat purchases, actual {error.actual_total:,} "
                f"({error.relative_error:+.1%}); per-customer RMSE {error.root_mean_squared_error:.3f}"
            )
            console.print(
                _table(calibration_vs_holdout(model, summary), f"{name}: holdout by calibration frequency", 20)
            )
    spend = GammaGamma().fit_summary(summary)
    console.print(
        "[bold]gammagamma[/bold]: "
        + ", ".join(f"{k}={v:.4g}" for k, v in spend.params.items())
        + f"; mean spend per purchase {spend.population_mean:,.2f} {scope.currency}"
    )


@value_app.command("score")
@reports_errors
def score(
    *,
    source: SourceOption = None,
    model: Annotated[
        str,
        typer.Option(
            help="auto (chosen on a held-out part of the history), bgnbd, paretonbd, mbgnbd, nbd, or bgbb "
            "(discrete time: one opportunity per period, e.g. --period Y for yearly donations)."
        ),
    ] = "auto",
    period: Annotated[str, typer.Option(help="Time unit: D, W, M or Y.")] = "W",
    horizon_months: Annotated[int, typer.Option(help="CLV horizon in months.")] = 36,
    discount_rate: Annotated[float, typer.Option(help="Annual discount rate.")] = 0.10,
    margin_rate: Annotated[
        float | None, typer.Option(help="Margin rate where order lines carry no cost (default: settings, 0.30).")
    ] = None,
    tiers: Annotated[
        str, typer.Option(help="Tier cuts as cumulative shares: A top 20 %, B to 50 %, C the rest.")
    ] = "0.2,0.5",
    as_of: AsOfOption = None,
    note: Annotated[str | None, typer.Option(help="A note stored with the run.")] = None,
    if_unscored: Annotated[
        bool, typer.Option(help="Only if there is no score run yet (and there are orders).")
    ] = False,
) -> None:
    """Score every customer (P(alive), expected purchases, CLV, tier) and store it as a new run."""
    import numpy as np  # noqa: PLC0415

    from patron.cif.store import store_counts  # noqa: PLC0415
    from patron.value.clv import ClvSettings  # noqa: PLC0415
    from patron.value.scoring import list_runs  # noqa: PLC0415

    engine = open_store()
    if if_unscored and (list_runs(engine, 1) or not store_counts(engine)["orders"]):
        console.print("already scored (or nothing to score): not scored again")
        return
    from patron.engage.workflows import score_and_follow_up  # noqa: PLC0415 - offers and triggers load scikit-learn

    result, followed = score_and_follow_up(
        engine,
        source=source,
        model=model,  # type: ignore[arg-type]
        period=_period(period),
        as_of=as_of.date() if as_of else None,
        settings=ClvSettings(horizon_months, discount_rate, *(() if margin_rate is None else (margin_rate,))),
        tier_cuts=_cuts(tiers),
        note=note,
        progress=lambda message: console.print(f"  {message}"),
    )
    if result.choice is not None:
        for name, error in result.choice.errors.items():
            console.print(
                f"  {name}: RMSE {error.root_mean_squared_error:.4f} on purchases after {result.choice.validation_end}"
                f" ({error.relative_error:+.1%} in total)"
            )
    for fit_note in result.notes:
        console.print(f"  note: {fit_note}", markup=False)
    console.print(
        f"run {result.run_id}: {result.customers:,} customers scored with {result.model} as of {result.as_of}"
    )
    clv = result.scores["clv"].to_numpy()
    what = "total past margin (an RFM run forecasts nothing)" if result.model == "rfm" else "total CLV"
    console.print(f"  {what} {clv.sum():,.2f} {result.scope.currency}; median {float(np.median(clv)):,.2f}")
    tiers_count = result.scores.group_by("tier").len().sort("tier")
    console.print("  tiers: " + ", ".join(f"{t} {n:,}" for t, n in tiers_count.iter_rows()))
    console.print(f"  triggers fired: {followed.fired:,}; offers decided again: {followed.offers_decided:,}")
    console.print(f"  recommender: {followed.recommender}")


@value_app.command("runs")
@reports_errors
def runs(limit: int = 20) -> None:
    """The stored scoring runs, newest first."""
    from patron.value.scoring import list_runs  # noqa: PLC0415

    print_rows(
        list_runs(open_store(), limit), ("run", "created", "source", "as of", "model", "customers", "log-likelihood",
                                         "note"),
        lambda row: (
            str(row["id"]), f"{row['created_at']:%Y-%m-%d %H:%M}", row["source"], str(row["as_of"]), row["model"],
            f"{row['customers']:,}", "–" if row["log_likelihood"] is None else f"{row['log_likelihood']:,.1f}",
            row["note"] or "",
        ),
        empty="no score runs yet: run `patron value score`",
    )  # fmt: skip


@value_app.command("movement")
@reports_errors
def movement(earlier: int, later: int, limit: int = 10) -> None:
    """Tier migration between two runs and the customers whose CLV moved most."""
    from patron.value.scoring import score_movement  # noqa: PLC0415

    matrix, moves = score_movement(open_store(), earlier, later)
    pivot = matrix.pivot(on="tier_after", index="tier_before", values="len").fill_null(0).sort("tier_before")
    console.print(_table(pivot, f"customers by tier in run {earlier} (rows) and run {later} (columns)", 50))
    console.print(_table(moves.head(limit), "largest CLV falls (minor units)", limit))
    console.print(_table(moves.reverse().head(limit), "largest CLV rises (minor units)", limit))


@value_app.command("list")
@reports_errors
def value_list(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(LIST_NAMES)}.")],
    source: SourceOption = None,
    as_of: AsOfOption = None,
    limit: Annotated[int, typer.Option(help="Rows to print.")] = 20,
    csv: Annotated[Path | None, typer.Option(help="Write the whole list to this CSV file.")] = None,
) -> None:
    """A differentiation list: every customer on it with a short reason."""
    import polars as pl  # noqa: PLC0415

    from patron.value.base import customer_base  # noqa: PLC0415
    from patron.value.lists import LISTS  # noqa: PLC0415

    if name not in LISTS:
        raise InvalidInputError(f"unknown list {name!r}; choose one of {', '.join(LISTS)}", field="name")
    frame, scope, day = customer_base(open_store(), source=source, as_of=as_of.date() if as_of else None)
    result = LISTS[name](frame)
    console.print(f"{result.title} — {scope.source}, as of {day}: {result.rows.height:,} customers")
    if result.note:
        console.print(f"  {result.note}")
    if result.rows.height:
        console.print(_table(result.rows, result.title, limit))
    if csv is not None:
        result.rows.with_columns(pl.col(pl.List(pl.String)).list.join("|")).write_csv(csv)
        console.print(f"wrote {result.rows.height:,} rows to {csv}")


@value_app.command("pareto")
@reports_errors
def pareto(
    source: SourceOption = None,
    measure: Annotated[str, typer.Option(help="revenue, margin or clv.")] = "revenue",
    as_of: AsOfOption = None,
) -> None:
    """How concentrated value is: the share of revenue (or margin, CLV) from the top x % of customers."""
    from patron.value.base import customer_base  # noqa: PLC0415
    from patron.value.lists import pareto_curve  # noqa: PLC0415

    frame, scope, day = customer_base(open_store(), source=source, as_of=as_of.date() if as_of else None)
    curve = pareto_curve(frame, measure)
    console.print(f"{scope.source}, as of {day}, {frame.height:,} customers:")
    for share in (0.01, 0.05, 0.1, 0.2, 0.5):
        console.print(f"  {curve.statement(share)}")


def _period(value: str) -> Period:
    if value not in ("D", "W", "M", "Y"):
        raise InvalidInputError(f"unknown period {value!r}; use D, W, M or Y", field="period")
    return value  # type: ignore[return-value]


def _cuts(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError as error:
        raise InvalidInputError(f"tier cuts must be numbers like 0.2,0.5, not {text!r}", field="tiers") from error


@value_app.command("retention")
@reports_errors
def retention(
    *,
    tenure: Annotated[str, typer.Option(help="Customer attribute with the tenure in whole periods.")] = "tenure_months",
    cohort: Annotated[str, typer.Option(help="Customer attribute that splits the cohorts ('' for one).")] = "contract",
    charge: Annotated[str, typer.Option(help="Customer attribute with the charge per period ('' for none).")] = (
        "monthly_charges"
    ),
    periods_per_year: Annotated[int, typer.Option(help="Periods per year (12 for months).")] = 12,
    discount_rate: Annotated[float, typer.Option(help="Annual discount rate.")] = 0.10,
) -> None:
    """Contract retention (shifted-beta-geometric): retention curve per cohort and residual value per customer."""
    from patron.value.retention import contract_retention  # noqa: PLC0415

    report = contract_retention(
        open_store(), tenure=tenure, cohort=cohort or None, charge=charge or None,
        annual_discount_rate=discount_rate, periods_per_year=periods_per_year,
    )  # fmt: skip
    for item in report.cohorts:
        fit = "geometric limit" if item.note else f"alpha {item.alpha:.3f}, beta {item.beta:.3f}"
        curve = ", ".join(f"{share:.2%}" for share in item.retention[:6])
        console.print(
            f"{item.cohort}: {item.customers:,} customers, {item.churned:,} cancelled; sBG {fit}; retention from "
            f"period 1: {curve}; survival after {len(item.survival)}: {item.survival[-1]:.1%}; mean residual "
            f"lifetime {item.mean_residual_lifetime:.1f} payments",
            markup=False,
        )
        if item.note:
            console.print(f"  {item.note}", markup=False)
    valued = report.customers.drop_nulls("residual_value")
    if valued.height:
        total = valued["residual_value"].sum()
        console.print(f"residual value of {valued.height:,} active customers: {total:,.2f} (charge × margin × DERL)")
    for reason, count in report.left_out.items():
        console.print(f"  left out: {reason}: {count:,}")
