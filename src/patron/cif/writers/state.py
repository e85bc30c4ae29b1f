"""What every writer of an import batch shares: the run's state, its caches and the line outcomes.

The bottom of ``cif/writers/``: the writers of identities, customers, purchases and relationships build on it, and
``BatchWriter`` (in ``__init__``) puts them together. Nothing here imports a writer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl

from patron.cif.mapping import Mapping
from patron.cif.reader import Reject

UPDATED, WRITTEN = 1, 2
# Customer columns a mapping fills directly; acquisition cost and its currency are derived from the mapped cost.
CUSTOMER_FIELDS = (
    "kind",
    "status",
    "display_name",
    "first_name",
    "last_name",
    "acquired_on",
    "acquisition_channel",
)
UNKNOWN_CUSTOMER = "no customer with this id in this source"
IN_CHUNK = 5_000
ORDER_KEY = "__order_key__"
LINE_NO = "__line_no__"
PAYMENT_SEQUENCE = "__payment_sequence__"
RETURN = "__return__"  # the row is a cancellation or return (the mapping's [orders.returns] rules)
RETURN_SUFFIX = ":return"  # the key of the return part of an order that holds both
# A product, or a customer on many lines, is described by its last line in the file: a stored one is brought up to
# date from that line only, so batches describing it differently (a shop renames a product) do not take turns
# changing it, and a re-run of the file changes nothing.
DESCRIBES_PRODUCT = "__describes_product__"
DESCRIBES_CUSTOMER = "__describes_customer__"


def interaction_key_column(index: int) -> str:
    return f"__interaction_key_{index}__"


def chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


class LineOutcomes:
    """Each source line's outcome (nothing, UPDATED, WRITTEN; the higher one wins), one byte per line: a dictionary
    of seven million lines took longer to fill and half a gigabyte more than the import's own data."""

    def __init__(self) -> None:
        self._by_line = np.zeros(1024, dtype=np.uint8)

    def mark(self, lines: Iterable[int] | np.ndarray, outcome: int) -> None:
        index = np.asarray(lines if isinstance(lines, np.ndarray) else list(lines), dtype=np.int64)
        if index.size == 0:
            return
        top = int(index.max()) + 1
        if top > self._by_line.size:
            grown = np.zeros(max(top, 2 * self._by_line.size), dtype=np.uint8)
            grown[: self._by_line.size] = self._by_line
            self._by_line = grown
        self._by_line[index] = np.maximum(self._by_line[index], outcome)

    def changed(self) -> int:
        """How many lines wrote or changed something so far."""
        return int(np.count_nonzero(self._by_line))

    def count(self, outcome: int, *, except_lines: Iterable[int] = ()) -> int:
        """How many lines ended with ``outcome``, leaving out ``except_lines`` (the rejected ones)."""
        chosen = self._by_line == outcome
        excluded = np.asarray(list(except_lines), dtype=np.int64)
        excluded = excluded[excluded < chosen.size]
        return int(chosen.sum() - chosen[excluded].sum())


@dataclass
class WriterState:
    """One import run's state: the mapping, each line's outcome, counts, rejects, and natural-key caches."""

    mapping: Mapping
    status: LineOutcomes = field(default_factory=LineOutcomes)
    counts: dict[str, int] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    customer_ids: dict[str, int] = field(default_factory=dict)
    category_ids: dict[str, int] = field(default_factory=dict)
    product_ids: dict[str, int] = field(default_factory=dict)
    campaign_ids: dict[str, int] = field(default_factory=dict)

    @property
    def system(self) -> str:
        return self.mapping.source.system

    @property
    def currency(self) -> str:
        return self.mapping.source.currency

    def _mark(self, lines: Iterable[int] | np.ndarray, outcome: int) -> None:
        self.status.mark(lines, outcome)

    def _count(self, name: str, amount: int = 1) -> None:
        if amount:
            self.counts[name] = self.counts.get(name, 0) + amount


def fresh_and_changed(
    wanted: pl.DataFrame, stored: pl.DataFrame, keys: list[str], *, empty_keeps_stored: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of ``wanted`` not stored yet (by ``keys``), and those stored with another value in a column of
    ``stored`` that is not a key: the one comparison of what a file says with what the store holds.

    ``empty_keeps_stored``: an empty value in ``wanted`` never counts as a change, and the changed rows come back
    with the stored value in its place (a file that leaves a field empty does not clear it)."""
    values = [name for name in stored.columns if name not in keys]
    both = wanted.join(stored.with_columns(pl.lit(True).alias("__stored__")), on=keys, how="left", suffix="__old")
    is_new = pl.col("__stored__").is_null()
    differences = [pl.col(name).ne_missing(pl.col(f"{name}__old")) for name in values]
    if empty_keeps_stored:
        differences = [pl.col(name).is_not_null() & differs for name, differs in zip(values, differences, strict=True)]
    differs = pl.any_horizontal(differences)
    changed = both.filter(~is_new & differs)
    if empty_keeps_stored:
        changed = changed.with_columns(pl.coalesce(name, f"{name}__old").alias(name) for name in values)
    return both.filter(is_new).select(wanted.columns), changed.select(wanted.columns)


def optional_column(batch: pl.DataFrame, name: str, dtype: pl.DataType | type[pl.DataType] = pl.String) -> pl.Expr:
    """A column the mapping may leave out: null in every row where it does."""
    return pl.col(name) if name in batch.columns else pl.lit(None, dtype=dtype)


def jsonable(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
