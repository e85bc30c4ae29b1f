"""The whole CLV pipeline (summary → BG/NBD and Gamma-Gamma fits → 36-month CLV → tiers) from 23k to 2.36M
customers: Patron embedded, Patron on Spark (``local[2]``), and the same pipeline in lifetimes and pymc-marketing.

Every point also goes to the scaling plot (bench/out/scaling.png). Spark's session start (about 8 s) and its first,
warm-up pipeline run (about 15 s more) are not counted, once per process; reading the Parquet file and writing the
scores back to Parquet are.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

import polars as pl

from bench.bench_value import OBSERVATION_END, anchor_time, replicated_transactions
from patron.value.clv import customer_lifetime_value
from patron.value.models.bgnbd import BetaGeometricNBD
from patron.value.models.gammagamma import GammaGamma
from patron.value.scoring import assign_tiers
from patron.value.summary import purchase_summary

ANCHORS = tuple(filter(None, os.environ.get("PATRON_BENCH_PIPELINE_ANCHORS", "lifetimes,pymc-marketing").split(",")))
SPARK_MASTER = os.environ.get("PATRON_BENCH_SPARK_MASTER", "local[2]")
ANCHOR_MAX_COPIES = int(os.environ.get("PATRON_BENCH_PIPELINE_ANCHOR_MAX_COPIES", "100"))


def embedded_pipeline(parquet: Path) -> tuple[float, int]:
    started = time.perf_counter()
    transactions = pl.read_parquet(parquet)
    summary = purchase_summary(transactions, observation_end=OBSERVATION_END, period="D")
    purchases = BetaGeometricNBD().fit_summary(summary)
    spend = GammaGamma().fit_summary(summary)
    scores = customer_lifetime_value(summary, purchases, spend)
    rank, tier = assign_tiers(scores["clv"])
    scores.with_columns(rank, tier).write_parquet(parquet.with_suffix(".scores.parquet"))
    return time.perf_counter() - started, summary.frame.height


def spark_pipeline(parquet: Path) -> float:
    from patron.spark.session import spark_session  # noqa: PLC0415 - only when Spark is benchmarked
    from patron.spark.value import (  # noqa: PLC0415
        fit_purchase_model,
        fit_spend_model,
        spark_lifetime_values,
        spark_summary,
    )

    spark = spark_session(SPARK_MASTER)

    def pipeline() -> float:
        started = time.perf_counter()
        summary = spark_summary(spark.read.parquet(str(parquet)), observation_end=OBSERVATION_END, period="D")
        scores = spark_lifetime_values(summary, fit_purchase_model(summary), fit_spend_model(summary))
        scores.write.mode("overwrite").parquet(str(parquet.with_suffix(".spark-scores")))
        summary.frame.unpersist()
        return time.perf_counter() - started

    if not _WARM:
        # A fresh session spends ~15 s starting Python workers and compiling: a long-running cluster has paid it.
        pipeline()
        _WARM.append(True)
    return pipeline()


_WARM: list[bool] = []


def run(copies: int) -> list[dict[str, object]]:
    transactions = replicated_transactions(copies)
    with tempfile.TemporaryDirectory() as folder:
        parquet = Path(folder) / f"cdnow_x{copies}.parquet"
        transactions.write_parquet(parquet)
        embedded, customers = embedded_pipeline(parquet)
        spark = spark_pipeline(parquet)
        size = f"x{copies} ({customers:,} customers, {transactions.height:,} lines)"
        points = {"Patron (embedded, Polars)": embedded, f"Patron on Spark {SPARK_MASTER}": spark}
        rows: list[dict[str, object]] = [
            {
                "workload": "CLV pipeline",
                "size": size,
                "patron_s": embedded,
                "anchor": f"Patron on Spark {SPARK_MASTER}",
                "anchor_s": spark,
                "note": "same results (tests/test_spark.py); Spark pays for its shuffle and Arrow transfers",
                "customers": customers,
                "points": points,
            }
        ]
        for library in ANCHORS:
            if copies > ANCHOR_MAX_COPIES:
                rows.append(
                    {"workload": "CLV pipeline", "size": size, "patron_s": embedded, "anchor": library,
                     "anchor_s": float("nan"), "note": f"not run above x{ANCHOR_MAX_COPIES} (grows linearly; see x100)"}
                )  # fmt: skip
                continue
            seconds, problem = anchor_time(library, "pipeline", parquet)
            if seconds is not None:
                points[library] = seconds
            rows.append(
                {
                    "workload": "CLV pipeline",
                    "size": size,
                    "patron_s": embedded,
                    "anchor": library,
                    "anchor_s": seconds if seconds is not None else float("nan"),
                    "note": problem or f"Patron {seconds / embedded:,.1f}× faster",
                }
            )
    return rows


def plot_scaling(rows: list[dict[str, object]], out: Path) -> Path | None:
    """Seconds against customers, one line per implementation, log-log; None when no pipeline ran."""
    measured = sorted((row for row in rows if "points" in row), key=lambda row: int(row["customers"]))  # type: ignore[call-overload]
    if not measured:
        return None
    import matplotlib  # noqa: PLC0415 - bench extra

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    series: dict[str, list[tuple[int, float]]] = {}
    for row in measured:
        for name, seconds in row["points"].items():  # type: ignore[attr-defined]
            series.setdefault(name, []).append((int(row["customers"]), float(seconds)))  # type: ignore[call-overload]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, values in series.items():
        axes.plot([c for c, _ in values], [s for _, s in values], marker="o", label=name)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("customers (CDNOW replicated)")
    axes.set_ylabel("seconds, whole CLV pipeline")
    axes.set_title(f"CLV pipeline scaling, measured {dt.date.today().isoformat()}")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path = out / "scaling.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
