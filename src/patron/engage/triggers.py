"""Event-oriented triggers: "first child born → guide for new parents", "complaint from an A-tier customer →
retention call". A trigger listens for one event type, checks a rule about the customer, and acts — once per
customer and occurrence (a re-delivered event does not fire twice). A trigger whose action emits an event that
would, through other triggers, lead back to its own event is refused when it is created.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from patron.cif.columns import table_of
from patron.cif.ledger import trigger_emitted
from patron.engage.schema import Trigger, TriggerFiring
from patron.errors import ConflictError, InvalidInputError
from patron.segments.expression import compile_rule
from patron.segments.features import build_features, feature_schema, parts_for
from patron.segments.frame_cache import cached_feature_schema
from patron.segments.rules import compile_cached, members_of
from patron.service.cases import open_case

TRIGGERS = table_of(Trigger)
FIRINGS = table_of(TriggerFiring)
ACTIONS = ("open_case", "emit_event")
MAX_DEPTH = 5


@dataclass(frozen=True)
class Firing:
    trigger: str
    outcome: str


def _emits(action: str, params: dict[str, Any]) -> str | None:
    return str(params["event"]) if action == "emit_event" else None


def create_trigger(
    engine: Engine, name: str, *, on_event: str, action: str, params: dict[str, Any], condition: str | None = None
) -> int:
    if action not in ACTIONS:
        raise InvalidInputError(f"action must be one of {', '.join(ACTIONS)}", field="action")
    if action == "open_case" and not params.get("subject"):
        raise InvalidInputError("an open_case trigger needs a subject", field="params")
    if action == "emit_event" and not params.get("event"):
        raise InvalidInputError("an emit_event trigger needs the event type it emits", field="params")
    if condition:
        compile_rule(condition, feature_schema(engine))
    with engine.connect() as conn:
        existing = [(row.name, row.on_event, _emits(row.action, row.params)) for row in conn.execute(select(TRIGGERS))]
    loop = _cycle([*existing, (name, on_event, _emits(action, params))])
    if loop:
        raise InvalidInputError(f"this trigger would make a loop: {' → '.join(loop)}", field="params")
    with engine.begin() as conn:
        if conn.scalar(select(TRIGGERS.c.id).where(TRIGGERS.c.name == name)) is not None:
            raise ConflictError(f"there is already a trigger {name!r}", field="name")
        row = {"name": name, "on_event": on_event, "condition": condition, "action": action, "params": params}
        return int(conn.execute(insert(TRIGGERS).values(row).returning(TRIGGERS.c.id)).scalar_one())


def _cycle(triggers: list[tuple[str, str, str | None]]) -> list[str] | None:
    """A path of event types that returns to its start, if the triggers make one (depth-first search)."""
    edges: dict[str, list[str]] = {}
    for _name, listens, emits in triggers:
        if emits is not None:
            edges.setdefault(listens, []).append(emits)

    def visit(node: str, path: list[str]) -> list[str] | None:
        for following in edges.get(node, []):
            if following in path:
                return [*path[path.index(following) :], following]
            found = visit(following, [*path, following])
            if found:
                return found
        return None

    for start in edges:
        found = visit(start, [start])
        if found:
            return found
    return None


def listened_events(engine: Engine) -> set[str]:
    """The event types some enabled trigger listens for (so ingest can skip the rest cheaply)."""
    with engine.connect() as conn:
        return set(conn.scalars(select(TRIGGERS.c.on_event).where(TRIGGERS.c.enabled).distinct()))


def fire_triggers(
    engine: Engine, customer_id: int, event: str, occurrence: str, *, as_of: dt.date | None = None, depth: int = 0
) -> list[Firing]:
    """Run the enabled triggers listening for ``event`` for this customer; each fires at most once per occurrence."""
    with engine.connect() as conn:
        triggers = conn.execute(select(TRIGGERS).where(TRIGGERS.c.on_event == event, TRIGGERS.c.enabled)).all()
    if not triggers or depth > MAX_DEPTH:
        return []
    # On the ingest path: the cached schema, so no scan of the attribute table per event.
    rules = {t.id: compile_cached(engine, t.condition)[0] for t in triggers if t.condition}
    schema = cached_feature_schema(engine)
    needed = parts_for(field for rule in rules.values() for field in rule.fields)
    features = build_features(engine, as_of=as_of, customer_ids=[customer_id], parts=needed) if rules else None
    fired: list[Firing] = []
    for trigger in triggers:
        rule = rules.get(trigger.id)
        if rule is not None and features is not None and len(members_of(features, rule, schema)) != 1:
            continue
        outcome = _fire(engine, trigger, customer_id, occurrence, as_of=as_of, depth=depth)
        if outcome is not None:
            fired.append(Firing(trigger.name, outcome))
    return fired


# Events no customer sends: the scheduler's daily tick, and a finished score run (so rules on tier, P(alive) or
# CLV are checked against fresh scores). Triggers on them are checked over the whole base at once.
BASE_EVENTS = ("daily", "scored")


def fire_for_base(engine: Engine, event: str, occurrence: str, *, as_of: dt.date | None = None) -> list[Firing]:
    """Fire every enabled trigger on ``event`` for each customer its rule selects, once per ``occurrence``.

    ``daily`` with the date as occurrence is "at most once a day per customer"; ``scored`` with the run id is
    "once per score run". A customer who already fired for the occurrence is skipped, so a re-run is harmless.
    """
    if event not in BASE_EVENTS:
        raise InvalidInputError(
            f"{event!r} is not a scheduled event; use one of {', '.join(BASE_EVENTS)}", field="event"
        )
    with engine.connect() as conn:
        triggers = conn.execute(select(TRIGGERS).where(TRIGGERS.c.on_event == event, TRIGGERS.c.enabled)).all()
    if not triggers:
        return []
    schema = feature_schema(engine)
    rules = {t.id: compile_rule(t.condition, schema) for t in triggers if t.condition}
    needed = parts_for(field for rule in rules.values() for field in rule.fields)
    features = build_features(engine, as_of=as_of, parts=needed)
    fired: list[Firing] = []
    for trigger in triggers:
        rule = rules.get(trigger.id)
        members = members_of(features, rule, schema) if rule else features.customers["customer_id"]
        with engine.connect() as conn:
            done = set(
                conn.scalars(
                    select(FIRINGS.c.customer_id).where(
                        FIRINGS.c.trigger_id == trigger.id, FIRINGS.c.occurrence == occurrence
                    )
                )
            )
        for customer_id in members.to_list():
            if customer_id in done:
                continue
            outcome = _fire(engine, trigger, customer_id, occurrence, as_of=as_of, depth=0)
            if outcome is not None:
                fired.append(Firing(trigger.name, outcome))
    return fired


def _fire(
    engine: Engine, trigger: Any, customer_id: int, occurrence: str, *, as_of: dt.date | None, depth: int
) -> str | None:
    """Claim the (trigger, customer, occurrence) firing, act, record the outcome; None if it had fired already."""
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(FIRINGS).values(
                    trigger_id=trigger.id, customer_id=customer_id, occurrence=occurrence, outcome="firing"
                )
            )
    except IntegrityError:
        return None  # already fired for this occurrence
    outcome = _act(engine, trigger, customer_id=customer_id, occurrence=occurrence, as_of=as_of, depth=depth)
    with engine.begin() as conn:
        conn.execute(
            FIRINGS.update()
            .where(
                FIRINGS.c.trigger_id == trigger.id,
                FIRINGS.c.customer_id == customer_id,
                FIRINGS.c.occurrence == occurrence,
            )
            .values(outcome=outcome[:200])
        )
    return outcome


def _act(engine: Engine, trigger: Any, *, customer_id: int, occurrence: str, as_of: dt.date | None, depth: int) -> str:
    params = trigger.params
    if trigger.action == "open_case":
        opened = open_case(
            engine, customer_id, subject=str(params["subject"]), kind=str(params.get("kind", "request")),
            priority=str(params.get("priority", "normal")), channel="internal", source="trigger",
            case_key=f"{trigger.name}:{customer_id}:{occurrence}"[:128],
        )  # fmt: skip
        return f"opened case {opened.id}"
    event = str(params["event"])
    key = f"{trigger.name}:{customer_id}:{occurrence}"[:128]  # one per customer: base events share occurrences
    with engine.begin() as conn:
        trigger_emitted(conn, trigger=trigger.name, customer_id=customer_id, event=event, key=key, because=occurrence)
    fire_triggers(engine, customer_id, event, key, as_of=as_of, depth=depth + 1)
    return f"emitted {event}"
