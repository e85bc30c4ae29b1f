"""``patron strategy``: budget allocation, customer portfolios, price sensitivity and the customer network."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from patron.cli.shared import console, open_store, reports_errors

strategy_app = typer.Typer(
    help="Strategy: budget split, customer portfolios, price sensitivity, the customer network.", no_args_is_help=True
)
network_app = typer.Typer(help="The customer-to-customer network.", no_args_is_help=False, invoke_without_command=True)
strategy_app.add_typer(network_app, name="network")


def _money(value: float, currency: str) -> str:
    from patron.cif.money import format_money, minor_exponent  # noqa: PLC0415

    return format_money(round(value * 10 ** minor_exponent(currency)), currency)


@strategy_app.command("contacts")
@reports_errors
def contacts(
    uplift_model: Annotated[str, typer.Option(help="An uplift model (patron models uplift).")],
    cost: Annotated[float, typer.Option(help="What one contact costs.")],
    budget: Annotated[float | None, typer.Option(help="The most to spend (default: every contact that pays).")] = None,
    rule: Annotated[str | None, typer.Option(help="Only this segment (the rule language).")] = None,
    value_per_response: Annotated[
        float | None, typer.Option(help="What a response is worth (default: each customer's CLV).")
    ] = None,
) -> None:
    """Whom to contact under a budget: uplift × value − cost per customer, best first, against contacting everyone."""
    from patron.strategy.contacts import contact_plan  # noqa: PLC0415

    plan = contact_plan(
        open_store(), uplift_model=uplift_model, cost=cost, budget=budget, rule=rule,
        value_per_response=value_per_response,
    )  # fmt: skip
    console.print(f"value of a response: {plan.value_basis}; one contact costs {cost:g}")
    console.print(
        f"contact {plan.contacted:,} customers for {plan.spend:,.2f}: expected incremental margin "
        f"{plan.expected_incremental:,.2f}"
    )
    console.print(
        f"contact everyone ({plan.everyone:,}) for {plan.everyone_spend:,.2f}: expected incremental margin "
        f"{plan.everyone_incremental:,.2f}"
    )


@strategy_app.command("budget")
@reports_errors
def budget(
    amount: Annotated[
        float | None, typer.Argument(help="Yearly budget to split (major units; default: the equity-maximising one).")
    ] = None,
    acquisition: Annotated[
        tuple[float, float] | None, typer.Option(help="Acquisition curve: ceiling and k (rate = c·(1 − e^(−k·spend))).")
    ] = None,
    retention: Annotated[tuple[float, float] | None, typer.Option(help="Retention curve: ceiling and k.")] = None,
    discount_rate: Annotated[float, typer.Option(help="Yearly discount rate.")] = 0.10,
) -> None:
    """The acquisition/retention split that maximises customer equity, a what-if table, and who to retain first."""
    from patron.strategy.budget import ResponseCurve  # noqa: PLC0415
    from patron.strategy.plans import budget_plan  # noqa: PLC0415

    plan = budget_plan(
        open_store(), amount, discount_rate=discount_rate,
        acquisition=ResponseCurve(*acquisition) if acquisition else None,
        retention=ResponseCurve(*retention) if retention else None,
    )  # fmt: skip
    cur, inputs = plan.currency, plan.inputs
    console.print(
        f"{inputs.prospects:,} prospects, {inputs.customers:,} customers, margin {_money(inputs.margin, cur)} per "
        f"customer and year, discount {inputs.discount_rate:.0%}"
    )
    best = plan.unconstrained
    console.print(
        f"equity is highest at a budget of {_money(best.budget, cur)}: {_money(best.acquisition_per_prospect, cur)} "
        f"per prospect, {_money(best.retention_per_customer, cur)} per customer → {_money(best.equity, cur)}"
    )
    if plan.assumed_curves:
        console.print("[yellow]response curves are assumed defaults: pass --acquisition/--retention from your data[/]")
    table = Table(title="Best split by budget (customer equity)")
    for name in ("budget", "to acquisition", "per prospect", "per customer", "acquired", "retained", "equity"):
        table.add_column(name, justify="right")
    for row in plan.table:
        table.add_row(
            _money(row.budget, cur), f"{row.acquisition_share:.0%}", _money(row.acquisition_per_prospect, cur),
            _money(row.retention_per_customer, cur), f"{row.acquisition_rate:.1%}", f"{row.retention_rate:.1%}",
            _money(row.equity, cur),
        )  # fmt: skip
    console.print(table)
    console.print("retention money first to (value at risk):")
    for customer in plan.at_risk.head(10).iter_rows(named=True):
        console.print(f"  {customer['customer_id']}: {customer['reason']}")


@strategy_app.command("portfolio")
@reports_errors
def portfolio(
    by: Annotated[str, typer.Option(help="Segment field: tier, acquisition_channel, an attribute …")] = "tier",
    risk: Annotated[
        float | None, typer.Option(help="Highest acceptable standard deviation per customer-month.")
    ] = None,
) -> None:
    """Segments as assets: mean and risk of monthly margin per customer, the efficient frontier, managers' P&L."""
    from patron.strategy.plans import portfolio_plan  # noqa: PLC0415

    plan = portfolio_plan(open_store(), by=by, risk=risk)
    table = Table(title=f"Segments by {by} over {plan.months} months (margin per customer and month)")
    for name in ("segment", "customers", "mean", "risk (sd)"):
        table.add_column(name, justify="right")
    for name, mean, sd in zip(plan.segments, plan.expected, plan.risk, strict=True):
        table.add_row(name, f"{plan.customers.get(name, 0):,}", f"{mean:,.2f}", f"{sd:,.2f}")
    console.print(table)
    frontier = Table(title="Efficient frontier (share of effort per segment)")
    for name in ("risk", "mean", *plan.segments):
        frontier.add_column(name, justify="right")
    for point in plan.frontier[:: max(1, len(plan.frontier) // 8)]:
        frontier.add_row(
            f"{point.risk:,.2f}", f"{point.expected:,.2f}", *(f"{point.weights[n]:.0%}" for n in plan.segments)
        )
    console.print(frontier)
    if plan.chosen:
        weights = ", ".join(f"{n} {w:.0%}" for n, w in plan.chosen.weights.items())
        console.print(f"at risk ≤ {risk}: mean {plan.chosen.expected:,.2f} with {weights}")
    if plan.managers.is_empty():
        console.print("no account managers yet: assign accounts.manager to see each manager's P&L")
    else:
        console.print(plan.managers.group_by("manager").agg("revenue", "margin", "clv_change").head(20))


@strategy_app.command("pricing")
@reports_errors
def pricing(by: Annotated[str, typer.Option(help="Segment field.")] = "education") -> None:
    """Deal proneness per segment (and per customer, shrunk) from the recorded deal purchases."""
    from patron.strategy.plans import price_sensitivity  # noqa: PLC0415

    customers, segments = price_sensitivity(open_store(), by=by)
    table = Table(title=f"Share of purchases made on a deal, by {by} (95 % interval)")
    for name in ("segment", "customers", "deal share", "interval"):
        table.add_column(name, justify="right")
    for row in segments.iter_rows(named=True):
        table.add_row(
            row["segment"], f"{row['customers']:,}", f"{row['deal_share']:.1%}", f"{row['low']:.1%}–{row['high']:.1%}"
        )
    console.print(table)
    prone = customers.sort("shrunk_share", descending=True).head(5)
    console.print("most deal-prone customers (shrunk share, raw share, purchases):")
    for row in prone.iter_rows(named=True):
        console.print(
            f"  {row['customer_id']}: {row['shrunk_share']:.0%} ({row['raw_share']:.0%} of {row['purchases']:.0f})"
        )


@strategy_app.command("elasticity")
@reports_errors
def elasticity(
    by: Annotated[str, typer.Option(help="Segments: tier, country or all.")] = "tier",
    source: Annotated[str | None, typer.Option(help="Order source (default: the largest).")] = None,
) -> None:
    """Price elasticity of quantity per segment from order lines (list price over time, product and week effects)."""
    from patron.strategy.plans import price_elasticity  # noqa: PLC0415

    scope, found, customers = price_elasticity(open_store(), by=by, source=source)
    table = Table(title=f"Price elasticity of quantity in {scope}, by {by} (95 % interval, clustered by product)")
    for name in ("segment", "elasticity", "interval", "purchases", "products", "customers"):
        table.add_column(name, justify="right")
    for item in sorted(found, key=lambda item: -item.lines):
        table.add_row(
            item.segment, f"{item.elasticity:.2f}", f"{item.low:.2f} to {item.high:.2f}", f"{item.lines:,}",
            f"{item.products:,}", f"{item.customers:,}",
        )  # fmt: skip
    console.print(table)
    console.print(f"{customers.height:,} customers with their own estimate, shrunk towards their segment's")


@network_app.callback()
@reports_errors
def network(ctx: typer.Context) -> None:
    """Communities, value assortativity, influencers and high-value clusters of the customer network."""
    from patron.strategy.plans import network_summary  # noqa: PLC0415

    if ctx.invoked_subcommand:
        return
    summary = network_summary(open_store())
    if summary.links == 0:
        console.print("no customer links yet: `patron strategy network import links.csv` (or `… demo-links`)")
        return
    console.print(
        f"{summary.customers:,} customers, {summary.links:,} links ({summary.sources}), "
        f"{summary.communities:,} communities"
    )
    if summary.assortativity is not None:
        console.print(f"value assortativity {summary.assortativity:+.3f} ({summary.assortativity_note})")
    console.print(summary.clusters.drop("members").head(10))
    console.print(summary.influencers.select("customer_id", "reach", "engagement", "sentiment", "score").head(10))


@network_app.command("import")
@reports_errors
def network_import(
    file: Annotated[Path, typer.Argument(help="CSV with columns from, to, kind[, weight].")],
    source: Annotated[str, typer.Option(help="Where the links come from.")] = "import",
) -> None:
    """Import customer links; bad rows are reported with their line, a re-run adds nothing twice."""
    from patron.strategy.network import import_links  # noqa: PLC0415

    result = import_links(open_store(), file, source=source)
    console.print(
        f"{result.created:,} links added, {result.duplicates:,} already there, {len(result.rejected):,} rejected"
    )
    for line, reason in result.rejected[:10]:
        console.print(f"  line {line}: {reason}")


@network_app.command("demo-links")
@reports_errors
def network_demo_links() -> None:
    """Add SYNTHETIC referral links among demo customers (no shared data set records who knows whom)."""
    from patron.strategy.network import synthetic_demo_links  # noqa: PLC0415

    created, existing = synthetic_demo_links(open_store())
    console.print(f"{created:,} synthetic links added ({existing:,} already there), source demo-synthetic")
