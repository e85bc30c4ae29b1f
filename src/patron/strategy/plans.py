"""The four strategy analyses on the store's data, as the CLI, the API and the pages show them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import networkx as nx
import numpy as np
import polars as pl
from sqlalchemy import Engine, func, select

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.facts import Scope, read_frame, resolve_scope
from patron.cif.money import to_major
from patron.cif.stamp import kept
from patron.cif.stored_results import storable
from patron.errors import InvalidInputError
from patron.segments.features import build_features, feature_schema, parts_for
from patron.settings import get_settings
from patron.strategy.budget import Allocation, EquityInputs, ResponseCurve, best_budget, best_split, what_if
from patron.strategy.elasticity import SegmentElasticity, purchase_cells, segment_elasticities
from patron.strategy.network import (
    communities,
    customer_graph,
    high_value_clusters,
    influencer_scores,
    value_assortativity,
)
from patron.strategy.portfolio import (
    FrontierPoint,
    best_for_risk,
    efficient_frontier,
    manager_pnl,
    moments,
    segment_cash_flows,
)
from patron.strategy.pricing import deal_proneness
from patron.strategy.schema import CustomerLink
from patron.value.base import customer_base
from patron.value.latest import latest_scores
from patron.value.lists import value_at_risk


def default_curves(margin: float) -> tuple[ResponseCurve, ResponseCurve]:
    """Assumed until measured (replace them with curves fitted to your campaigns, `ResponseCurve.fit`), scaled to
    the yearly margin m: at most 25 % of prospects won, half of that for a spend of m/4 per prospect; at most 85 %
    of customers kept, half of that for a spend of m/5 per customer."""
    m = max(margin, 1e-6)
    return ResponseCurve(0.25, math.log(2) / (0.25 * m)), ResponseCurve(0.85, math.log(2) / (0.2 * m))


@dataclass
class BudgetPlan:
    inputs: EquityInputs
    best: Allocation
    unconstrained: Allocation  # the equity-maximising budget
    table: list[Allocation]
    at_risk: pl.DataFrame  # where the retention money should go first, most value at risk first
    currency: str
    assumed_curves: bool


def budget_plan(
    engine: Engine,
    budget: float | None = None,
    *,
    acquisition: ResponseCurve | None = None,
    retention: ResponseCurve | None = None,
    discount_rate: float = 0.10,
    source: str | None = None,
) -> BudgetPlan:
    """The equity-maximising split of a yearly ``budget`` (default: the equity-maximising budget) for the store's
    prospects and scored customers, with a what-if table around it."""
    base, scope, _ = customer_base(engine, source=source)
    if base["clv"].null_count() == base.height:
        raise InvalidInputError("the budget plan needs lifetime values: run `patron value score` first", field="run")
    margin_rate = (
        pl.when(pl.col("margin").is_not_null() & (pl.col("revenue") > 0))
        .then((pl.col("margin") / pl.col("revenue")).clip(-1, 1))
        .otherwise(get_settings().default_margin_rate)
    )
    margin = float(base.select((pl.col("revenue_last_year") * margin_rate).mean()).item() or 0.0)
    people = table_of(s.Customer)
    with engine.connect() as conn:
        prospects = int(conn.scalar(select(func.count()).select_from(people).where(people.c.kind == "prospect")) or 0)
    assumed_acquisition, assumed_retention = default_curves(margin)
    curves = (acquisition or assumed_acquisition, retention or assumed_retention)
    inputs = EquityInputs(prospects, base.height, margin, discount_rate, *curves)
    unconstrained = best_budget(inputs)
    amount = unconstrained.budget if budget is None else budget
    return BudgetPlan(
        inputs, best_split(inputs, amount), unconstrained, what_if(inputs, amount), value_at_risk(base).rows,
        scope.currency, acquisition is None or retention is None,
    )  # fmt: skip


# The analyses whose results are also kept in the store (``cif/stored_results.py``), by name: the jobs compute them
# after a score run (``jobs/tasks.py``) and every process, each of the server's workers, reads them from there.
STORED = ("portfolio", "price_sensitivity", "network")
T = TypeVar("T")


def _kept(engine: Engine, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """``cif/stamp.kept`` for a strategy analysis, named by ``key``'s first part; stored too where ``STORED`` says."""
    return kept(engine, key, compute, stored=key[0] in STORED)


@storable
@dataclass
class PortfolioPlan:
    segments: list[str]
    expected: list[float]
    risk: list[float]
    customers: dict[str, int]
    frontier: list[FrontierPoint]
    chosen: FrontierPoint | None
    months: int
    managers: pl.DataFrame = field(default_factory=pl.DataFrame)


def portfolio_plan(
    engine: Engine, *, by: str = "tier", risk: float | None = None, source: str | None = None
) -> PortfolioPlan:
    """Segments as assets; the frontier is kept while the data is unchanged (``cif/stamp.py``), the point for a
    ``risk`` is read off it per request (any number may be asked for: it is not a key)."""
    plan = _kept(engine, ("portfolio", by, source), lambda: _portfolio_plan(engine, by, source))
    return plan if risk is None else replace(plan, chosen=best_for_risk(plan.frontier, risk))


def _portfolio_plan(engine: Engine, by: str, source: str | None) -> PortfolioPlan:
    flows = segment_cash_flows(engine, by=by, source=source)
    names, expected, covariance = moments(flows)
    frontier = efficient_frontier(names, expected, covariance)
    sizes = dict(flows.group_by("segment").agg(pl.col("customers").first()).iter_rows())
    return PortfolioPlan(
        names, [float(v) for v in expected], [float(v) for v in np.sqrt(np.diag(covariance))], sizes, frontier,
        None, flows["month"].n_unique(),
        manager_pnl(engine, source=source),
    )  # fmt: skip


# The demo's retailer records purchases by channel and those made on a deal (customer-personality).
DEAL_FIELDS = (
    "attributes.deals_purchases",
    ("attributes.web_purchases", "attributes.catalog_purchases", "attributes.store_purchases"),
)


def price_sensitivity(engine: Engine, *, by: str = "education") -> tuple[pl.DataFrame, pl.DataFrame]:
    """Deal proneness per customer (shrunk) and per segment of ``by`` from the recorded deal purchases (kept while
    the data is unchanged: ``cif/stamp.py``)."""
    return _kept(engine, ("price_sensitivity", by), lambda: _price_sensitivity(engine, by))


def _price_sensitivity(engine: Engine, by: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    deals, channels = DEAL_FIELDS
    schema = feature_schema(engine)
    missing = [name for name in (by, deals, *channels) if name not in schema]
    if missing:
        raise InvalidInputError(
            f"price sensitivity needs the field(s) {', '.join(missing)}: load customer-personality "
            "(`patron demo`) or import deal and purchase counts as those attributes",
            field="by" if by in missing else "attributes",
        )
    features = build_features(engine, parts=parts_for([by, deals, *channels])).customers
    frame = features.select(
        "customer_id",
        pl.col(by).cast(pl.String).alias("segment"),
        pl.col(deals).cast(pl.Float64).alias("deals"),
        pl.sum_horizontal(*(pl.col(c).cast(pl.Float64) for c in channels)).alias("purchases"),
    ).filter(pl.col("deals").is_not_null())
    return deal_proneness(frame)


ELASTICITY_SEGMENTS = ("tier", "country", "all")


def price_elasticity(
    engine: Engine, *, by: str = "tier", source: str | None = None
) -> tuple[Scope, list[SegmentElasticity], pl.DataFrame]:
    """Price elasticity of quantity per segment (value tier, country or all) from one source's order lines."""
    if by not in ELASTICITY_SEGMENTS:
        raise InvalidInputError(f"segments by one of {', '.join(ELASTICITY_SEGMENTS)}, not {by!r}", field="by")
    scope = resolve_scope(engine, source)
    orders, lines, products = (table_of(model).c for model in (s.Order, s.OrderLine, s.Product))
    query = scope.orders_in(
        select(orders.customer_id, orders.ordered_at, products.sku, lines.quantity, lines.revenue_minor)
        .join_from(table_of(s.OrderLine), table_of(s.Order), lines.order_id == orders.id)
        .join(table_of(s.Product), products.id == lines.product_id)
        .where(orders.kind == "purchase", lines.quantity > 0)
    )
    schema: dict[str, pl.DataType] = {
        "customer_id": pl.Int64(), "at": pl.Datetime("us"), "product": pl.String(), "quantity": pl.Float64(),
        "revenue_minor": pl.Int64(),
    }  # fmt: skip
    frame = read_frame(engine, query, schema)
    if frame.is_empty():
        raise InvalidInputError(f"{scope} has no order lines with products and quantities to learn prices from")
    frame = frame.with_columns(
        (to_major(pl.col("revenue_minor"), scope.currency) / pl.col("quantity")).alias("unit_price")
    )
    segments = _elasticity_segments(engine, by, scope)
    frame = frame.join(segments, on="customer_id", how="left").with_columns(pl.col("segment").fill_null("(none)"))
    found, customers = segment_elasticities(purchase_cells(frame))
    return scope, found, customers


def _elasticity_segments(engine: Engine, by: str, scope: Scope) -> pl.DataFrame:
    empty = pl.DataFrame(schema={"customer_id": pl.Int64, "segment": pl.String})
    if by == "all":
        return empty
    if by == "tier":
        scores = latest_scores(engine, scope=scope)
        return scores.select("customer_id", pl.col("tier").alias("segment")) if scores.height else empty
    profile = table_of(s.CustomerProfile).c
    query = select(profile.customer_id, profile.country)
    return read_frame(engine, query, {"customer_id": pl.Int64(), "segment": pl.String()})


@storable
@dataclass
class NetworkSummary:
    customers: int
    links: int
    communities: int
    modularity: float | None
    assortativity: float | None
    assortativity_note: str
    influencers: pl.DataFrame
    clusters: pl.DataFrame
    sources: dict[str, int]
    layout: dict[str, Any] = field(default_factory=dict)


def network_summary(engine: Engine, *, top: int = 20, visible: set[int] | None = None) -> NetworkSummary:
    """The network's shape over every customer; the customers it names (influencers, cluster members) only among
    ``visible`` when given (a manager's portfolio). The whole network is kept while the data is unchanged."""
    whole = _kept(engine, ("network",), lambda: _whole_network(engine))
    return replace(
        whole, influencers=_named(whole.influencers, visible).head(top),
        clusters=_clusters_named(whole.clusters, visible).head(top),
    )  # fmt: skip


def _whole_network(engine: Engine) -> NetworkSummary:
    graph = customer_graph(engine)
    links = table_of(CustomerLink).c
    with engine.connect() as conn:
        sources: dict[str, int] = {
            str(name): int(count)
            for name, count in conn.execute(select(links.source, func.count()).group_by(links.source)).all()
        }
    found = communities(graph)
    values = _values(engine)
    note = "CLV of the latest score run"
    assortativity: float | None
    try:
        assortativity = value_assortativity(graph, values) if values else None
        if assortativity is None:
            note = "needs lifetime values: run `patron value score`"
    except InvalidInputError as error:
        assortativity, note = None, error.message
    modularity = float(nx.community.modularity(graph, found)) if found else None
    return NetworkSummary(
        graph.number_of_nodes(), graph.number_of_edges(), len(found), modularity, assortativity, note,
        influencer_scores(engine, graph), high_value_clusters(found, values), sources, _layout(graph, found, values),
    )  # fmt: skip


def _named(frame: pl.DataFrame, visible: set[int] | None) -> pl.DataFrame:
    return frame if visible is None else frame.filter(pl.col("customer_id").is_in(sorted(visible)))


def _clusters_named(clusters: pl.DataFrame, visible: set[int] | None) -> pl.DataFrame:
    if visible is None:
        return clusters
    shown = sorted(visible)
    return clusters.with_columns(pl.col("members").list.eval(pl.element().filter(pl.element().is_in(shown))))


def _values(engine: Engine) -> dict[int, float]:
    """Each customer's latest CLV (major units); empty before the first run."""
    scores = latest_scores(engine)
    return dict(zip(scores["customer_id"].to_list(), scores["clv"].to_list(), strict=True))


def _layout(graph: Any, found: list[set[int]], values: dict[int, float], *, largest: int = 6) -> dict[str, Any]:
    """Positions of the customers in the largest communities, for the network plot (spring layout, seeded)."""
    shown = [node for community in found[:largest] for node in community]
    if not shown:
        return {}
    sub = graph.subgraph(shown)
    positions = nx.spring_layout(sub, seed=7)
    community_of = {node: index for index, community in enumerate(found[:largest]) for node in community}
    return {
        "nodes": [
            {"id": node, "x": float(x), "y": float(y), "community": community_of[node], "value": values.get(node)}
            for node, (x, y) in positions.items()
        ],
        "edges": [[int(a), int(b)] for a, b in sub.edges()],
    }
