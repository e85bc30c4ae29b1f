"""Triggers: fired by an event for a matching customer, once per occurrence; loops refused; through the API."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from patron.cif import schema as s
from patron.cif.events import EventIn, ingest_events
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.engage.triggers import create_trigger, fire_triggers
from patron.errors import InvalidInputError
from patron.service.schema import Case
from tests.conftest import WriteFile

PEOPLE: dict[str, Any] = {
    "source": {"system": "crm", "format": "csv"},
    "customers": {
        "external_id": "id",
        "display_name": "name",
        "attributes": {"children": {"column": "children", "type": "integer"}},
    },
}


def cases(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(Case)) or 0)


def test_a_life_event_fires_once_for_matching_customers(engine: Engine, write_file: WriteFile) -> None:
    path = write_file("people.csv", "id,name,children\n1,Ann,0\n2,Bob,3\n")
    import_file(engine, path, parse_mapping(PEOPLE), rejects_dir=path.parent)
    create_trigger(
        engine, "new parents guide", on_event="birth", condition="attributes.children == 0",
        action="emit_event", params={"event": "guide_offered"},
    )  # fmt: skip
    create_trigger(
        engine,
        "call new parents",
        on_event="guide_offered",
        action="open_case",
        params={"subject": "Congratulate and offer the guide"},
    )
    event = {"occurred_at": "2024-05-01T10:00:00", "channel": "web", "type": "birth"}
    first = ingest_events(
        engine,
        [
            EventIn(customer="crm:1", idempotency_key="b1", **event),
            EventIn(customer="crm:2", idempotency_key="b2", **event),
        ],
    )
    fired = [f.trigger for i, c, kind in first.stored for f in fire_triggers(engine, c, kind, f"interaction:{i}")]
    assert fired == ["new parents guide"]  # Ann matches (no children yet), Bob does not
    assert cases(engine) == 1  # the emitted event fired the second trigger
    with engine.connect() as conn:
        assert (
            conn.scalar(select(func.count()).select_from(s.Interaction).where(s.Interaction.type == "guide_offered"))
            == 1
        )
    # The same occurrence again (a re-delivery) fires nothing.
    interaction, customer, kind = first.stored[0]
    assert fire_triggers(engine, customer, kind, f"interaction:{interaction}") == []
    assert cases(engine) == 1


def test_loops_and_bad_triggers_are_refused(engine: Engine) -> None:
    create_trigger(engine, "a", on_event="complaint", action="emit_event", params={"event": "apology"})
    create_trigger(engine, "b", on_event="apology", action="emit_event", params={"event": "follow_up"})
    with pytest.raises(InvalidInputError, match="loop: complaint → apology → follow_up → complaint"):
        create_trigger(engine, "c", on_event="follow_up", action="emit_event", params={"event": "complaint"})
    with pytest.raises(InvalidInputError, match="needs a subject"):
        create_trigger(engine, "d", on_event="x", action="open_case", params={})
    with pytest.raises(InvalidInputError, match="action must be one of"):
        create_trigger(engine, "e", on_event="x", action="launch_rocket", params={})
