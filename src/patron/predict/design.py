"""From the customer feature frame to a numeric design matrix, the same way at training and at scoring time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from numpy.typing import NDArray

from patron.cif.facts import Scope

# Identifiers and free text never become features.
NEVER_FEATURES = frozenset({"customer_id", "city"})
MAX_LEVELS = 15  # one-hot columns per text field (the rarer levels share "other")


@dataclass
class Design:
    """How each raw field becomes numeric columns; fitted on the training frame."""

    numeric: list[str] = field(default_factory=list)
    medians: dict[str, float] = field(default_factory=dict)
    levels: dict[str, list[str]] = field(default_factory=dict)
    dates: list[str] = field(default_factory=list)
    date_medians: dict[str, float] = field(default_factory=dict)
    as_of: dt.date = dt.date(1970, 1, 1)
    scope: Scope | None = None  # the customer facts' scope the model was trained on

    @property
    def columns(self) -> list[str]:
        names = [*self.numeric, *(f"{name} is missing" for name in self.numeric)]
        names += [f"{name} (days before)" for name in self.dates]
        for name, levels in self.levels.items():
            names += [f"{name} = {level}" for level in levels] + [f"{name} = other"]
        return names

    def source_of(self, column: str) -> str:
        """The raw field a design column comes from (for explanations)."""
        for suffix in (" is missing", " (days before)"):
            if column.endswith(suffix):
                return column.removesuffix(suffix)
        return column.split(" = ", 1)[0]


def fit_design(frame: pl.DataFrame, candidates: list[str], as_of: dt.date) -> Design:
    design = Design(as_of=as_of)
    for name in candidates:
        if name in NEVER_FEATURES:
            continue
        column = frame[name]
        if column.null_count() == len(column) or column.drop_nulls().n_unique() < 2:
            continue  # constant or empty: nothing to learn from
        dtype = column.dtype
        if dtype.is_numeric() or dtype == pl.Boolean:
            design.numeric.append(name)
            design.medians[name] = float(column.cast(pl.Float64).median() or 0.0)  # type: ignore[arg-type]
        elif dtype in (pl.Date, pl.Datetime):
            design.dates.append(name)
            days = frame.select((pl.lit(as_of) - pl.col(name).cast(pl.Date)).dt.total_days().median())[0, 0]
            design.date_medians[name] = float(days or 0.0)
        elif dtype == pl.String:
            counts = column.drop_nulls().value_counts(sort=True)
            design.levels[name] = [str(v) for v in counts[name].head(MAX_LEVELS).to_list()]
    return design


def matrix(design: Design, frame: pl.DataFrame) -> NDArray[np.float64]:
    parts: list[NDArray[np.float64]] = []
    for name in design.numeric:
        values = frame[name].cast(pl.Float64).to_numpy()
        missing = np.isnan(values)
        parts.append(np.where(missing, design.medians[name], values))
        parts.append(missing.astype(np.float64))
    for name in design.dates:
        days = (pl.lit(design.as_of) - frame[name].cast(pl.Date)).dt.total_days()
        values = frame.select(days.cast(pl.Float64))[:, 0].to_numpy()
        parts.append(np.nan_to_num(values, nan=-1.0))
    for name, levels in design.levels.items():
        values = frame[name].to_numpy()
        known = np.zeros(len(values), dtype=bool)
        for level in levels:
            hit = values == level
            known |= hit
            parts.append(hit.astype(np.float64))
        parts.append((~known).astype(np.float64))
    if not parts:
        return np.zeros((frame.height, 0))
    # Columns are built in the same order as Design.columns, except that the missing flags follow their value.
    ordered = [parts[2 * i] for i in range(len(design.numeric))] + [
        parts[2 * i + 1] for i in range(len(design.numeric))
    ]
    ordered += parts[2 * len(design.numeric) :]
    return np.column_stack(ordered)
