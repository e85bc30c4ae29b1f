"""The feature frame kept in memory for interactive work: the segment builder's live count and a segment's save.

Building the frame reads every customer's facts (seconds on a base of tens of thousands); a live count asked as
someone types must answer in milliseconds, so each process keeps the last frame it built and reuses it while the
store's data stamp is unchanged. The stamp is one read of the newest id of every table whose rows change
what the frame holds: imports (every change of a customer's record goes through one, the API's included), orders,
interactions, score runs, merges and erasures, and the number of campaign responses. Changes that add no such row
(a merge split) show within ``MAX_AGE_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import polars as pl
from sqlalchemy import Engine, column, func, select, table

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.identity.schema import IdentityMerge
from patron.segments.features import Features, build_features, feature_schema
from patron.value.schema import ScoreRun

MAX_AGE_SECONDS = 600.0
# The erasure ledger belongs to the privacy layer above this one: named, not imported.
_ERASURES = table("erasures", column("id"))
_STAMPED = (
    table_of(s.Customer), table_of(s.ImportRun), table_of(s.Order), table_of(s.Interaction), table_of(s.Campaign),
    table_of(ScoreRun), table_of(IdentityMerge), _ERASURES,
)  # fmt: skip
_STAMP = select(
    *(select(func.max(stamped.c.id)).scalar_subquery() for stamped in _STAMPED),
    select(func.count()).select_from(table_of(s.CampaignResponse)).scalar_subquery(),  # keyed by campaign and person
)


@dataclass(frozen=True)
class _Kept:
    stamp: tuple[object, ...]
    built_at: float
    features: Features


_kept: dict[str, _Kept] = {}
_building = threading.Lock()  # one build at a time: a second request waits for the first one's frame


def data_stamp(engine: Engine) -> tuple[object, ...]:
    """The newest id of each table that changes the frame: equal stamps, the same frame."""
    with engine.connect() as conn:
        return tuple(conn.execute(_STAMP).one())


def current_features(engine: Engine) -> Features:
    """Every customer's features as of the newest order (the default scope), from memory when still current."""
    key = engine.url.render_as_string(hide_password=False)
    stamp = data_stamp(engine)
    with _building:
        kept = _kept.get(key)
        if kept is None or kept.stamp != stamp or time.monotonic() - kept.built_at > MAX_AGE_SECONDS:
            kept = _Kept(stamp, time.monotonic(), build_features(engine))
            _kept[key] = kept
        return kept.features


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
    """Drop every kept frame and schema (tests, and a process that knows the store changed under it)."""
    with _building:
        _kept.clear()
        _schemas.clear()
