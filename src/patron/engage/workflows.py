"""The loop's workflows, the same whatever starts them (the CLI, the API, a background job).

Scoring is not done when the scores are stored: the triggers waiting for fresh scores fire and every customer's
offers are decided again (eligibility rules read the new tiers and values), or stored next-best offers go stale.
An ingested event is not done when it is stored: the triggers listening for it fire and the segments that read
interaction counts are brought up to date for its customer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Unpack

from sqlalchemy import Engine

from patron.cif.events import EventIn, IngestResult, ingest_events
from patron.engage.offers import decide_offers
from patron.engage.recommendations import train_recommendations
from patron.engage.triggers import fire_for_base, fire_triggers, listened_events
from patron.errors import InvalidInputError
from patron.segments.rules import affected_by, apply_event
from patron.value.scoring import ModelName, RunOptions, ScoreRunResult, score_customers


@dataclass(frozen=True)
class ScoreFollowUp:
    run_id: int
    fired: int
    offers_decided: int
    recommender: str  # the model chosen and stored, or why none was trained


def follow_up_score_run(engine: Engine, run_id: int) -> ScoreFollowUp:
    """What a new score run sets off: the ``scored`` triggers, the offers decided again, and the recommender
    retrained on the purchases (when there are products to recommend)."""
    fired = fire_for_base(engine, "scored", f"run-{run_id}")
    decided = decide_offers(engine)
    try:
        trained = train_recommendations(engine)
        recommender = f"{trained.model} (run {trained.run_id})"
    except InvalidInputError as error:  # no product-level purchases, or too short a history to judge one
        recommender = f"none: {error}"
    return ScoreFollowUp(run_id, len(fired), decided, recommender)


def score_and_follow_up(
    engine: Engine, *, model: ModelName = "auto", **options: Unpack[RunOptions]
) -> tuple[ScoreRunResult, ScoreFollowUp]:
    """Fit, score and store a run (``value.scoring.score_customers``), then follow it up."""
    result = score_customers(engine, model=model, **options)
    return result, follow_up_score_run(engine, result.run_id)


@dataclass
class Ingested:
    result: IngestResult
    triggers_fired: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**self.result.as_dict(), "triggers_fired": self.triggers_fired}


def ingest_and_follow_up(
    engine: Engine, events: Sequence[EventIn], *, resolve: Callable[[str], int] | None = None
) -> Ingested:
    """Store the events, run the triggers listening for them, and keep interaction-count segments current."""
    result = ingest_events(engine, list(events), resolve=resolve)
    listened = listened_events(engine) if result.stored else set()
    fired = [
        firing.trigger
        for interaction, customer, kind in result.stored
        if kind in listened
        for firing in fire_triggers(engine, customer, kind, f"interaction:{interaction}")
    ]
    if result.stored and affected_by(engine, "interaction"):
        for customer in sorted({customer for _, customer, _ in result.stored}):
            apply_event(engine, customer, "interaction")
    return Ingested(result, fired)
