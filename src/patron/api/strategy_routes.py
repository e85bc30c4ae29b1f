"""Strategy analytics over the API: budget split, portfolios, price sensitivity, the customer network."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from patron.api.schemas import BudgetPlan, Elasticity, LinksAdded, Network, PortfolioPlan, Pricing, SegmentElasticityOut
from patron.auth.access import masked_names
from patron.auth.portfolio import customer_resolver, portfolio_ids, visible_frame
from patron.http.common import ManageSegments, ReadStrategy, ShortText, Store
from patron.strategy.budget import ResponseCurve
from patron.strategy.network import add_link_records
from patron.strategy.plans import budget_plan, network_summary, portfolio_plan, price_elasticity, price_sensitivity

router = APIRouter(prefix="/api/strategy", tags=["strategy"])
FieldName = Annotated[str, Query(min_length=1, max_length=100)]
Ceiling = Annotated[float | None, Query(gt=0, le=1)]
Steepness = Annotated[float | None, Query(gt=0, le=1000)]


@router.get("/budget")
def budget(
    *,
    store: Store,
    principal: ReadStrategy,
    amount: Annotated[float | None, Query(ge=0, le=1e12, description="yearly budget (default: the best)")] = None,
    acquisition_ceiling: Ceiling = None,
    acquisition_k: Steepness = None,
    retention_ceiling: Ceiling = None,
    retention_k: Steepness = None,
    discount_rate: Annotated[float, Query(ge=0, lt=1)] = 0.10,
) -> BudgetPlan:
    """The acquisition/retention split that maximises customer equity, a what-if table, who to retain first."""
    acquisition = _curve(acquisition_ceiling, acquisition_k)
    retention = _curve(retention_ceiling, retention_k)
    plan = budget_plan(store, amount, acquisition=acquisition, retention=retention, discount_rate=discount_rate)
    at_risk = masked_names(principal, visible_frame(store, principal, plan.at_risk).head(20).to_dicts())
    inputs = asdict(plan.inputs)
    return BudgetPlan(
        currency=plan.currency, inputs=inputs, assumed_curves=plan.assumed_curves, best=asdict(plan.best),
        equity_maximising=asdict(plan.unconstrained), what_if=[asdict(row) for row in plan.table],
        retain_first=at_risk,
    )  # fmt: skip


def _curve(ceiling: float | None, k: float | None) -> ResponseCurve | None:
    return ResponseCurve(ceiling, k) if ceiling is not None and k is not None else None


@router.get("/portfolio")
def portfolio(
    store: Store,
    principal: ReadStrategy,
    by: FieldName = "tier",
    risk: Annotated[float | None, Query(ge=0, le=1e12)] = None,
) -> PortfolioPlan:
    """Segments as assets: mean and risk of monthly margin per customer, the efficient frontier, managers' P&L."""
    plan = portfolio_plan(store, by=by, risk=risk)
    return PortfolioPlan(
        months=plan.months,
        segments=[
            {"segment": name, "customers": plan.customers.get(name, 0), "mean": mean, "risk": sd}
            for name, mean, sd in zip(plan.segments, plan.expected, plan.risk, strict=True)
        ],
        frontier=[asdict(point) for point in plan.frontier],
        chosen=asdict(plan.chosen) if plan.chosen else None,
        managers=plan.managers.to_dicts(),
    )


@router.get("/pricing")
def pricing(
    store: Store,
    principal: ReadStrategy,
    by: FieldName = "education",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Pricing:
    """Deal proneness per segment, and the most deal-prone customers (shares shrunk towards their segment)."""
    customers, segments = price_sensitivity(store, by=by)
    return Pricing(
        segments=segments.to_dicts(),
        most_deal_prone=visible_frame(store, principal, customers)
        .sort("shrunk_share", descending=True)
        .head(limit)
        .to_dicts(),
    )


@router.get("/elasticity")
def elasticity(
    store: Store,
    principal: ReadStrategy,
    by: Annotated[Literal["tier", "country", "all"], Query()] = "tier",
    source: Annotated[str | None, Query(max_length=64)] = None,
) -> Elasticity:
    """Price elasticity of quantity per segment from order lines (product list prices over time)."""
    scope, found, _customers = price_elasticity(store, by=by, source=source)
    segments = [SegmentElasticityOut(**asdict(item)) for item in sorted(found, key=lambda item: -item.lines)]
    return Elasticity(source=scope.source, currency=scope.currency, segments=segments)


@router.get("/network")
def network(store: Store, principal: ReadStrategy, top: Annotated[int, Query(ge=1, le=200)] = 20) -> Network:
    """Communities, value assortativity, influencers and high-value clusters of the customer network."""
    summary = network_summary(store, top=top, visible=portfolio_ids(store, principal))
    return Network(
        customers=summary.customers,
        links=summary.links,
        sources=summary.sources,
        communities=summary.communities,
        modularity=summary.modularity,
        assortativity=summary.assortativity,
        assortativity_note=summary.assortativity_note,
        influencers=summary.influencers.to_dicts(),
        clusters=summary.clusters.to_dicts(),
    )


class LinkIn(BaseModel):
    from_: Annotated[ShortText, Field(alias="from")]
    to: ShortText
    kind: Literal["referral", "shared_account", "shared_address", "co_participation", "declared"]
    weight: Annotated[float, Field(gt=0, lt=1e9)] = 1.0


class LinksIn(BaseModel):
    source: ShortText
    links: Annotated[list[LinkIn], Field(min_length=1, max_length=10_000)]


@router.post("/links")
def add_links(body: LinksIn, store: Store, principal: ManageSegments) -> LinksAdded:
    """Record customer-to-customer links; a link already recorded is skipped, bad ones reported by position."""
    records = (
        (position, {"from": link.from_, "to": link.to, "kind": link.kind, "weight": link.weight})
        for position, link in enumerate(body.links)
    )
    result = add_link_records(store, records, source=body.source, resolve=customer_resolver(store, principal))
    return LinksAdded(
        created=result.created,
        duplicates=result.duplicates,
        rejected=[{"position": position, "reason": reason} for position, reason in result.rejected],
    )
