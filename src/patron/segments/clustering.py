"""Needs-based segmentation: cluster customers on value and behaviour, describe each segment in words and numbers.

Features (standardised): log revenue, orders, days since the last order, CLV and P(alive) when scored, the
category mix (share of spend per category), the share of campaigns responded to, interactions, income and age
where known. The number of segments is chosen by a stated criterion: BIC for a Gaussian mixture, the
silhouette (on a seeded sample of at most 5,000 customers) for k-means. Segments are numbered by value share,
1 being the most valuable; every run is stored with its descriptions and each customer's assignment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
from sqlalchemy import Engine, insert

from patron.cif.columns import table_of
from patron.errors import InvalidInputError
from patron.segments.expression import CompiledRule, Context, compile_rule
from patron.segments.features import build_features, feature_schema
from patron.segments.frame_cache import current_features
from patron.segments.schema import SegmentAssignment, SegmentationRun

Method = Literal["kmeans", "gmm"]
METHODS: dict[str, str] = {
    "gmm": "Gaussian mixture (the number of segments by the lowest BIC)",
    "kmeans": "k-means (the number of segments by the highest silhouette)",
}
MAX_SEGMENTS = 20
SAMPLE = 5000
RUNS = table_of(SegmentationRun)
ASSIGNMENTS = table_of(SegmentAssignment)


@dataclass
class Segmentation:
    run_id: int
    method: str
    segments: int
    criterion: dict[str, Any]
    descriptions: list[dict[str, Any]]
    assignments: pl.DataFrame  # customer_id, segment, value


def behaviour_features(customers: pl.DataFrame) -> pl.DataFrame:
    """The clustering inputs, one column each, computed from the feature frame."""
    revenue = pl.col("revenue").clip(lower_bound=0)
    columns: list[pl.Expr] = [
        pl.col("customer_id"),
        revenue.log1p().alias("log revenue"),
        pl.col("orders").cast(pl.Float64).alias("orders"),
        pl.col("days_since_last_order").cast(pl.Float64).alias("days since last order"),
    ]
    for name, label in (
        ("clv", "CLV"),
        ("p_alive", "P(alive)"),
        ("interactions", "interactions"),
        ("income", "income"),
    ):
        if customers[name].null_count() < customers.height:
            columns.append(pl.col(name).cast(pl.Float64).alias(label))
    spend = [c for c in customers.columns if c.startswith("spend.")]
    if len(spend) > 1:
        total = pl.sum_horizontal(spend)
        columns += [pl.when(total > 0).then(pl.col(c) / total).otherwise(0.0).alias(f"share {c[6:]}") for c in spend]
    responded = [c for c in customers.columns if c.startswith("responded.")]
    if responded:
        columns.append(pl.mean_horizontal([pl.col(c).cast(pl.Float64) for c in responded]).alias("response rate"))
    frame = customers.select(columns)
    # Keep only informative columns; fill what is missing with the column median.
    keep = ["customer_id"] + [c for c in frame.columns[1:] if frame[c].drop_nulls().n_unique() > 1]
    return frame.select(keep).with_columns(pl.exclude("customer_id").fill_null(strategy="mean"))


def segment_customers(
    engine: Engine,
    *,
    population: str | None = "orders > 0",
    method: Method = "gmm",
    k_range: range = range(2, 9),
    seed: int = 0,
    as_of: dt.date | None = None,
    note: str | None = None,
) -> Segmentation:
    rule = check_clustering(engine, population=population, method=method, max_segments=max(k_range))
    features = current_features(engine) if as_of is None else build_features(engine, as_of=as_of)
    customers = features.customers
    if rule is not None:
        customers = customers.filter(rule.expression(Context(features.categories, features.as_of)))
    inputs = behaviour_features(customers)
    if inputs.height < 10 * max(k_range) or inputs.width < 2:
        raise InvalidInputError(
            f"{inputs.height:,} customers with {inputs.width - 1} varying features are too few to segment into up to "
            f"{max(k_range)} groups",
            field="population",
        )
    x = inputs.drop("customer_id").to_numpy().astype(np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    z = (x - mean) / np.where(std > 0, std, 1.0)
    labels, criterion = _choose(z, method, k_range, seed)
    value = customers.select("customer_id", pl.col("revenue").alias("value"))
    assignments = inputs.select("customer_id").with_columns(pl.Series("raw", labels)).join(value, on="customer_id")
    # Number segments by value share, most valuable first, so runs read alike.
    order = assignments.group_by("raw").agg(pl.col("value").sum()).sort("value", descending=True)["raw"].to_list()
    renumber = {raw: number for number, raw in enumerate(order, start=1)}
    assignments = assignments.with_columns(pl.col("raw").replace_strict(renumber).alias("segment")).drop("raw")
    descriptions = describe(inputs, assignments)
    run_id = _store(
        engine, method=method, feature_names=list(inputs.columns[1:]), criterion=criterion,
        descriptions=descriptions, assignments=assignments, note=note,
    )  # fmt: skip
    return Segmentation(run_id, method, len(order), criterion, descriptions, assignments)


def check_clustering(engine: Engine, *, population: str | None, method: str, max_segments: int) -> CompiledRule | None:
    """Refuse a clustering that cannot run, naming the field (before any work, so a page can say so beside it);
    returns the population's compiled rule (None: everyone)."""
    if method not in METHODS:
        raise InvalidInputError(f"the method is one of {', '.join(METHODS)}, not {method!r}", field="method")
    if not 2 <= max_segments <= MAX_SEGMENTS:
        raise InvalidInputError(f"up to 2 to {MAX_SEGMENTS} segments, not {max_segments}", field="max_segments")
    if not population or not population.strip():
        return None
    try:
        return compile_rule(population, feature_schema(engine))
    except InvalidInputError as error:
        raise InvalidInputError(error.message, field="population") from error


def _choose(
    z: np.ndarray[Any, Any], method: Method, k_range: range, seed: int
) -> tuple[np.ndarray[Any, Any], dict[str, Any]]:
    # scikit-learn when a run starts: the server imports this module for its pages' choices, and importing these
    # three took 1.2-2.4 s here
    from sklearn.cluster import KMeans  # noqa: PLC0415
    from sklearn.metrics import silhouette_score  # noqa: PLC0415
    from sklearn.mixture import GaussianMixture  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    sample = z if len(z) <= SAMPLE else z[rng.choice(len(z), SAMPLE, replace=False)]
    scores: dict[int, float] = {}
    for k in k_range:
        if method == "gmm":  # k chosen on a sample (BIC per k), the chosen mixture then fitted on everyone
            model = GaussianMixture(k, covariance_type="full", random_state=seed, n_init=2).fit(sample)
            scores[k] = float(model.bic(sample))
        else:
            labels = KMeans(k, random_state=seed, n_init=4).fit_predict(sample)
            scores[k] = float(silhouette_score(sample, labels))
    if method == "gmm":
        best = min(scores, key=lambda k: scores[k])
        labels = GaussianMixture(best, covariance_type="full", random_state=seed, n_init=2).fit(z).predict(z)
        return labels, {"name": "lowest BIC", "by_k": scores, "chosen": best}
    best = max(scores, key=lambda k: scores[k])
    labels = KMeans(best, random_state=seed, n_init=4).fit_predict(z)
    return labels, {"name": "highest silhouette", "by_k": scores, "chosen": best}


def describe(inputs: pl.DataFrame, assignments: pl.DataFrame) -> list[dict[str, Any]]:
    """Size, value share and the three features that set each segment apart (in standard deviations)."""
    joined = inputs.join(assignments, on="customer_id")
    names = inputs.columns[1:]
    values = {n: joined[n].to_numpy().astype(np.float64) for n in names}
    overall = {n: (float(values[n].mean()), float(values[n].std())) for n in names}
    segments = joined["segment"].to_numpy()
    revenue = joined["value"].to_numpy().astype(np.float64)
    total_value = float(revenue.sum()) or 1.0
    descriptions = []
    for segment in sorted(set(segments.tolist())):
        members = segments == segment
        means = {n: float(values[n][members].mean()) for n in names}
        distance = {n: (means[n] - overall[n][0]) / overall[n][1] for n in names if overall[n][1] > 0}
        standout = sorted(distance, key=lambda n: -abs(distance[n]))[:3]
        words = ", ".join(f"{'high' if distance[n] > 0 else 'low'} {n} ({distance[n]:+.1f} sd)" for n in standout)
        size = int(members.sum())
        descriptions.append(
            {
                "segment": int(segment),
                "size": size,
                "share_of_customers": size / joined.height,
                "value_share": float(revenue[members].sum()) / total_value,
                "means": means,
                "distinguishing": [{"feature": n, "sd": round(distance[n], 2)} for n in standout],
                "summary": words,
            }
        )
    return descriptions


def _store(
    engine: Engine,
    *,
    method: str,
    feature_names: list[str],
    criterion: dict[str, Any],
    descriptions: list[dict[str, Any]],
    assignments: pl.DataFrame,
    note: str | None,
) -> int:
    stored_criterion = {**criterion, "by_k": {str(k): v for k, v in criterion["by_k"].items()}}
    with engine.begin() as conn:
        run = {
            "method": method, "features": feature_names, "segments": len(descriptions),
            "criterion": stored_criterion, "descriptions": descriptions, "note": note,
        }  # fmt: skip
        run_id = int(conn.execute(insert(RUNS).values(run).returning(RUNS.c.id)).scalar_one())
        rows = assignments.with_columns(pl.lit(run_id).alias("run_id")).to_dicts()
        for start in range(0, len(rows), 10_000):
            conn.execute(insert(ASSIGNMENTS), rows[start : start + 10_000])
    return run_id
