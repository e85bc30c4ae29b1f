"""Rule segments: save a rule, preview its count, evaluate membership set-wise, keep it current per event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import polars as pl
from sqlalchemy import Engine, Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from patron.cif.columns import table_of, utcnow
from patron.cif.ledger import audit_row, audited, no_such_customer
from patron.cif.store import id_by_key
from patron.errors import ConflictError, InvalidInputError, NotFoundError
from patron.segments.expression import CompiledRule, Context, SegmentRuleError, compile_rule
from patron.segments.features import EVENT_FIELDS, Features, build_features, parts_for
from patron.segments.frame_cache import cached_feature_schema, current_features
from patron.segments.schema import Segment, SegmentMember, SegmentSize

SEGMENTS = table_of(Segment)
MEMBERS = table_of(SegmentMember)
SIZES = table_of(SegmentSize)


def compile_cached(engine: Engine, expression: str) -> tuple[CompiledRule, dict[str, pl.DataType]]:
    """A saved rule compiled against the cached schema, re-read once if the rule names a field newer than it."""
    try:
        schema = cached_feature_schema(engine)
        return compile_rule(expression, schema), schema
    except SegmentRuleError:
        schema = cached_feature_schema(engine, refresh=True)
        return compile_rule(expression, schema), schema


@dataclass(frozen=True)
class Preview:
    count: int
    customers: int
    sample: pl.DataFrame


def _compile(engine: Engine, expression: str) -> CompiledRule:
    return compile_cached(engine, expression)[0]


def create_segment(engine: Engine, name: str, expression: str, description: str | None = None) -> int:
    """Save a segment after checking its rule; its members are computed by :func:`evaluate_segments`."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInputError("a segment needs a name of 1 to 100 characters", field="name")
    if "/" in name:  # the segment's page is /segments/NAME: a slash would make it a different address
        raise InvalidInputError(
            "a segment's name cannot hold a '/' (it is part of the segment's address)", field="name"
        )
    rule = _compile(engine, expression)
    try:
        with engine.begin() as conn:
            row = {"name": name, "expression": rule.text, "description": description, "fields": sorted(rule.fields)}
            return int(conn.execute(insert(SEGMENTS).values(row).returning(SEGMENTS.c.id)).scalar_one())
    except IntegrityError as error:
        raise ConflictError(f"there is already a segment called {name!r}", field="name") from error


def update_segment(
    engine: Engine, name: str, expression: str, *, actor: str = "operator", interface: str = "cli"
) -> None:
    """Change a segment's rule (checked first); its members follow at the next :func:`evaluate_segments`."""
    rule = _compile(engine, expression)
    with engine.begin() as conn:
        found = conn.scalar(select(SEGMENTS.c.id).where(SEGMENTS.c.name == name))
        if found is None:
            raise NotFoundError(f"there is no segment called {name!r}", field="name")
        conn.execute(
            update(SEGMENTS).where(SEGMENTS.c.id == found).values(expression=rule.text, fields=sorted(rule.fields))
        )
        audited(conn, [audit_row(actor=actor, interface=interface, action="update", entity="segment", entity_id=found,
                                 details={"name": name, "rule": rule.text})])  # fmt: skip


def delete_segment(engine: Engine, name: str, *, actor: str = "operator", interface: str = "cli") -> None:
    """Delete a segment with its members and size history (campaigns planned from it keep their own copy of the
    rule)."""
    with engine.begin() as conn:
        found = conn.scalar(select(SEGMENTS.c.id).where(SEGMENTS.c.name == name))
        if found is None:
            raise NotFoundError(f"there is no segment called {name!r}", field="name")
        for table in (MEMBERS, SIZES):  # explicit: not every connection enforces ON DELETE CASCADE
            conn.execute(delete(table).where(table.c.segment_id == found))
        conn.execute(delete(SEGMENTS).where(SEGMENTS.c.id == found))
        audited(conn, [audit_row(actor=actor, interface=interface, action="delete", entity="segment", entity_id=found,
                                 details={"name": name})])  # fmt: skip


def size_history(engine: Engine, segment_ids: Sequence[int] | None = None, *, last: int = 12) -> dict[int, list[int]]:
    """Each segment's member count at its last ``last`` evaluations, oldest first: the trend beside its size."""
    query = select(SIZES.c.segment_id, SIZES.c.member_count).order_by(SIZES.c.segment_id, SIZES.c.evaluated_at)
    if segment_ids is not None:
        query = query.where(SIZES.c.segment_id.in_(list(segment_ids)))
    history: dict[int, list[int]] = {}
    with engine.connect() as conn:
        for segment, count in conn.execute(query):
            history.setdefault(int(segment), []).append(int(count))
    return {segment: counts[-last:] for segment, counts in history.items()}


def list_segments(
    engine: Engine, *, within: Select[int] | None = None, name: str | None = None
) -> list[dict[str, Any]]:
    """The segments (the one called ``name``, when given); with ``within`` (a manager's portfolio) each counts only
    its members there."""
    query = select(SEGMENTS).order_by(SEGMENTS.c.name)
    if name is not None:
        query = query.where(SEGMENTS.c.name == name)
    with engine.connect() as conn:
        segments = [dict(row._mapping) for row in conn.execute(query)]
        if within is not None and segments:
            counted = select(MEMBERS.c.segment_id, func.count()).where(MEMBERS.c.customer_id.in_(within))
            if name is not None:
                counted = counted.where(MEMBERS.c.segment_id == segments[0]["id"])
            counts = {int(segment): int(n) for segment, n in conn.execute(counted.group_by(MEMBERS.c.segment_id))}
            segments = [{**segment, "member_count": counts.get(segment["id"], 0)} for segment in segments]
    return segments


def segment_named(engine: Engine, name: str, *, within: Select[int] | None = None) -> dict[str, Any] | None:
    """One segment as ``list_segments`` shows it, or None when there is none of that name."""
    return next(iter(list_segments(engine, within=within, name=name)), None)


def segment_id(engine: Engine, name: str) -> int:
    return id_by_key(engine, SEGMENTS.c.name, name, what="segment called", field="segment")


def members_of(features: Features, rule: CompiledRule, schema: dict[str, pl.DataType] | None = None) -> pl.Series:
    frame = features.customers
    # A field nobody in this frame has (an attribute, a campaign) is missing for all of them, not an error.
    absent = [name for name in rule.fields if name != "bought" and name not in frame.columns]
    if absent and schema is not None:
        frame = frame.with_columns(pl.lit(None, dtype=schema[name]).alias(name) for name in absent)
    context = Context(features.categories, features.as_of)
    return frame.filter(rule.expression(context))["customer_id"]


def preview(
    engine: Engine,
    expression: str,
    *,
    as_of: dt.date | None = None,
    sample: int = 10,
    within: Select[int] | None = None,
) -> Preview:
    """How many customers a rule selects now, with a few of them: the segment builder's live count (among the
    customers ``within`` selects, if given: a manager's portfolio)."""
    rule, schema = compile_cached(engine, expression)
    features = current_features(engine) if as_of is None else build_features(engine, as_of=as_of)
    if within is not None:
        with engine.connect() as conn:
            kept = sorted(int(customer) for customer in conn.scalars(within))
        features = replace(features, customers=features.customers.filter(pl.col("customer_id").is_in(kept)))
    members = members_of(features, rule, schema)
    rows = features.customers.filter(pl.col("customer_id").is_in(members.implode())).head(sample)
    return Preview(len(members), features.customers.height, rows)


def evaluate_segments(
    engine: Engine,
    *,
    as_of: dt.date | None = None,
    names: Sequence[str] | None = None,
    features: Features | None = None,
) -> dict[str, int]:
    """Recompute the members of every (or the named) segment; write only who joined and who left."""
    segments = [s for s in list_segments(engine) if names is None or s["name"] in names]
    if names is not None and len(segments) != len(set(names)):
        missing = sorted(set(names) - {s["name"] for s in segments})
        raise NotFoundError(f"there is no segment called {missing[0]!r}", field="segment")
    if features is None:
        features = current_features(engine) if as_of is None else build_features(engine, as_of=as_of)
    counts: dict[str, int] = {}
    for segment in segments:
        rule, schema = compile_cached(engine, segment["expression"])
        wanted = pl.DataFrame({"customer_id": members_of(features, rule, schema)})
        with engine.begin() as conn:
            current = pl.DataFrame(
                {
                    "customer_id": conn.scalars(
                        select(MEMBERS.c.customer_id).where(MEMBERS.c.segment_id == segment["id"])
                    ).all()
                },
                schema={"customer_id": pl.Int64},
            )
            joined = wanted.join(current, on="customer_id", how="anti")["customer_id"].to_list()
            left = current.join(wanted, on="customer_id", how="anti")["customer_id"].to_list()
            for start in range(0, len(left), 5000):
                conn.execute(
                    delete(MEMBERS).where(
                        MEMBERS.c.segment_id == segment["id"], MEMBERS.c.customer_id.in_(left[start : start + 5000])
                    )
                )
            rows = [{"segment_id": segment["id"], "customer_id": customer} for customer in joined]
            for start in range(0, len(rows), 10_000):
                conn.execute(insert(MEMBERS), rows[start : start + 10_000])
            now = utcnow()
            conn.execute(
                update(SEGMENTS)
                .where(SEGMENTS.c.id == segment["id"])
                .values(member_count=wanted.height, evaluated_at=now)
            )
            conn.execute(insert(SIZES).values(segment_id=segment["id"], evaluated_at=now, member_count=wanted.height))
        counts[segment["name"]] = wanted.height
    return counts


@dataclass(frozen=True)
class EventEffect:
    joined: list[str]
    left: list[str]
    checked: list[str]


def _affected(segments: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    """The segments whose rules read a field this kind of event can change."""
    touched = EVENT_FIELDS[event]
    prefixes = tuple(name[:-1] for name in touched if name.endswith(".*"))
    return [s for s in segments if any(f in touched or (prefixes and f.startswith(prefixes)) for f in s["fields"])]


def affected_by(engine: Engine, event: str) -> bool:
    """Whether any saved segment reads a field this kind of event can change."""
    return bool(_affected(list_segments(engine), event))


def apply_event(engine: Engine, customer_id: int, event: str, *, as_of: dt.date | None = None) -> EventEffect:
    """Re-evaluate, for one customer, only the segments the event can affect (``purchase``, ``interaction``,
    ``score``, ``profile``, ``response``)."""
    if event not in EVENT_FIELDS:
        raise InvalidInputError(f"unknown event {event!r}; use one of {', '.join(EVENT_FIELDS)}", field="event")
    affected = _affected(list_segments(engine), event)
    if not affected:
        return EventEffect([], [], [])
    needed = parts_for(field for segment in affected for field in segment["fields"])
    features = build_features(engine, as_of=as_of, customer_ids=[customer_id], parts=needed)
    if features.customers.height == 0:
        raise no_such_customer(customer_id)
    joined: list[str] = []
    left: list[str] = []
    with engine.begin() as conn:
        current = set(conn.scalars(select(MEMBERS.c.segment_id).where(MEMBERS.c.customer_id == customer_id)).all())
        for segment in affected:
            rule, schema = compile_cached(engine, segment["expression"])
            member = len(members_of(features, rule, schema)) == 1
            was = segment["id"] in current
            if member and not was:
                conn.execute(insert(MEMBERS).values(segment_id=segment["id"], customer_id=customer_id))
                conn.execute(
                    update(SEGMENTS)
                    .where(SEGMENTS.c.id == segment["id"])
                    .values(member_count=SEGMENTS.c.member_count + 1)
                )
                joined.append(segment["name"])
            elif was and not member:
                conn.execute(
                    delete(MEMBERS).where(MEMBERS.c.segment_id == segment["id"], MEMBERS.c.customer_id == customer_id)
                )
                conn.execute(
                    update(SEGMENTS)
                    .where(SEGMENTS.c.id == segment["id"])
                    .values(member_count=SEGMENTS.c.member_count - 1)
                )
                left.append(segment["name"])
    return EventEffect(joined, left, [s["name"] for s in affected])


def members_query(segment: int) -> Select[int]:
    """The ids of a segment's members (as last evaluated; ``segment`` its id), as a query to narrow a list or an
    export by."""
    return select(MEMBERS.c.customer_id).where(MEMBERS.c.segment_id == segment)


def segment_members(
    engine: Engine, name: str, *, limit: int = 50, offset: int = 0, within: Select[int] | None = None
) -> tuple[list[int], int]:
    """One page of a segment's member ids (as last evaluated) and the total (only those ``within``, if given)."""
    identifier = segment_id(engine, name)
    members = MEMBERS.c.segment_id == identifier
    if within is not None:
        members = members & MEMBERS.c.customer_id.in_(within)
    with engine.connect() as conn:
        ids = conn.scalars(
            select(MEMBERS.c.customer_id).where(members).order_by(MEMBERS.c.customer_id).limit(limit).offset(offset)
        ).all()
        if within is None:  # the stored count: no scan of the members
            total = conn.scalar(select(SEGMENTS.c.member_count).where(SEGMENTS.c.id == identifier))
        else:
            total = conn.scalar(select(func.count()).select_from(MEMBERS).where(members))
    return [int(i) for i in ids], int(total or 0)
