"""How the segmentation evolves: who moved where between two runs, value share over time, new and vanished
segments, and a Sankey diagram of the migrations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
import polars as pl
from sqlalchemy import Engine, select

from patron.cif.columns import table_of
from patron.errors import NotFoundError
from patron.segments.schema import SegmentAssignment, SegmentationRun

RUNS = table_of(SegmentationRun)
ASSIGNMENTS = table_of(SegmentAssignment)
NEW, GONE = "new", "gone"


def assignments(engine: Engine, run_id: int) -> pl.DataFrame:
    with engine.connect() as conn:
        if conn.scalar(select(RUNS.c.id).where(RUNS.c.id == run_id)) is None:
            raise NotFoundError(f"there is no segmentation run {run_id}", field="run")
        rows = conn.execute(
            select(ASSIGNMENTS.c.customer_id, ASSIGNMENTS.c.segment, ASSIGNMENTS.c.value).where(
                ASSIGNMENTS.c.run_id == run_id
            )
        ).all()
    return pl.DataFrame(rows, schema={"customer_id": pl.Int64, "segment": pl.Int64, "value": pl.Float64}, orient="row")


def latest_segmentation(engine: Engine) -> dict[str, Any] | None:
    """The newest segmentation run: its id, when, method, how many segments, by what criterion, and each segment's
    description (size, value share, what sets it apart); None before the first run."""
    with engine.connect() as conn:
        row = conn.execute(select(RUNS).order_by(RUNS.c.id.desc()).limit(1)).first()
    return None if row is None else dict(row._mapping)


@dataclass(frozen=True)
class Migration:
    matrix: pl.DataFrame  # from, to, customers: "gone" and "new" for customers in only one run
    new_segments: list[int]  # later segments that no earlier segment mostly feeds
    vanished_segments: list[int]  # earlier segments whose customers mostly went to segments fed by others


def migration(engine: Engine, earlier: int, later: int) -> Migration:
    before = assignments(engine, earlier).select("customer_id", pl.col("segment").cast(pl.String).alias("from"))
    after = assignments(engine, later).select("customer_id", pl.col("segment").cast(pl.String).alias("to"))
    moves = before.join(after, on="customer_id", how="full", coalesce=True).with_columns(
        pl.col("from").fill_null(NEW), pl.col("to").fill_null(GONE)
    )
    matrix = moves.group_by("from", "to").agg(pl.len().alias("customers")).sort("from", "to")
    stayers = matrix.filter((pl.col("from") != NEW) & (pl.col("to") != GONE))
    # Each earlier segment's main destination, and each later segment's main origin.
    destination = stayers.sort("customers", descending=True).group_by("from", maintain_order=True).first()
    origin = stayers.sort("customers", descending=True).group_by("to", maintain_order=True).first()
    fed = set(destination["to"].to_list())
    new_segments = sorted(int(t) for t in after["to"].unique().to_list() if t not in fed)
    heirs = set(origin["from"].to_list())
    vanished = sorted(int(f) for f in before["from"].unique().to_list() if f not in heirs)
    return Migration(matrix, new_segments, vanished)


def value_share_over_time(engine: Engine) -> pl.DataFrame:
    """run, created_at, segment, size, value share: one row per segment of every run."""
    with engine.connect() as conn:
        runs = conn.execute(select(RUNS.c.id, RUNS.c.created_at, RUNS.c.descriptions).order_by(RUNS.c.id)).all()
    rows = [
        {"run": run.id, "created_at": run.created_at, **{k: d[k] for k in ("segment", "size", "value_share")}}
        for run in runs
        for d in run.descriptions
    ]
    schema = {
        "run": pl.Int64,
        "created_at": pl.Datetime,
        "segment": pl.Int64,
        "size": pl.Int64,
        "value_share": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def sankey(migration_result: Migration, earlier: int, later: int) -> go.Figure:
    """A Sankey diagram: earlier segments on the left, later ones on the right, ribbons sized by customers."""
    matrix = migration_result.matrix
    left = sorted(matrix["from"].unique().to_list(), key=_order)
    right = sorted(matrix["to"].unique().to_list(), key=_order)
    labels = [f"run {earlier}: {name}" for name in left] + [f"run {later}: {name}" for name in right]
    index = {("L", name): i for i, name in enumerate(left)} | {
        ("R", name): len(left) + i for i, name in enumerate(right)
    }
    link: dict[str, Any] = {
        "source": [index["L", f] for f in matrix["from"].to_list()],
        "target": [index["R", t] for t in matrix["to"].to_list()],
        "value": matrix["customers"].to_list(),
    }
    figure = go.Figure(go.Sankey(node={"label": labels, "pad": 12}, link=link))
    figure.update_layout(title=f"Customers moving between segments: run {earlier} → run {later}")
    return figure


def _order(name: str) -> tuple[int, int]:
    return (1, 0) if name in (NEW, GONE) else (0, int(name))
