"""Price elasticity of quantity from real line items (seed 001's yield management): how much less a customer buys
of a product when its price is higher, per segment with a 95 % interval, and per customer shrunk towards it.

The price variation used is a product's **list price over time**: the highest unit price it sold at in the week (a
wholesaler's quantity breaks only lower the price from there). Regressing each purchase's quantity on the price the
buyer paid would mistake quantity breaks for demand (the big order gets the low price); the list price is set by
the shop, not by the order's size. The model, per segment,

    log(quantity of customer i, product j, week t) = ε · log(list price of j in t) + product j + week t + noise,

is fitted by ordinary least squares after sweeping out the product and week effects (alternating projections), with
standard errors clustered by product. ``ε`` is the intensive-margin elasticity: quantity *given* a purchase.
Controlled for: everything constant about a product (its size, its usual buyers), everything common to a week
(season, Christmas), quantity breaks (not in the price used). Not controlled for: promotions that change price and
something else at once, and products dropped when their price rose (the extensive margin).

Per customer, the slope from their own purchases at different list prices is shrunk towards the segment's by an
empirical-Bayes normal prior (between-customer variance by DerSimonian & Laird's method of moments).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from patron.errors import InvalidInputError

MIN_LINES = 200  # fewer lines than this in a segment: no estimate
_SWEEPS = 50


@dataclass(frozen=True)
class SegmentElasticity:
    segment: str
    elasticity: float
    low: float
    high: float
    lines: int
    products: int
    customers: int


def purchase_cells(lines: pl.DataFrame) -> pl.DataFrame:
    """From line items (customer_id, segment, product, at, quantity, unit_price): one row per customer, product and
    week with the quantity bought and the product's list price that week; returns, zero prices and non-products
    (codes without a digit: postage, fees, manual lines) left out."""
    needed = {"customer_id", "segment", "product", "at", "quantity", "unit_price"}
    if missing := needed - set(lines.columns):
        raise InvalidInputError(f"price elasticity needs the column(s) {', '.join(sorted(missing))}")
    usable = lines.filter(
        (pl.col("quantity") > 0) & (pl.col("unit_price") > 0) & pl.col("product").str.contains(r"\d")
    ).with_columns(pl.col("at").dt.truncate("1w").alias("week"))
    list_price = usable.group_by("product", "week").agg(pl.col("unit_price").max().alias("list_price"))
    return (
        usable.group_by("customer_id", "segment", "product", "week")
        .agg(pl.col("quantity").sum())
        .join(list_price, on=["product", "week"])
        .with_columns(pl.col("quantity").log().alias("y"), pl.col("list_price").log().alias("x"))
    )


def _sweep(frame: pl.DataFrame, columns: list[str], groups: list[str]) -> pl.DataFrame:
    """Remove the group means of ``columns`` for each grouping in turn until they stop moving (two-way effects)."""
    for _ in range(_SWEEPS):
        before = frame.select(columns).to_numpy()
        for group in groups:
            frame = frame.with_columns((pl.col(name) - pl.col(name).mean().over(group)) for name in columns)
        if np.abs(frame.select(columns).to_numpy() - before).max() < 1e-9:
            break
    return frame


def segment_elasticities(cells: pl.DataFrame) -> tuple[list[SegmentElasticity], pl.DataFrame]:
    """Per segment the elasticity with a product-clustered 95 % interval; per customer the shrunk slope."""
    found, customers = [], []
    for (segment,), group in cells.group_by("segment", maintain_order=True):
        # A product seen at one list price only, or in one week only, says nothing about price.
        varied = group.filter(
            (pl.col("x").n_unique().over("product") > 1) & (pl.col("week").n_unique().over("product") > 1)
        )
        if varied.height < MIN_LINES:
            continue
        within = _sweep(varied.with_columns(pl.col("x").alias("xt"), pl.col("y").alias("yt")), ["xt", "yt"],
                        ["product", "week"])  # fmt: skip
        x, y = within["xt"].to_numpy(), within["yt"].to_numpy()
        slope = float(x @ y / (x @ x))
        residual = y - slope * x
        scores = (
            pl.DataFrame({"product": within["product"], "s": x * residual}).group_by("product").agg(pl.col("s").sum())
        )
        clusters = scores.height
        variance = float((scores["s"].to_numpy() ** 2).sum()) / (x @ x) ** 2 * clusters / max(clusters - 1, 1)
        half = 1.96 * float(np.sqrt(variance))
        found.append(
            SegmentElasticity(
                str(segment),
                slope,
                slope - half,
                slope + half,
                within.height,
                clusters,
                within["customer_id"].n_unique(),
            )
        )
        customers.append(
            _shrunk_customers(within, slope, float(residual.var())).with_columns(segment=pl.lit(str(segment)))
        )
    if not found:
        raise InvalidInputError(
            f"no segment has {MIN_LINES} purchases of products whose list price changed: no elasticity to estimate"
        )
    return found, pl.concat(customers) if customers else pl.DataFrame()


def _shrunk_customers(within: pl.DataFrame, segment_slope: float, noise: float) -> pl.DataFrame:
    per = (
        within.group_by("customer_id")
        .agg(
            (pl.col("xt") * pl.col("yt")).sum().alias("xy"),
            (pl.col("xt") ** 2).sum().alias("xx"),
            pl.len().alias("cells"),
        )
        .filter(pl.col("xx") > 1e-9)
        .with_columns((pl.col("xy") / pl.col("xx")).alias("own"), (noise / pl.col("xx")).alias("own_variance"))
    )
    # Between-customer variance by DerSimonian & Laird (1986): precision-weighted, so the customers whose few
    # purchases hardly moved in price (huge variance) do not inflate it.
    own, variance = per["own"].to_numpy(), per["own_variance"].to_numpy()
    w = 1 / variance
    centre = float(w @ own / w.sum())
    q = float(w @ (own - centre) ** 2)
    between = max((q - (len(own) - 1)) / max(float(w.sum() - (w**2).sum() / w.sum()), 1e-12), 1e-6)
    weight = between / (between + pl.col("own_variance"))
    return per.select(
        "customer_id", "cells", "own",
        (weight * pl.col("own") + (1 - weight) * segment_slope).alias("shrunk"),
    )  # fmt: skip
