"""Strategy pages: the budget split, customer portfolios, price sensitivity and the customer network, each with
its plot. They call the same plans as the CLI and the API (patron.strategy.plans)."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from plotly.subplots import make_subplots
from sqlalchemy import Engine

from patron.auth.portfolio import portfolio_ids, visible_frame
from patron.auth.service import Principal
from patron.cif.facts import scope_choices
from patron.cif.view import with_keys
from patron.errors import PatronError
from patron.http.common import FragmentViewer, Viewer, engine_of
from patron.predict.models import list_models
from patron.strategy.budget import customer_equity
from patron.strategy.contacts import ContactPlan, contact_plan
from patron.strategy.plans import (
    ELASTICITY_SEGMENTS,
    BudgetPlan,
    NetworkSummary,
    PortfolioPlan,
    budget_plan,
    network_summary,
    portfolio_plan,
    price_elasticity,
    price_sensitivity,
)
from patron.web.render import figure_html, fragment, histogram_bars, page, problem_fragment, shows_computing

router = APIRouter(include_in_schema=False)


def _guarded(request: Request, principal: Principal, template: str, build: Any, **context: Any) -> Response:
    """The role check and the analysis; a domain error becomes the page's own empty state."""
    if not principal.can("read_strategy"):
        refused = "Your role does not include strategy analytics."
        return page(request, template, principal, status_code=403, problem=refused, **context)
    try:
        return page(request, template, principal, problem=None, **build(), **context)
    except PatronError as error:
        return page(request, template, principal, problem=error.message, **context)


@router.get("/strategy", response_model=None)
@router.get("/strategy/budget", response_model=None)
@shows_computing
def budget(
    request: Request,
    principal: Viewer,
    amount: Annotated[float | None, Query(ge=0, le=1e12)] = None,
    source: SourceQuery = None,
) -> Response:
    engine = engine_of(request)
    picked = _picked_source(engine, source)

    def build() -> dict[str, Any]:
        plan = budget_plan(engine, amount, source=picked["scope"].source if picked["scope"] else None)
        at_risk = with_keys(engine, visible_frame(engine, principal, plan.at_risk).head(15).to_dicts())
        return {"plan": plan, "chart": figure_html(_budget_figure(plan)), "at_risk": at_risk}

    return _guarded(request, principal, "strategy_budget.html", build, amount=amount, **picked,
                    picker_action="/strategy/budget", keep={"amount": amount})  # fmt: skip


SourceQuery = Annotated[str | None, Query(max_length=64)]


def _picked_source(engine: Engine, source: str | None) -> dict[str, Any]:
    """The picker's context: the order sources and the one shown."""
    sources, scope = scope_choices(engine, source)
    return {"sources": sources, "scope": scope}


def _budget_figure(plan: BudgetPlan) -> go.Figure:
    inputs, best = plan.inputs, plan.best
    titles = (
        "Acquisition rate by spend per prospect",
        "Retention rate by spend per customer",
        f"Customer equity by split of {best.budget:,.0f}",
    )
    figure = make_subplots(rows=1, cols=3, subplot_titles=titles)
    top = max(best.acquisition_per_prospect, best.retention_per_customer, inputs.margin) * 2
    spend = np.linspace(0, top, 100)
    figure.add_scatter(x=spend, y=inputs.acquisition.rate(spend), name="acquisition", row=1, col=1)
    figure.add_scatter(x=spend, y=inputs.retention.rate(spend), name="retention", row=1, col=2)
    shares = np.linspace(0, 1, 101)
    equity = [
        customer_equity(
            inputs, s * best.budget / max(inputs.prospects, 1), (1 - s) * best.budget / max(inputs.customers, 1)
        )
        for s in shares
    ]
    figure.add_scatter(x=shares, y=equity, name="equity", row=1, col=3)
    figure.add_scatter(
        x=[best.acquisition_share],
        y=[best.equity],
        mode="markers",
        marker={"size": 12},
        name="best split",
        row=1,
        col=3,
    )
    figure.update_xaxes(title_text="share to acquisition", row=1, col=3)
    return figure.update_layout(showlegend=False)


@router.get("/strategy/portfolio", response_model=None)
@shows_computing
def portfolio(
    request: Request, principal: Viewer, by: Annotated[str, Query(max_length=100)] = "tier", source: SourceQuery = None
) -> Response:
    engine = engine_of(request)
    picked = _picked_source(engine, source)

    def build() -> dict[str, Any]:
        plan = portfolio_plan(engine, by=by, source=picked["scope"].source if picked["scope"] else None)
        return {"plan": plan, "chart": figure_html(_frontier_figure(plan))}

    return _guarded(request, principal, "strategy_portfolio.html", build, by=by, **picked,
                    picker_action="/strategy/portfolio", keep={"by": by})  # fmt: skip


def _frontier_figure(plan: PortfolioPlan) -> go.Figure:
    figure = go.Figure()
    figure.add_scatter(
        x=[p.risk for p in plan.frontier], y=[p.expected for p in plan.frontier], mode="lines+markers",
        name="efficient frontier",
        text=[", ".join(f"{n} {w:.0%}" for n, w in p.weights.items()) for p in plan.frontier],
    )  # fmt: skip
    figure.add_scatter(x=plan.risk, y=plan.expected, mode="markers+text", text=plan.segments, name="segments",
                       textposition="top center", marker={"size": 12})  # fmt: skip
    return figure.update_layout(
        title="Efficient frontier: monthly margin per customer against its risk",
        xaxis_title="risk (standard deviation per month)", yaxis_title="mean margin per customer and month",
    )  # fmt: skip


@router.get("/strategy/pricing", response_model=None)
@shows_computing
def pricing(request: Request, principal: Viewer, by: Annotated[str, Query(max_length=100)] = "education") -> Response:
    def build() -> dict[str, Any]:
        customers, segments = price_sensitivity(engine_of(request), by=by)
        figure = make_subplots(rows=1, cols=2, subplot_titles=("Deal share by segment (95 % interval)",
                                                               "Customers' deal share: raw and shrunk"))  # fmt: skip
        figure.add_bar(
            x=segments["segment"].to_list(), y=segments["deal_share"].to_list(), name="deal share",
            error_y={"type": "data", "symmetric": False,
                     "array": (segments["high"] - segments["deal_share"]).to_list(),
                     "arrayminus": (segments["deal_share"] - segments["low"]).to_list()},
            row=1, col=1,
        )  # fmt: skip
        for column, name in (("raw_share", "raw"), ("shrunk_share", "shrunk")):
            figure.add_trace(histogram_bars(customers[column], name=name, opacity=0.6), row=1, col=2)
        figure.update_layout(barmode="overlay")
        visible = visible_frame(engine_of(request), principal, customers)
        prone = with_keys(engine_of(request), visible.sort("shrunk_share", descending=True).head(20).to_dicts())
        return {"segments": segments.to_dicts(), "prone": prone, "chart": figure_html(figure)}

    return _guarded(request, principal, "strategy_pricing.html", build, by=by)


@router.get("/strategy/elasticity", response_model=None)
def elasticity(
    request: Request, principal: Viewer, by: Annotated[str, Query(max_length=16)] = "tier", source: SourceQuery = None
) -> Response:
    """The page at once; the estimate (seconds on a big shop) arrives as a fragment, with a sign that it is coming."""
    chosen = by if by in ELASTICITY_SEGMENTS else "tier"
    picked = _picked_source(engine_of(request), source)
    return _guarded(request, principal, "strategy_elasticity.html", dict, by=chosen, choices=ELASTICITY_SEGMENTS,
                    **picked, picker_action="/strategy/elasticity", keep={"by": chosen})  # fmt: skip


@router.get("/strategy/elasticity/panel", response_model=None)
def elasticity_panel(
    request: Request, principal: FragmentViewer, by: Annotated[str, Query(max_length=16)] = "tier",
    source: SourceQuery = None,
) -> Response:  # fmt: skip
    if not principal.can("read_strategy"):
        return problem_fragment(request, "Your role does not include strategy analytics.", 403)
    try:
        scope, found, customers = price_elasticity(engine_of(request), by=by, source=source)
    except PatronError as error:
        return fragment(request, "_elasticity.html", problem=error.message)
    found = sorted(found, key=lambda item: -item.lines)
    figure = go.Figure(
        go.Bar(
            x=[item.segment for item in found],
            y=[item.elasticity for item in found],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [item.high - item.elasticity for item in found],
                "arrayminus": [item.elasticity - item.low for item in found],
            },
        )
    ).update_layout(title=f"Price elasticity of quantity by {by} (95 % interval)", yaxis_title="elasticity")
    spread = customers.select(pl.col("shrunk").quantile(0.1).alias("p10"), pl.col("shrunk").quantile(0.9).alias("p90"))
    return fragment(
        request, "_elasticity.html", problem=None, scope=scope, segments=found, chart=figure_html(figure),
        customers=customers.height, spread=spread.row(0, named=True),
    )  # fmt: skip


@router.get("/strategy/contacts", response_model=None)
def contacts(
    request: Request,
    principal: Viewer,
    *,
    model: Annotated[str | None, Query(max_length=100)] = None,
    cost: Annotated[float, Query(ge=0, le=1e6)] = 0.5,
    budget: Annotated[float | None, Query(ge=0, le=1e12)] = None,
    value: Annotated[float | None, Query(ge=0, le=1e9)] = None,
) -> Response:
    """Whom to contact under a budget: uplift × value − cost per customer, against contacting everyone."""
    engine = engine_of(request)
    allowed = principal.can("read_strategy")
    models = [row["name"] for row in list_models(engine) if row["kind"] == "uplift"] if allowed else []
    chosen = model if model in models else (models[0] if models else None)

    def build() -> dict[str, Any]:
        if chosen is None:
            return {"plan": None, "chart": None}
        plan = contact_plan(engine, uplift_model=chosen, cost=cost, budget=budget, value_per_response=value)
        return {"plan": plan, "chart": figure_html(_contacts_figure(plan))}

    return _guarded(request, principal, "strategy_contacts.html", build, models=list(dict.fromkeys(models)),
                    model=chosen, cost=cost, budget=budget, value=value)  # fmt: skip


def _contacts_figure(plan: ContactPlan) -> go.Figure:
    """The expected incremental margin as more customers are contacted, best first: it rises while uplift pays for
    the contact and falls after; the budget's point and contacting everyone are marked."""
    ranked = plan.customers.sort("incremental", descending=True)
    gained = ranked["incremental"].cum_sum().to_numpy()
    step = max(1, len(gained) // 2000)  # a curve of at most ~2,000 points is enough for the eye
    contacted = np.arange(1, len(gained) + 1)[::step]
    figure = go.Figure()
    figure.add_scatter(x=contacted, y=gained[::step], mode="lines", name="best first")
    figure.add_scatter(x=[plan.contacted], y=[plan.expected_incremental], mode="markers", name="the plan",
                       marker={"size": 12, "color": "#2b6cb0"})  # fmt: skip
    figure.add_scatter(x=[plan.everyone], y=[plan.everyone_incremental], mode="markers", name="everyone",
                       marker={"size": 12, "color": "#c53030"})  # fmt: skip
    return figure.update_layout(
        title="Expected incremental margin by customers contacted",
        xaxis_title="customers contacted, best first",
        yaxis_title="expected incremental margin",
    )


@router.get("/strategy/network", response_model=None)
@shows_computing
def network(request: Request, principal: Viewer) -> Response:
    def build() -> dict[str, Any]:
        visible = portfolio_ids(engine_of(request), principal)
        summary = network_summary(engine_of(request), visible=visible)
        drawn = figure_html(_network_figure(summary, visible)) if summary.layout else None
        return {"summary": summary, "chart": drawn, "clusters": summary.clusters.to_dicts(),
                "influencers": with_keys(engine_of(request), summary.influencers.head(15).to_dicts())}  # fmt: skip

    return _guarded(request, principal, "strategy_network.html", build)


def _network_figure(summary: NetworkSummary, visible: set[int] | None) -> go.Figure:
    nodes = summary.layout["nodes"]
    where = {node["id"]: (node["x"], node["y"]) for node in nodes}
    xs: list[float | None] = []
    ys: list[float | None] = []
    for first, second in summary.layout["edges"]:
        xs += [where[first][0], where[second][0], None]
        ys += [where[first][1], where[second][1], None]
    figure = go.Figure()
    figure.add_scatter(x=xs, y=ys, mode="lines", line={"width": 0.5, "color": "#bbb"}, hoverinfo="skip", name="links")
    figure.add_scatter(
        x=[n["x"] for n in nodes], y=[n["y"] for n in nodes], mode="markers", name="customers",
        marker={"color": [n["community"] for n in nodes], "colorscale": "Turbo",
                "size": [6 + min(14, (n["value"] or 0) / 20) for n in nodes]},
        text=[f"{_node_name(n['id'], visible)}, community {n['community'] + 1}, CLV {n['value'] or 0:,.0f}"
              for n in nodes],
    )  # fmt: skip
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure.update_layout(title="The largest communities (colour) and customer value (size)", showlegend=False)


def _node_name(customer_id: int, visible: set[int] | None) -> str:
    """A point names its customer only to those who may see them (a manager: their portfolio's)."""
    return f"customer {customer_id}" if visible is None or customer_id in visible else "a customer"
