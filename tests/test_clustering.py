"""Needs-based segmentation on CDNOW: two runs (calibration period, full data) and the migration between them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import polars as pl
import pytest
from sqlalchemy import Engine

from patron.errors import InvalidInputError
from patron.segments.clustering import segment_customers
from patron.segments.evolution import migration, sankey, value_share_over_time
from tests.conftest import NEEDS_SHARED_DATA, demo_store

pytestmark = [pytest.mark.slow, NEEDS_SHARED_DATA, pytest.mark.xdist_group("clustering")]  # one store


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    yield from demo_store(tmp_path_factory, "cdnow")


def test_migration_between_calibration_and_full_runs_adds_up(cdnow: Engine) -> None:
    earlier = segment_customers(cdnow, as_of=dt.date(1997, 9, 30), method="kmeans", k_range=range(2, 6))
    later = segment_customers(cdnow, method="gmm", k_range=range(2, 6))
    assert earlier.criterion["name"] == "highest silhouette"
    assert later.criterion["name"] == "lowest BIC"
    assert earlier.segments == earlier.criterion["chosen"]
    assert sum(d["size"] for d in earlier.descriptions) == 23570
    assert sum(d["value_share"] for d in later.descriptions) == pytest.approx(1.0)
    shares = [d["value_share"] for d in earlier.descriptions]
    assert shares == sorted(shares, reverse=True)  # segment 1 is the most valuable
    assert all(d["summary"] and len(d["distinguishing"]) == min(3, len(d["means"])) for d in later.descriptions)

    moved = migration(cdnow, earlier.run_id, later.run_id)
    row_sums = dict(moved.matrix.group_by("from").agg(pl.col("customers").sum()).iter_rows())
    sizes = {str(d["segment"]): d["size"] for d in earlier.descriptions}
    assert row_sums == sizes  # everyone in the earlier run is somewhere in the later one
    column_sums = dict(moved.matrix.group_by("to").agg(pl.col("customers").sum()).iter_rows())
    assert column_sums == {str(d["segment"]): d["size"] for d in later.descriptions}

    history = value_share_over_time(cdnow)
    assert history["run"].unique().sort().to_list() == [earlier.run_id, later.run_id]
    figure = sankey(moved, earlier.run_id, later.run_id)
    assert sum(figure.data[0].link.value) == 23570


def test_too_few_customers_to_segment(cdnow: Engine) -> None:
    with pytest.raises(InvalidInputError, match="too few to segment"):
        segment_customers(cdnow, population="revenue > 3000")
