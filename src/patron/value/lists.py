"""Differentiation lists: who to look after, win back, grow, or stop spending on, each with a short reason.

Every list is a pure function of the customer-base frame (:func:`patron.value.base.customer_base`), so the CLI,
the API and the pages show the same customers for the same date. Value means the latest CLV when a score run
exists, otherwise historical revenue; the list's note says which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from patron.cif.formats import percent
from patron.errors import InvalidInputError
from patron.settings import get_settings
from patron.value.list_names import LIST_NAMES


@dataclass(frozen=True)
class ValueList:
    name: str
    title: str
    rows: pl.DataFrame  # customer_id, name, the figures that matter, reason
    note: str = ""


def _value(frame: pl.DataFrame) -> tuple[pl.Expr, str]:
    if frame["clv"].null_count() < frame.height:
        return pl.col("clv").fill_null(0.0), "CLV"
    return pl.col("revenue"), "revenue to date"


def _money(expr: pl.Expr) -> pl.Expr:
    return pl.format("{}", expr.round(2))


def _share_rank(value: pl.Expr) -> pl.Expr:
    """0 for the most valuable customer up to just under 1 for the least."""
    return (value.rank(method="ordinal", descending=True) - 1) / pl.len()


def check_tier_cuts(cuts: tuple[float, ...], field: str = "cuts") -> None:
    if not cuts or any(not 0 < c < 1 for c in cuts) or list(cuts) != sorted(set(cuts)):
        raise InvalidInputError("tier cuts must be increasing shares between 0 and 1, e.g. 0.2,0.5", field=field)


def tier_letters(share: pl.Expr, cuts: tuple[float, ...]) -> pl.Expr:
    """A for a share of customers (0 = most valuable) below the first cut, B below the second, …"""
    tier = pl.lit(chr(ord("A") + len(cuts)))
    for index, cut in reversed(list(enumerate(cuts))):
        tier = pl.when(share < cut).then(pl.lit(chr(ord("A") + index))).otherwise(tier)
    return tier


def tiers(frame: pl.DataFrame, cuts: tuple[float, ...] = (0.2, 0.5)) -> ValueList:
    """A/B/C… tiers by value: by default A = top 20 %, B = next 30 %, C = the rest."""
    check_tier_cuts(cuts)
    value, label = _value(frame)
    share = _share_rank(value)
    tier = tier_letters(share, cuts)
    bounds = [0.0, *cuts, 1.0]
    described = {
        chr(ord("A") + i): f"top {bounds[i] * 100:g}–{bounds[i + 1] * 100:g} % by {label}"
        for i in range(len(bounds) - 1)
    }
    rows = (
        frame.with_columns(value.alias("value"), tier.alias("tier"), (share * 100).alias("percentile"))
        .with_columns(
            pl.format(
                "{} {}; {}", pl.lit(label), _money(pl.col("value")), pl.col("tier").replace_strict(described)
            ).alias("reason")
        )
        .sort("value", descending=True)
        .select("customer_id", "name", "tier", "value", "reason")
    )
    return ValueList(
        "tiers", "Customer tiers by value", rows, f"value = {label}; cuts at {', '.join(f'{c:g}' for c in cuts)}"
    )


def top_customers(frame: pl.DataFrame, share: float = 0.25) -> ValueList:
    """The most valuable ``share`` of customers."""
    value, label = _value(frame)
    rows = (
        frame.with_columns(value.alias("value"), _share_rank(value).alias("share"))
        .filter(pl.col("share") < share)
        .sort("value", descending=True)
        .with_columns(
            pl.format(
                "{} {}, in the top {} %", pl.lit(label), _money(pl.col("value")), pl.lit(f"{share * 100:g}")
            ).alias("reason")
        )
        .select("customer_id", "name", "value", "revenue", "last_order", "reason")
    )
    return ValueList("top", f"Top {share * 100:g} % of customers", rows, f"value = {label}")


def bottom_customers(frame: pl.DataFrame, share: float = 0.2, *, idle_days: int = 365) -> ValueList:
    """The bottom ``share`` by simple rules: idle for over a year, one purchase only, negative margin, low spend."""
    rules = [
        (
            pl.col("days_since_last_order") > idle_days,
            pl.format("no order for {} days", pl.col("days_since_last_order")),
        ),
        (pl.col("purchase_days") == 1, pl.lit("bought once")),
        (pl.col("margin").fill_null(0) < 0, pl.format("margin {}", _money(pl.col("margin")))),
        (pl.col("revenue_last_year") <= 0, pl.lit("nothing bought in the last year")),
    ]
    # Order of badness: idle and unprofitable first, then the least spent in the last year and overall.
    ranked = frame.with_columns(
        pl.sum_horizontal([rule.cast(pl.Int32) for rule, _ in rules]).alias("rules_met"),
        pl.concat_list([pl.when(rule).then(text) for rule, text in rules])
        .list.drop_nulls()
        .list.join("; ")
        .alias("reason"),
    ).sort(["rules_met", "revenue_last_year", "revenue"], descending=[True, False, False])
    count = int(frame.height * share)
    rows = (
        ranked.head(count)
        .filter(pl.col("rules_met") > 0)
        .select("customer_id", "name", "revenue", "revenue_last_year", "days_since_last_order", "reason")
    )
    return ValueList(
        "bottom", f"Bottom {share * 100:g} % by simple rules", rows, f"customers idle over {idle_days} days rank lowest"
    )


@dataclass(frozen=True)
class ParetoCurve:
    points: pl.DataFrame  # customer_share, value_share (cumulative, most valuable first)
    measure: str

    def share_of_value(self, customer_share: float) -> float:
        """The share of the measure given by the top ``customer_share`` of customers."""
        reached = self.points.filter(pl.col("customer_share") <= customer_share + 1e-12)
        return float(reached["value_share"].max() or 0.0)  # type: ignore[arg-type]

    def statement(self, customer_share: float = 0.2) -> str:
        return (
            f"the top {percent(customer_share)} of customers give "
            f"{percent(self.share_of_value(customer_share), '.1f')} of {self.measure}"
        )


def pareto_curve(frame: pl.DataFrame, measure: str = "revenue") -> ParetoCurve:
    """Cumulative share of ``measure`` (revenue, margin or clv) against the share of customers."""
    if measure not in ("revenue", "margin", "clv") or measure not in frame.columns:
        raise InvalidInputError(
            f"cannot draw a Pareto curve of {measure!r}; use revenue, margin or clv", field="measure"
        )
    values = frame.select(pl.col(measure).fill_null(0.0)).sort(measure, descending=True)[measure]
    total = float(values.sum())
    if frame.height == 0 or total == 0:
        raise InvalidInputError(f"there is no {measure} to divide among customers")
    points = pl.DataFrame(
        {
            "customer_share": pl.int_range(1, frame.height + 1, eager=True) / frame.height,
            "value_share": values.cum_sum() / total,
        }
    )
    return ParetoCurve(pl.concat([pl.DataFrame({"customer_share": [0.0], "value_share": [0.0]}), points]), measure)


def costly_customers(
    frame: pl.DataFrame, *, cost_per_interaction: float = 0.0, margin_rate: float | None = None
) -> ValueList:
    """Customers whose margin does not cover what serving them costs (interactions × cost per interaction)."""
    margin_rate = get_settings().default_margin_rate if margin_rate is None else margin_rate
    known = pl.col("margin").is_not_null()
    margin = pl.when(known).then(pl.col("margin")).otherwise(pl.col("revenue") * margin_rate)
    rows = (
        frame.with_columns(
            margin.alias("estimated_margin"), (pl.col("interactions") * cost_per_interaction).alias("cost_to_serve")
        )
        .with_columns((pl.col("estimated_margin") - pl.col("cost_to_serve")).alias("net_margin"))
        .filter(pl.col("net_margin") < 0)
        .sort("net_margin")
        .with_columns(
            pl.format(
                "margin {}{} minus cost to serve {} ({} interactions) = {}",
                _money(pl.col("estimated_margin")),
                pl.when(known).then(pl.lit("")).otherwise(pl.lit(f" (est. at {percent(margin_rate)})")),
                _money(pl.col("cost_to_serve")),
                pl.col("interactions"),
                _money(pl.col("net_margin")),
            ).alias("reason")
        )
        .select("customer_id", "name", "revenue", "estimated_margin", "cost_to_serve", "net_margin", "reason")
    )
    return ValueList(
        "costly",
        "Customers who cost money",
        rows,
        f"cost per interaction {cost_per_interaction:g}; unknown margins at {margin_rate:.0%}",
    )


def declining_customers(frame: pl.DataFrame, *, large_share: float = 0.2, ratio: float = 0.5) -> ValueList:
    """Last year's large customers (top ``large_share`` by the year before's spend) now spending ≤ ``ratio`` of it."""
    large = _share_rank(pl.col("revenue_year_before")) < large_share
    rows = (
        frame.filter(large.alias("large") & (pl.col("revenue_year_before") > 0))
        .filter(pl.col("revenue_last_year") <= ratio * pl.col("revenue_year_before"))
        .with_columns((pl.col("revenue_last_year") / pl.col("revenue_year_before")).alias("ratio"))
        .sort("revenue_year_before", descending=True)
        .with_columns(
            pl.format(
                "spent {} in the last 12 months against {} the 12 before ({} %)",
                _money(pl.col("revenue_last_year")),
                _money(pl.col("revenue_year_before")),
                (pl.col("ratio") * 100).round(0),
            ).alias("reason")
        )
        .select("customer_id", "name", "revenue_year_before", "revenue_last_year", "ratio", "reason")
    )
    return ValueList("declining", "Large customers now buying half as much or less", rows)


def lost_valuable(
    frame: pl.DataFrame, *, valuable_share: float = 0.2, idle_days: int = 365, window_days: int = 730
) -> ValueList:
    """Win-back list: valuable customers (top ``valuable_share`` by revenue) whose last order was 1–2 years ago."""
    valuable = _share_rank(pl.col("revenue")) < valuable_share
    idle = pl.col("days_since_last_order")
    rows = (
        frame.filter(valuable & (idle > idle_days) & (idle <= window_days))
        .sort("revenue", descending=True)
        .with_columns(
            pl.format(
                "spent {} in all; last order {} days ago{}",
                _money(pl.col("revenue")),
                idle,
                pl.when(pl.col("p_alive").is_not_null())
                .then(pl.format("; P(alive) {}", pl.col("p_alive").round(2)))
                .otherwise(pl.lit("")),
            ).alias("reason")
        )
        .select("customer_id", "name", "revenue", "last_order", "days_since_last_order", "reason")
    )
    return ValueList("lost", "Valuable customers lost in the last two years (win-back)", rows)


def wallet_gaps(frame: pl.DataFrame, *, max_categories: int = 2, valuable_share: float = 0.5) -> ValueList:
    """Valuable customers who buy from only one or two of the categories on offer: room to grow share of wallet."""
    offered = sorted({c for cats in frame["categories"].to_list() for c in cats})
    if len(offered) <= max_categories:
        empty = (
            frame.head(0)
            .select("customer_id", "name", "revenue", "categories")
            .with_columns(pl.lit("").alias("reason"))
        )
        return ValueList(
            "wallet-gap",
            "Share-of-wallet gaps",
            empty,
            f"the orders carry {len(offered)} category(ies): map product categories in the import to find gaps",
        )
    value, _label = _value(frame)
    rows = (
        frame.filter((_share_rank(value) < valuable_share) & pl.col("category_count").is_between(1, max_categories))
        .sort("revenue", descending=True)
        .with_columns(
            pl.format(
                "buys only {} of {} categories; never {}",
                pl.col("categories").list.join(", "),
                pl.lit(len(offered)),
                pl.lit(offered).list.set_difference(pl.col("categories")).list.sort().list.join(", "),
            ).alias("reason")
        )
        .select("customer_id", "name", "revenue", "categories", "reason")
    )
    return ValueList("wallet-gap", "Share-of-wallet gaps", rows, f"{len(offered)} categories on offer")


def valuable_complainers(frame: pl.DataFrame, *, min_complaints: int = 2, valuable_share: float = 0.5) -> ValueList:
    """Valuable customers who complained more than once in the last year."""
    value, label = _value(frame)
    rows = (
        frame.filter((_share_rank(value) < valuable_share) & (pl.col("complaints_last_year") >= min_complaints))
        .with_columns(value.alias("value"))
        .sort(["complaints_last_year", "value"], descending=True)
        .with_columns(
            pl.format(
                "{} complaints in the last year; {} {}",
                pl.col("complaints_last_year"),
                pl.lit(label),
                _money(pl.col("value")),
            ).alias("reason")
        )
        .select("customer_id", "name", "value", "complaints_last_year", "reason")
    )
    return ValueList("complainers", "Valuable customers who complained more than once in the last year", rows)


def value_at_risk(frame: pl.DataFrame) -> ValueList:
    """CLV × (1 − P(alive)): where retention money does the most good. Needs a score run."""
    if frame["value_at_risk"].null_count() == frame.height:
        raise InvalidInputError("value at risk needs lifetime values: run `patron value score` first", field="run")
    rows = (
        frame.filter(pl.col("value_at_risk") > 0)
        .sort("value_at_risk", descending=True)
        .with_columns(
            pl.format(
                "CLV {} × (1 − P(alive) {}) = {}",
                _money(pl.col("clv")),
                pl.col("p_alive").round(2),
                _money(pl.col("value_at_risk")),
            ).alias("reason")
        )
        .select("customer_id", "name", "clv", "p_alive", "value_at_risk", "tier", "reason")
    )
    return ValueList("at-risk", "Value at risk", rows, "rank for the retention budget")


LISTS: dict[str, Callable[[pl.DataFrame], ValueList]] = {
    "tiers": tiers,
    "top": top_customers,
    "bottom": bottom_customers,
    "costly": costly_customers,
    "declining": declining_customers,
    "lost": lost_valuable,
    "wallet-gap": wallet_gaps,
    "complainers": valuable_complainers,
    "at-risk": value_at_risk,
}
assert tuple(LISTS) == LIST_NAMES  # the light list of names (value/list_names.py) names exactly these
