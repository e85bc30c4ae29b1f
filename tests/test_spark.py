"""The Spark path gives the embedded path's results on CDNOW: summaries, fits, score runs, segment members.

Spark runs in ``local[2]`` (two cores, as in CI); on PostgreSQL it reads the order lines and writes the scores
over JDBC (Debian's driver), so the whole production path is exercised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pyspark.sql import SparkSession
from sqlalchemy import Engine

from patron.cif.importer import import_file
from patron.demo import demo_mapping
from patron.demo.cdnow import read_cdnow
from patron.segments.expression import compile_rule
from patron.segments.features import Features, build_features, feature_schema
from patron.segments.rules import members_of
from patron.spark.kernels import to_polars
from patron.spark.segments import features_to_spark, spark_members
from patron.spark.session import spark_session
from patron.spark.store import spark_score_run
from patron.spark.value import fit_purchase_model, fit_spend_model, spark_summary
from patron.value.diagnostics import MODELS
from patron.value.models.gammagamma import GammaGamma
from patron.value.scoring import run_scores, score_customers
from patron.value.summary import purchase_summary
from tests.conftest import SHARED_DATA

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]
CDNOW = SHARED_DATA / "cdnow" / "CDNOW_master.txt"
CALIBRATION_END = dt.date(1997, 9, 30)


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    session = spark_session("local[2]")
    yield session
    session.stop()


def test_summary_and_fits_on_spark_equal_the_embedded_path(spark: SparkSession, tmp_path: Path) -> None:
    transactions = read_cdnow(CDNOW).select("customer_id", "at", "revenue")
    transactions.write_parquet(tmp_path / "orders.parquet")
    embedded = purchase_summary(transactions, calibration_end=CALIBRATION_END)

    distributed = spark_summary(spark.read.parquet(str(tmp_path / "orders.parquet")), calibration_end=CALIBRATION_END)
    frame = to_polars(distributed.frame).sort("customer_id")

    assert distributed.customers == embedded.frame.height == 23_570
    assert distributed.excluded == embedded.excluded
    assert frame.columns == embedded.frame.columns
    assert frame["frequency_holdout"].sum() == 19_684  # the published holdout repeat transactions
    for column in embedded.frame.columns:
        ours, theirs = frame[column], embedded.frame[column]
        if theirs.dtype.is_float():
            # Spark adds a customer's amounts in another order: the last bits of a sum may differ.
            np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-12, atol=1e-9, err_msg=column)
        else:
            assert ours.equals(theirs), column

    for name, model in MODELS.items():
        on_spark = fit_purchase_model(distributed, name)
        assert on_spark.params == model().fit_summary(embedded).params, name  # same histories, same order: exact
    spend = fit_spend_model(distributed)
    expected = GammaGamma().fit_summary(embedded)
    # Mean spends that differ in their last bits move the optimiser's path a little: the same maximum, to the
    # optimiser's tolerance (runs have differed by up to 5e-7).
    np.testing.assert_allclose(list(spend.params.values()), list(expected.params.values()), rtol=1e-5)
    assert spend.log_likelihood == pytest.approx(expected.log_likelihood, rel=1e-9)
    assert spend.excluded == expected.excluded


@pytest.mark.postgres
def test_score_run_on_spark_over_jdbc_equals_the_embedded_run(spark: SparkSession, engine: Engine) -> None:
    result = import_file(engine, CDNOW, demo_mapping("cdnow"))
    assert result.rejected == 0

    embedded = score_customers(engine, model="bgnbd")
    distributed = spark_score_run(spark, engine, model="bgnbd")

    assert distributed.customers == embedded.customers == 23_570
    assert distributed.parameters["bgnbd"] == embedded.parameters["bgnbd"]
    ours = run_scores(engine, distributed.run_id).sort("customer_id")
    theirs = run_scores(engine, embedded.run_id).sort("customer_id")
    assert ours["customer_id"].equals(theirs["customer_id"])
    assert ours["tier"].equals(theirs["tier"])
    assert ours["frequency"].equals(theirs["frequency"])
    np.testing.assert_allclose(ours["p_alive"].to_numpy(), theirs["p_alive"].to_numpy(), rtol=1e-12)
    # Money is stored in cents: a value a hair from half a cent may round the other way.
    assert int((ours["clv_minor"] - theirs["clv_minor"]).abs().max()) <= 1  # type: ignore[arg-type]
    assert ours["revenue_minor"].equals(theirs["revenue_minor"])
    # Ranks agree except among customers whose CLV ties to the last bits (then the order of the tie may differ).
    differing = ours.filter(ours["rank"] != theirs["rank"])
    assert differing.height < ours.height * 0.01
    assert sorted(ours["rank"].to_list()) == list(range(1, ours.height + 1))


def test_segment_members_on_spark_equal_the_embedded_ones(spark: SparkSession, sqlite_engine: Engine) -> None:
    import_file(sqlite_engine, CDNOW, demo_mapping("cdnow"))
    score_customers(sqlite_engine, model="bgnbd")
    features = build_features(sqlite_engine)
    schema = feature_schema(sqlite_engine)
    on_spark = features_to_spark(spark, features)
    rules = [
        'tier == "A"',
        "orders >= 3 and revenue > 100",
        "last_order >= days_ago(200) or p_alive < 0.2",
        'tier in ("B", "C") and not clv > 10',
    ]
    for text in rules:
        rule = compile_rule(text, schema)
        expected = set(members_of(features, rule, schema).to_list())
        found = to_polars(spark_members(on_spark, rule, as_of=features.as_of, schema=schema))["customer_id"]
        assert found.n_unique() == found.len()
        assert set(found.to_list()) == expected, text
        assert 0 < len(expected) < features.customers.height, text  # a rule that tells customers apart


def test_bought_rules_see_each_customers_category_purchases_on_spark(spark: SparkSession) -> None:
    as_of = dt.date(2026, 6, 30)
    customers = pl.DataFrame({"customer_id": [1, 2, 3, 4], "orders": [3, 1, 2, 5]})
    categories = pl.DataFrame(
        {
            "customer_id": [1, 2, 2, 4],
            "category": ["tents", "tents", "stoves", "stoves"],
            "last_day": [dt.date(2026, 5, 1), dt.date(2024, 1, 1), dt.date(2026, 6, 1), dt.date(2026, 6, 2)],
        }
    )
    features = Features(customers, categories, as_of)
    schema: dict[str, pl.DataType] = {"customer_id": pl.Int64(), "orders": pl.Int64()}
    for text, expected in [
        ('bought("tents", months=12)', {1}),
        ('bought("tents")', {1, 2}),
        ('bought("stoves") and orders < 5', {2}),
        ('not bought("tents")', {3, 4}),
    ]:
        rule = compile_rule(text, schema)
        assert set(members_of(features, rule, schema).to_list()) == expected, text
        found = spark_members(features_to_spark(spark, features).repartition(3), rule, as_of=as_of, schema=schema)
        assert set(to_polars(found)["customer_id"].to_list()) == expected, text
