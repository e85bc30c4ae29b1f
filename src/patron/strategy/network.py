"""The customer network: links, communities, value assortativity, influencers, high-value clusters.

Methods: communities by Louvain modularity maximisation (Blondel et al. 2008, J. Stat. Mech. P10008, through
networkx, seeded so a run is repeatable); value assortativity is Newman's (2003, "Mixing patterns in networks",
Phys. Rev. E 67) correlation of a numeric attribute across the ends of each link: +1 when valuable customers
link only to valuable ones, −1 when only to the least valuable. The influencer score is reach × engagement ×
sentiment (after Kumar, Petersen & Leone 2010, "Driving Profitability by Encouraging Customer Referrals", and
the customer influence value of Kumar et al. 2010, Journal of Service Research 13(3)): reach = customers within
two links, engagement = interactions and orders in the year before the linked customers' latest day, sentiment
= (positive + 1) / (positive + negative + 2) word of mouth (reviews and referrals against complaints); reach
and engagement are scaled to [0, 1] by the largest. Limits: links are only what was recorded; a network with few
links says little about who influences.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import networkx as nx
import polars as pl
from sqlalchemy import ColumnElement, Engine, case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.view import resolve_customer
from patron.errors import InvalidInputError, NotFoundError, SourceFileError
from patron.strategy.schema import LINK_KINDS, CustomerLink

LINKS = table_of(CustomerLink)
INTERACTIONS = table_of(s.Interaction).c
POSITIVE = ("review_positive", "referral", "recommendation")
NEGATIVE = ("complaint", "review_negative")
SEED = 7
INFLUENCE_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.Int64(), "reach_count": pl.Int64(), "interactions": pl.Int64(), "positive": pl.Int64(),
    "negative": pl.Int64(), "reach": pl.Float64(), "engagement": pl.Float64(), "sentiment": pl.Float64(),
    "score": pl.Float64(),
}  # fmt: skip


@dataclass
class LinkImport:
    created: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def add_links(engine: Engine, rows: list[dict[str, object]], *, source: str) -> tuple[int, int]:
    """Insert links (from_customer_id, to_customer_id, kind, weight); a link already there is skipped."""
    if not rows:
        return 0, 0
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    key = ["kind", "from_customer_id", "to_customer_id"]
    statement = dialect.insert(LINKS).on_conflict_do_nothing(index_elements=key).returning(LINKS.c.id)
    created = 0
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            batch = [{**row, "source": source} for row in rows[start : start + 5000]]
            # executemany's rowcount is -1 on PostgreSQL: count the ids the inserts returned instead.
            created += len(conn.execute(statement, batch).all())
    return created, len(rows) - created


def import_links(engine: Engine, path: Path, *, source: str) -> LinkImport:
    """Import a CSV with columns from, to (customer references), kind and optional weight.

    Bad rows are reported with their line and reason and the rest are kept; a re-run adds nothing twice.
    """
    if not path.is_file():
        raise SourceFileError(f"{path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"from", "to", "kind"} - set(reader.fieldnames or [])
        if missing:
            raise SourceFileError(f"{path.name} lacks the column(s) {', '.join(sorted(missing))}")
        return add_link_records(engine, enumerate(reader, start=2), source=source)


def add_link_records(
    engine: Engine,
    records: Iterable[tuple[int, Mapping[str, object]]],
    *,
    source: str,
    resolve: Callable[[str], int] | None = None,
) -> LinkImport:
    """Links from (position, {from, to, kind, weight}) records: bad ones reported by position, good ones kept.

    ``resolve`` finds a reference's customer (by default anyone in the file; a caller's portfolio otherwise)."""
    resolve = resolve or partial(resolve_customer, engine)
    result = LinkImport()
    good: list[dict[str, object]] = []
    for position, record in records:
        try:
            good.append(_link_row(resolve, record))
        except (InvalidInputError, NotFoundError, ValueError) as error:
            result.rejected.append((position, str(getattr(error, "message", error))))
    result.created, result.duplicates = add_links(engine, good, source=source)
    return result


def _link_row(resolve: Callable[[str], int], row: Mapping[str, object]) -> dict[str, object]:
    kind = str(row.get("kind") or "").strip()
    if kind not in LINK_KINDS:
        raise InvalidInputError(f"kind {kind!r} is not one of {', '.join(LINK_KINDS)}")
    weight = float(str(row.get("weight") or 1.0))
    if not 0 < weight < 1e9:
        raise InvalidInputError("weight must be a positive number")
    first = resolve(str(row.get("from") or ""))
    second = resolve(str(row.get("to") or ""))
    if first == second:
        raise InvalidInputError("a customer cannot be linked to themselves")
    return {"from_customer_id": first, "to_customer_id": second, "kind": kind, "weight": weight}


def customer_graph(engine: Engine) -> nx.Graph:
    """Undirected, weighted: several links between two customers add their weights."""
    with engine.connect() as conn:
        rows = conn.execute(select(LINKS.c.from_customer_id, LINKS.c.to_customer_id, LINKS.c.weight)).all()
    graph = nx.Graph()
    for first, second, weight in rows:
        previous = graph.get_edge_data(first, second, {"weight": 0.0})["weight"]
        graph.add_edge(int(first), int(second), weight=previous + float(weight))
    return graph


def communities(graph: nx.Graph) -> list[set[int]]:
    """Louvain communities, largest first (seeded: the same graph gives the same communities)."""
    if graph.number_of_edges() == 0:
        return []
    found = nx.community.louvain_communities(graph, weight="weight", seed=SEED)
    return sorted((set(c) for c in found), key=len, reverse=True)


def value_assortativity(graph: nx.Graph, values: dict[int, float]) -> float:
    """Newman's assortativity of ``values`` over the links whose two ends both have a value."""
    known = graph.subgraph([node for node in graph if node in values]).copy()
    if known.number_of_edges() < 2:
        raise InvalidInputError("assortativity needs at least two links between customers with a value")
    nx.set_node_attributes(known, {node: float(values[node]) for node in known}, "value")
    return float(nx.numeric_assortativity_coefficient(known, "value"))


def influencer_scores(engine: Engine, graph: nx.Graph, *, as_of: dt.date | None = None) -> pl.DataFrame:
    """customer_id, reach, engagement, sentiment, score (highest first) for every linked customer."""
    if graph.number_of_nodes() == 0:
        return pl.DataFrame(schema=INFLUENCE_SCHEMA)
    reach = {node: len(nx.single_source_shortest_path_length(graph, node, cutoff=2)) - 1 for node in graph}
    orders = table_of(s.Order).c
    nodes = list(graph.nodes)
    with engine.connect() as conn:
        if as_of is None:  # the linked customers' own "today": their latest order or interaction
            latest = [
                conn.scalar(select(func.max(orders.ordered_at)).where(orders.customer_id.in_(nodes))),
                conn.scalar(select(func.max(INTERACTIONS.occurred_at)).where(INTERACTIONS.customer_id.in_(nodes))),
            ]
            known = [day for day in latest if day is not None]
            as_of = max(known).date() if known else dt.date.today()
        since = dt.datetime.combine(as_of - dt.timedelta(days=365), dt.time())
        talks = conn.execute(
            select(
                INTERACTIONS.customer_id,
                func.count(),
                func.sum(_indicator(INTERACTIONS.type.in_(POSITIVE))),
                func.sum(_indicator(INTERACTIONS.type.in_(NEGATIVE))),
            )
            .where(INTERACTIONS.customer_id.in_(nodes), INTERACTIONS.occurred_at >= since)
            .group_by(INTERACTIONS.customer_id)
        ).all()
        bought = {
            int(customer): int(count)
            for customer, count in conn.execute(
                select(orders.customer_id, func.count())
                .where(orders.customer_id.in_(nodes), orders.ordered_at >= since)
                .group_by(orders.customer_id)
            ).all()
        }
    activity = {int(c): (int(n), int(p or 0), int(q or 0)) for c, n, p, q in talks}
    frame = pl.DataFrame(
        {
            "customer_id": list(graph.nodes),
            "reach_count": [reach[node] for node in graph.nodes],
            "interactions": [activity.get(node, (0, 0, 0))[0] + int(bought.get(node, 0)) for node in graph.nodes],
            "positive": [activity.get(node, (0, 0, 0))[1] for node in graph.nodes],
            "negative": [activity.get(node, (0, 0, 0))[2] for node in graph.nodes],
        },
        schema_overrides={"customer_id": pl.Int64},
    )
    return (
        frame.with_columns(
            (pl.col("reach_count") / pl.col("reach_count").max()).alias("reach"),
            (pl.col("interactions").log1p() / pl.max_horizontal(pl.col("interactions").log1p().max(), 1e-9)).alias(
                "engagement"
            ),
            ((pl.col("positive") + 1) / (pl.col("positive") + pl.col("negative") + 2)).alias("sentiment"),
        )
        .with_columns((pl.col("reach") * pl.col("engagement") * pl.col("sentiment")).alias("score"))
        .sort("score", "reach_count", descending=True)
    )


def _indicator(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def high_value_clusters(found: list[set[int]], values: dict[int, float], *, min_size: int = 3) -> pl.DataFrame:
    """Communities of at least ``min_size`` customers ranked by their total value, with the mean beside it."""
    rows = []
    for number, members in enumerate(found, start=1):
        if len(members) < min_size:
            continue
        known = [values[m] for m in members if m in values]
        total = sum(known)
        rows.append(
            {"community": number, "customers": len(members), "total_value": total,
             "mean_value": total / len(known) if known else 0.0, "members": sorted(members)}
        )  # fmt: skip
    schema: dict[str, pl.DataType] = {
        "community": pl.Int64(), "customers": pl.Int64(), "total_value": pl.Float64(), "mean_value": pl.Float64(),
        "members": pl.List(pl.Int64()),
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema).sort("total_value", descending=True)


def synthetic_demo_links(
    engine: Engine, *, customers: int = 3000, seed: int = SEED, source: str | None = None
) -> tuple[int, int]:
    """SYNTHETIC referral links among the customers with the most revenue history, for the demo only (none of
    the shared data sets records who knows whom). Links favour customers of similar revenue (70 % within the
    same revenue quintile), so the demo shows what a value-assortative network looks like. Source: demo-synthetic.
    """
    orders, lines = table_of(s.Order).c, table_of(s.OrderLine).c
    with engine.connect() as conn:
        rows = conn.execute(
            select(orders.customer_id, func.sum(lines.revenue_minor).label("revenue"))
            .join_from(table_of(s.OrderLine), table_of(s.Order), lines.order_id == orders.id)
            .where(orders.source == source if source else orders.customer_id.is_not(None))
            .group_by(orders.customer_id)
            .order_by(orders.customer_id)
            .limit(customers)
        ).all()
    if len(rows) < 10:
        raise InvalidInputError("the demo links need customers with orders: run `patron demo` first")
    ranked = sorted(rows, key=lambda row: (row.revenue, row.customer_id))
    quintile = {row.customer_id: index * 5 // len(ranked) for index, row in enumerate(ranked)}
    by_quintile: dict[int, list[int]] = {}
    for customer, bucket in quintile.items():
        by_quintile.setdefault(bucket, []).append(customer)
    rng = random.Random(seed)
    everyone = [row.customer_id for row in rows]
    links = []
    for customer in everyone:
        for _ in range(rng.randint(1, 3)):
            pool = by_quintile[quintile[customer]] if rng.random() < 0.7 else everyone
            other = rng.choice(pool)
            if other != customer:
                links.append({"from_customer_id": customer, "to_customer_id": other, "kind": "referral", "weight": 1.0})
    return add_links(engine, links, source="demo-synthetic")
