"""Price elasticity from line items: recovered on simulated data with a known elasticity per segment (products,
seasons, changing list prices and a quantity break), refused where prices never changed, and estimated per segment
on Online Retail II through the store and the page."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from patron.errors import InvalidInputError
from patron.strategy.elasticity import purchase_cells, segment_elasticities
from tests.conftest import SHARED_DATA, needs

TRUE = {"small": -1.8, "large": -0.6}


def simulated_lines(seed: int = 17) -> pl.DataFrame:
    """Products with their own levels, weeks with their own (season), list prices that change, two segments with
    their own elasticity, and quantity breaks: 3,000 or more units are sold 20 % below the list price."""
    rng = np.random.default_rng(seed)
    rows = []
    level = rng.normal(0, 0.5, 80)
    base_price = np.exp(rng.normal(1, 0.6, 80))
    season = rng.normal(0, 0.3, 40)
    for week in range(40):
        list_price = base_price * np.exp(rng.normal(0, 0.15, 80))  # the shop changes prices week to week
        for customer in range(120):
            segment = "small" if customer < 60 else "large"
            for product in rng.choice(80, 6, replace=False):
                mean = 7.0 + level[product] + season[week] + TRUE[segment] * np.log(list_price[product])
                quantity = max(1, round(float(np.exp(mean + rng.normal(0, 0.4)))))
                paid = list_price[product] * (0.8 if quantity >= 3000 else 1.0)
                rows.append(
                    (
                        customer,
                        segment,
                        f"P{product}",
                        dt.datetime(2024, 1, 1) + dt.timedelta(weeks=week),
                        float(quantity),
                        float(paid),
                    )
                )
    return pl.DataFrame(
        rows, schema=["customer_id", "segment", "product", "at", "quantity", "unit_price"], orient="row"
    )


def test_a_known_elasticity_is_recovered_per_segment() -> None:
    lines = simulated_lines()
    found, customers = segment_elasticities(purchase_cells(lines))
    by_segment = {item.segment: item for item in found}
    for segment, truth in TRUE.items():
        estimate = by_segment[segment]
        assert estimate.low < truth < estimate.high, (segment, estimate)
        assert estimate.high < 0
        assert estimate.elasticity == pytest.approx(truth, abs=0.15)
    shrunk = customers.group_by("segment").agg(pl.col("shrunk").median())
    medians = dict(shrunk.iter_rows())
    assert medians["small"] < medians["large"] < 0


def test_without_price_variation_there_is_no_estimate() -> None:
    flat = simulated_lines().with_columns(pl.lit(2.0).alias("unit_price"))
    with pytest.raises(InvalidInputError, match="list price changed"):
        segment_elasticities(purchase_cells(flat))


@needs(SHARED_DATA / "online-retail-ii")
def test_online_retail_elasticity_per_segment_is_negative_with_intervals(tmp_path: Path) -> None:
    from patron.cif.importer import import_file  # noqa: PLC0415
    from patron.cif.store import make_engine, migrate  # noqa: PLC0415
    from patron.demo import demo_mapping  # noqa: PLC0415
    from patron.strategy.plans import price_elasticity  # noqa: PLC0415

    engine = make_engine(f"sqlite:///{tmp_path / 'patron.db'}")
    migrate(engine)
    mapping = demo_mapping("online-retail-ii")
    raw = pl.read_parquet(SHARED_DATA / mapping.file)  # type: ignore[operator]
    part = tmp_path / "first-half.parquet"
    raw.head(200_000).write_parquet(part)  # half a year of lines keeps the test quick
    import_file(engine, part, mapping, rejects_dir=tmp_path)
    scope, found, customers = price_elasticity(engine, by="country")
    assert scope.source == "online-retail"
    uk = next(item for item in found if item.segment == "GB")
    assert uk.low < uk.elasticity < uk.high < 0  # the data support a negative elasticity for British buyers
    assert uk.lines > 10_000
    assert customers.height > 1_000
