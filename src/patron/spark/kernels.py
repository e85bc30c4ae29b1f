"""Run a Polars function on every partition of a Spark DataFrame, through Arrow (``mapInArrow``).

This is how the Spark path reuses the embedded path's code instead of restating it in Spark SQL: Spark
partitions, shuffles and schedules; each partition is handed to the very function the embedded path calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import polars as pl
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
from pyspark.sql.types import StructType

Kernel = Callable[[pl.DataFrame], pl.DataFrame]


def map_partitions(frame: DataFrame, kernel: Kernel, *, whole_partition: bool = False) -> DataFrame:
    """``kernel`` applied to ``frame`` batch by batch, or to each whole partition when rows must meet.

    The output schema is found by running the kernel on an empty frame, so it is always the kernel's own.
    """
    names = frame.columns
    # Spark resolves a name with a dot as struct access, and features are called attributes.plan: hide the dots.
    frame = frame.toDF(*(_hidden(name) for name in names))
    source = to_arrow_schema(frame.schema, timezone="UTC")
    empty = kernel(_to_polars(source.empty_table()).rename(dict(zip(frame.columns, names, strict=True))))
    produced = empty.columns
    output: StructType = from_arrow_schema(_arrow(empty.rename(_hidden)).schema)
    target = to_arrow_schema(output, timezone="UTC")

    def apply(table: pa.Table) -> Iterator[pa.RecordBatch]:
        result = kernel(_to_polars(table).rename(dict(zip(table.column_names, names, strict=True))))
        yield from _arrow(result.rename(_hidden)).cast(target).to_batches()

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        if whole_partition:
            rows = [batch for batch in batches if batch.num_rows]
            if rows:
                yield from apply(pa.Table.from_batches(rows))
            return
        for batch in batches:
            if batch.num_rows:
                yield from apply(pa.Table.from_batches([batch]))

    return frame.mapInArrow(run, output).toDF(*produced)


def _hidden(name: str) -> str:
    return name.replace(".", "\N{MIDDLE DOT}")


def to_polars(frame: DataFrame) -> pl.DataFrame:
    """Collect a (small) Spark DataFrame to the driver as Polars."""
    return _to_polars(frame.toArrow())


def from_polars(spark: SparkSession, frame: pl.DataFrame) -> DataFrame:
    """A Spark DataFrame from a Polars one on the driver (small tables: forecasts, parameters)."""
    return spark.createDataFrame(_arrow(frame))


def _to_polars(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _arrow(frame: pl.DataFrame) -> pa.Table:
    # Spark reads plain and large strings, not Arrow's newer string views.
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())
