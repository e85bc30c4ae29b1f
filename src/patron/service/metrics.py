"""Service metrics per day: complaints received, first-contact resolution, cycle time, backlog (table and plot).

First-contact resolution (FCR): a complaint received that day that is resolved, took one customer contact and was
not reopened within ``reopen_days`` of its resolution (or at all, when the resolution time is unknown).
The FCR ratio of a day is FCR complaints / complaints received that day.
"""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots
from sqlalchemy import Engine, select

from patron.cif.columns import table_of
from patron.errors import InvalidInputError
from patron.service.schema import Case

CASES = table_of(Case)


def _cases(engine: Engine, kind: str | None) -> pl.DataFrame:
    query = select(
        CASES.c.id, CASES.c.kind, CASES.c.status, CASES.c.opened_at, CASES.c.resolved_at, CASES.c.contacts,
        CASES.c.reopened, CASES.c.last_reopened_at,
    )  # fmt: skip
    if kind is not None:
        query = query.where(CASES.c.kind == kind)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    at = pl.Datetime("us")
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "id": pl.Int64, "kind": pl.String, "status": pl.String, "opened_at": at, "resolved_at": at,
        "contacts": pl.Int64, "reopened": pl.Int64, "last_reopened_at": at,
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


def daily_service_metrics(engine: Engine, *, kind: str | None = "complaint", reopen_days: int = 7) -> pl.DataFrame:
    """day, received, resolved_first_contact, fcr_ratio, resolved, median_cycle_hours, backlog (open at day end)."""
    cases = _cases(engine, kind)
    if cases.height == 0:
        raise InvalidInputError("there are no cases yet: open one, or turn imported complaints into cases")
    resolved = pl.col("status").is_in(["resolved", "closed"])
    reopened_late = pl.col("last_reopened_at").is_not_null() & (
        pl.col("last_reopened_at") - pl.col("resolved_at") > pl.duration(days=reopen_days)
    )
    first_contact = (
        pl.col("status").is_in(["resolved", "closed"])
        & (pl.col("contacts") == 1)
        & ((pl.col("reopened") == 0) | reopened_late)
    )
    cases = cases.with_columns(
        pl.col("opened_at").dt.date().alias("day"),
        first_contact.alias("first_contact"),
        ((pl.col("resolved_at") - pl.col("opened_at")).dt.total_minutes() / 60).alias("cycle_hours"),
    )
    received = cases.group_by("day").agg(
        pl.len().alias("received"), pl.col("first_contact").sum().cast(pl.Int64).alias("resolved_first_contact")
    )
    closed = (
        cases.filter(resolved & pl.col("resolved_at").is_not_null())
        .group_by(pl.col("resolved_at").dt.date().alias("day"))
        .agg(pl.len().alias("resolved"), pl.col("cycle_hours").median().alias("median_cycle_hours"))
    )
    first = cases["day"].min()
    last = max(cases["day"].max(), closed["day"].max() or cases["day"].max())  # type: ignore[type-var]
    assert isinstance(first, dt.date)
    assert isinstance(last, dt.date)
    days = pl.DataFrame({"day": pl.date_range(first, last, eager=True)})
    # Backlog at the end of a day = cases opened so far − cases resolved so far (cumulative counts, no cross join).
    # Cases resolved at an unknown time (imported) are left out of it: when they left the backlog is not known.
    opened_per_day = (
        cases.filter(~resolved | pl.col("resolved_at").is_not_null()).group_by("day").agg(pl.len().alias("opened"))
    )
    resolved_per_day = (
        cases.filter(pl.col("resolved_at").is_not_null())
        .group_by(pl.col("resolved_at").dt.date().alias("day"))
        .agg(pl.len().alias("closed"))
    )
    backlog = (
        days.join(opened_per_day, on="day", how="left")
        .join(resolved_per_day, on="day", how="left")
        .with_columns(pl.col("opened", "closed").fill_null(0))
        .select("day", (pl.col("opened").cum_sum() - pl.col("closed").cum_sum()).alias("backlog"))
    )
    return (
        days.join(received, on="day", how="left")
        .join(closed, on="day", how="left")
        .join(backlog, on="day", how="left")
        .with_columns(pl.col("received", "resolved_first_contact", "resolved", "backlog").fill_null(0))
        .with_columns(
            pl.when(pl.col("received") > 0)
            .then(pl.col("resolved_first_contact") / pl.col("received"))
            .alias("fcr_ratio")
        )
        .select("day", "received", "resolved_first_contact", "fcr_ratio", "resolved", "median_cycle_hours", "backlog")
        .sort("day")
    )


def service_figure(metrics: pl.DataFrame) -> go.Figure:
    """Complaints received per day (bars) with the first-contact-resolution ratio (line) and the backlog."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    days = metrics["day"].to_list()
    figure.add_bar(x=days, y=metrics["received"].to_list(), name="complaints received")
    figure.add_scatter(x=days, y=metrics["backlog"].to_list(), name="backlog (open at day end)", mode="lines")
    figure.add_scatter(
        x=days,
        y=metrics["fcr_ratio"].to_list(),
        name="first-contact resolution",
        mode="lines+markers",
        secondary_y=True,
    )
    most = max([*metrics["received"].to_list(), *metrics["backlog"].to_list(), 0])
    figure.update_yaxes(title_text="cases", dtick=1 if most <= 10 else None, secondary_y=False)  # whole cases
    figure.update_yaxes(title_text="FCR ratio", range=[0, 1], tickformat=".0%", secondary_y=True)
    # Whole days on the axis: with one or two days of cases Plotly would otherwise tick fractions of a millisecond.
    figure.update_xaxes(type="date", tickformat="%b %d", dtick=86_400_000.0, tick0=days[0] if days else None)
    figure.update_layout(title="Complaints per handling day and first-contact resolution")
    return figure
