"""Generated event batches through the API: no server error, no valid event lost or stored twice, and a batch
the API refuses as a whole leaves nothing behind."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from patron.app import create_app
from patron.auth.service import create_user
from patron.cif import schema as s
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cif.store import make_engine, migrate

PEOPLE = {"source": {"system": "crm", "format": "csv"}, "customers": {"external_id": "id", "display_name": "name"}}


@dataclass
class Api:
    client: TestClient
    engine: Engine
    headers: dict[str, str]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    folder = tmp_path_factory.mktemp("events-fuzz")
    engine = make_engine(f"sqlite:///{folder / 'patron.db'}")
    migrate(engine)
    (folder / "people.csv").write_text("id,name\n" + "".join(f"p{n},Person {n}\n" for n in range(1, 6)))
    import_file(engine, folder / "people.csv", parse_mapping(PEOPLE))
    create_user(engine, "writer", "a long password", "agent")
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        token = client.post("/api/auth/token", json={"username": "writer", "password": "a long password"}).json()
        yield Api(client, engine, {"Authorization": f"Bearer {token['token']}"})
    engine.dispose()


KEYS = itertools.count()

# A field and a value the API's schema refuses.
BROKEN = [
    ("channel", "web!"), ("channel", ""), ("type", "a type with spaces"), ("type", "x" * 33),
    ("occurred_at", "not a date"), ("idempotency_key", ""), ("idempotency_key", "k" * 129), ("customer", ""),
]  # fmt: skip
text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)


@st.composite
def event(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """An event and what should happen to it: stored, rejected (unknown customer) or refused (bad field)."""
    fate = draw(st.sampled_from(["stored", "stored", "stored", "rejected", "refused"]))
    body: dict[str, Any] = {
        "customer": draw(st.sampled_from(["crm:p1", "crm:p2", "crm:p3", "4", "crm:p5"])),
        "idempotency_key": f"k{next(KEYS)}",
        "occurred_at": draw(st.datetimes(timezones=st.none())).isoformat(),
        "channel": draw(st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)),
        "type": draw(st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)),
        "body": draw(st.one_of(st.none(), text.filter(lambda value: "\x00" not in value))),
        "details": draw(st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.integers(-5, 5), max_size=3)),
    }
    if fate == "rejected":
        body["customer"] = f"crm:nobody-{draw(st.integers(0, 10**6))}"
    elif fate == "refused":
        broken, value = draw(st.sampled_from(BROKEN))
        body[broken] = value
    return body, fate


def _stored(engine: Engine, keys: list[str]) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(s.Interaction.idempotency_key, func.count())
            .where(s.Interaction.source == "api", s.Interaction.idempotency_key.in_(keys))
            .group_by(s.Interaction.idempotency_key)
        ).all()
    return {str(key): int(count) for key, count in rows}


def test_generated_batches_lose_nothing_and_store_nothing_twice(api: Api) -> None:
    tried = {"batches": 0, "refused_batches": 0, "rejected_events": 0}

    @settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(event(), min_size=1, max_size=25))
    def batches_keep_every_valid_event_once(batch: list[tuple[dict[str, Any], str]]) -> None:
        events = [body for body, _ in batch]
        keys = [body["idempotency_key"] for body in events]
        reply = api.client.post("/api/events/batch", json={"events": events}, headers=api.headers)
        assert reply.status_code < 500, reply.text
        tried["batches"] += 1
        if any(fate == "refused" for _, fate in batch):
            assert reply.status_code == 422, reply.text
            body = reply.json()
            assert body["code"]
            assert body["detail"]
            assert _stored(api.engine, keys) == {}  # refused as a whole: nothing half-written
            tried["refused_batches"] += 1
            return
        assert reply.status_code == 201, reply.text
        result = reply.json()
        expected = [body["idempotency_key"] for body, fate in batch if fate == "stored"]
        assert result["created"] == len(expected)
        unknown = [index for index, (_, fate) in enumerate(batch) if fate == "rejected"]
        assert [item["index"] for item in result["rejected"]] == unknown
        assert _stored(api.engine, keys) == dict.fromkeys(expected, 1)
        tried["rejected_events"] += len(result["rejected"])
        again = api.client.post("/api/events/batch", json={"events": events}, headers=api.headers).json()
        assert (again["created"], again["duplicates"]) == (0, len(expected))  # a re-sent batch adds nothing
        assert _stored(api.engine, keys) == dict.fromkeys(expected, 1)

    batches_keep_every_valid_event_once()
    # The generator really produced each kind of batch.
    assert tried["batches"] >= 150
    assert tried["refused_batches"] > 10
    assert tried["rejected_events"] > 10
