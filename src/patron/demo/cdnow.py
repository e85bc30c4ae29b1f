"""CDNOW's whitespace-separated purchase files read straight into a transactions frame.

The value engine reads from the store; this reader lets tests and benchmarks start from the published files
exactly as the papers did, without an import in between.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

SAMPLE_COLUMNS = ("customer_id", "sample_id", "date", "cds", "dollars")
MASTER_COLUMNS = ("customer_id", "date", "cds", "dollars")


def read_cdnow(path: Path) -> pl.DataFrame:
    """``customer_id``, ``at`` (date), ``quantity``, ``revenue`` from CDNOW_master.txt or CDNOW_sample.txt."""
    lines = pl.read_csv(path, has_header=False, new_columns=["line"], separator="\x1f", quote_char=None)
    fields = lines.select(
        pl.col("line").str.strip_chars().str.split(by=" ").list.eval(pl.element().filter(pl.element() != ""))
    )
    width = fields["line"].list.len().max()
    names = SAMPLE_COLUMNS if width == len(SAMPLE_COLUMNS) else MASTER_COLUMNS
    table = fields.select(pl.col("line").list.to_struct(fields=list(names))).unnest("line")
    table = table.filter(pl.col("date").str.contains(r"^\d{8}$"))  # drops the master file's header line
    return table.select(
        pl.col("customer_id").cast(pl.Int64),
        pl.col("date").str.to_date("%Y%m%d").alias("at"),
        pl.col("cds").cast(pl.Int64).alias("quantity"),
        pl.col("dollars").cast(pl.Float64).alias("revenue"),
    )
