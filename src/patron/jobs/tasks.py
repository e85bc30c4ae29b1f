"""The jobs a worker runs. Each opens the store from settings, so any worker process can take any job."""

from __future__ import annotations

import datetime as dt
from typing import Any

from patron.cif.store import make_engine
from patron.cif.stored_results import forget_stored, stored_analyses
from patron.engage.offers import decide_offers
from patron.engage.triggers import fire_for_base
from patron.engage.workflows import follow_up_score_run, score_and_follow_up
from patron.jobs.warm import STORED, warm
from patron.segments.rules import evaluate_segments


def score(source: str | None = None, model: str = "auto", spark_master: str | None = None) -> dict[str, Any]:
    """A score run (embedded, or on Spark when a master is named), then the triggers waiting for fresh scores, the
    offers decided again and the strategy analyses computed and stored for the pages."""
    engine = make_engine()
    try:
        if spark_master:
            from patron.spark.session import spark_session  # noqa: PLC0415 - Spark only when asked for
            from patron.spark.store import spark_score_run  # noqa: PLC0415

            result = spark_score_run(spark_session(spark_master), engine, source=source, model=model)
            followed = follow_up_score_run(engine, result.run_id)
        else:
            result, followed = score_and_follow_up(engine, source=source, model=model)  # type: ignore[arg-type]
        warm(engine, STORED)  # the strategy pages read them from the store
        return {
            "run_id": result.run_id, "customers": result.customers, "model": result.model, "fired": followed.fired,
            "offers_decided": followed.offers_decided, "recommender": followed.recommender,
            "analyses_stored": stored_analyses(engine),
        }  # fmt: skip
    finally:
        engine.dispose()


def refresh_segments() -> dict[str, int]:
    """Recompute every saved segment's members (who joined and who left are written)."""
    engine = make_engine()
    try:
        return evaluate_segments(engine)
    finally:
        engine.dispose()


def daily_triggers(day: str | None = None) -> dict[str, Any]:
    """The once-a-day triggers (anniversaries, renewal dates, idle customers), at most once per customer per day,
    then every customer's offers decided again for the real-time next-best-offer lookup."""
    as_of = dt.date.fromisoformat(day) if day else dt.date.today()
    engine = make_engine()
    try:
        fired = fire_for_base(engine, "daily", as_of.isoformat(), as_of=as_of)
        decided = decide_offers(engine, as_of=as_of)  # recency moved on a day; offers start and end
        with engine.begin() as conn:  # computed afresh: a day's changes that moved no data stamp show in them
            forget_stored(conn)
        warm(engine, STORED)
        return {
            "day": as_of.isoformat(), "fired": len(fired), "offers_decided": decided,
            "analyses_stored": stored_analyses(engine),
        }  # fmt: skip
    finally:
        engine.dispose()


JOBS = {"score": score, "segments": refresh_segments, "daily": daily_triggers}
