"""Spark and the store: read order lines (PostgreSQL over JDBC, or a Parquet export), write score runs back."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Unpack

import polars as pl
from pyspark.sql import DataFrame, SparkSession
from sqlalchemy import Engine, func, select

from patron.cif import schema as cif
from patron.cif.facts import Scope, resolve_scope
from patron.errors import InvalidInputError
from patron.spark.kernels import from_polars, map_partitions, to_polars
from patron.spark.value import fit_purchase_model, fit_spend_model, spark_lifetime_values, spark_summary
from patron.value.scoring import (
    RunOptions,
    RunSettings,
    ScoreRunResult,
    delete_run,
    fit_outcome,
    insert_run,
    insert_scores,
    run_record,
    score_rows,
)
from patron.value.transactions import load_transactions, to_major_units, transactions_query

ORDERS = cif.Order.__table__.c


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def jdbc_options(engine: Engine) -> dict[str, str]:
    """The store's connection as Spark JDBC options (PostgreSQL only; the driver jar comes with the session)."""
    if not is_postgresql(engine):
        raise InvalidInputError("Spark reads the store over JDBC only from PostgreSQL; export SQLite to Parquet")
    url = engine.url
    options = {
        "url": f"jdbc:postgresql://{url.host or 'localhost'}:{url.port or 5432}/{url.database}",
        "driver": "org.postgresql.Driver",
        "user": url.username or "postgres",
        # Timestamps in the store carry no zone: read them as such, never shifted by a JVM time zone.
        "preferTimestampNTZ": "true",
    }
    if url.password:
        options["password"] = str(url.password)
    return options


def read_store_transactions(spark: SparkSession, engine: Engine, scope: Scope, *, partitions: int = 8) -> DataFrame:
    """The scope's order lines, read by Spark in ``partitions`` parallel JDBC queries split on customer id."""
    query = transactions_query(scope).compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        low, high = conn.execute(
            select(func.min(ORDERS.customer_id), func.max(ORDERS.customer_id)).where(
                ORDERS.source == scope.source, ORDERS.currency == scope.currency
            )
        ).one()
    if low is None:
        raise InvalidInputError(f"there are no orders for {scope.source} in {scope.currency}", field="source")
    raw = (
        spark.read.format("jdbc")
        .options(**jdbc_options(engine))
        .option("dbtable", f"({query}) AS order_lines")
        .option("partitionColumn", "customer_id")
        .option("lowerBound", str(low))
        .option("upperBound", str(int(high) + 1))
        .option("numPartitions", str(partitions))
        .option("fetchsize", "10000")
        .load()
    )
    currency = scope.currency
    return map_partitions(raw, lambda frame: to_major_units(frame, currency))


def export_transactions(engine: Engine, scope: Scope, path: Path) -> int:
    """Write the scope's order lines to Parquet for Spark (the way out of an embedded SQLite store)."""
    frame = load_transactions(engine, scope)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    return frame.height


def spark_score_run(
    spark: SparkSession,
    engine: Engine,
    *,
    transactions: DataFrame | None = None,
    model: str = "bgnbd",
    **options: Unpack[RunOptions],
) -> ScoreRunResult:
    """:func:`patron.value.scoring.score_customers` on Spark, stored as a score run like any other.

    ``transactions`` default: the store's order lines (over JDBC from PostgreSQL; from SQLite through the driver).
    """
    given = RunSettings.of(options)
    say, settings, period, as_of, tier_cuts, note = (
        given.say, given.settings, given.period, given.as_of, given.tier_cuts, given.note
    )  # fmt: skip
    scope = resolve_scope(engine, options.get("source"), options.get("currency"))
    if transactions is None:
        say(f"reading orders of {scope.source} in {scope.currency}")
        if is_postgresql(engine):
            transactions = read_store_transactions(spark, engine, scope)
        else:
            transactions = from_polars(spark, load_transactions(engine, scope))
    summary = spark_summary(transactions, observation_end=as_of, period=period)
    say(f"fitting {model} on {summary.customers:,} customers")
    purchases = fit_purchase_model(summary, model)
    spend = fit_spend_model(summary)
    say("computing lifetime values")
    scores = spark_lifetime_values(summary, purchases, spend, settings, tier_cuts)
    excluded, parameters = fit_outcome(model, purchases, spend, summary.excluded)
    run = run_record(
        scope=scope, as_of=summary.observation_end, model=model, parameters=parameters,
        log_likelihood=purchases.log_likelihood, period=period, settings=settings, tier_cuts=tier_cuts,
        excluded=excluded, note=note or "computed on Spark", customers=summary.customers,
    )  # fmt: skip
    run_id = store_spark_scores(engine, scores, run)
    say(f"stored score run {run_id}")
    summary.frame.unpersist()
    return ScoreRunResult(
        run_id, scope, model, parameters, purchases.log_likelihood, summary.customers, summary.observation_end,
        excluded,
    )  # fmt: skip


def store_spark_scores(engine: Engine, scores: DataFrame, run: dict[str, Any]) -> int:
    """Insert the run, then its scores: by JDBC from the executors on PostgreSQL, through the driver on SQLite."""
    run_id = insert_run(engine, run)
    currency = run["currency"]

    def rows_of(frame: pl.DataFrame) -> pl.DataFrame:
        return score_rows(frame, currency).with_columns(pl.lit(run_id).alias("run_id"))

    rows = map_partitions(scores, rows_of)
    try:
        if is_postgresql(engine):
            options = {**jdbc_options(engine), "batchsize": "10000", "reWriteBatchedInserts": "true"}
            options.pop("preferTimestampNTZ")
            rows.write.format("jdbc").options(**options).option("dbtable", "customer_scores").mode("append").save()
        else:
            insert_scores(engine, to_polars(rows))
    except Exception:
        delete_run(engine, run_id)  # stored whole or not at all, as on the embedded path
        raise
    return run_id
