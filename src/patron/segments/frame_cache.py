"""The feature frame and its schema kept in memory for interactive work: the segment builder's live count and a
segment's save evaluate rules against the frame the last request built, while the data under it is unchanged
(``cif/stamp.py``), instead of reading every customer's facts again as someone types."""

from __future__ import annotations

import time

import polars as pl
from sqlalchemy import Engine

from patron.cif.stamp import forget_kept, kept
from patron.segments.features import Features, build_features, feature_schema


def current_features(engine: Engine) -> Features:
    """Every customer's features as of the newest order (the default scope), from memory when still current."""
    return kept(engine, "features", lambda: build_features(engine))


SCHEMA_TTL_SECONDS = 60.0
_schemas: dict[str, tuple[float, dict[str, pl.DataType]]] = {}


def cached_feature_schema(engine: Engine, *, refresh: bool = False) -> dict[str, pl.DataType]:
    """The feature schema, re-read at most once a minute: per-event updates must not scan the attribute table."""
    key = engine.url.render_as_string(hide_password=False)
    cached = _schemas.get(key)
    if refresh or cached is None or time.monotonic() - cached[0] > SCHEMA_TTL_SECONDS:
        cached = (time.monotonic(), feature_schema(engine))
        _schemas[key] = cached
    return cached[1]


def forget_features() -> None:
    """Drop every kept frame, schema and result (tests, and a process that knows the store changed under it)."""
    forget_kept()
    _schemas.clear()
