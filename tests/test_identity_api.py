"""Identity resolution over the API on both stores: a record posted to /api/customers is joined to its person, sent
to review or created in the same call; the admin lists and decides reviews, reads a customer's merges and splits
one; bad input answers 4xx with a reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from patron.app import create_app
from patron.auth.service import create_user
from patron.cif.identity.records import person_records
from patron.cif.identity.resolve import Thresholds, link
from patron.cif.importer import import_file
from patron.cif.view import resolve_customer
from patron.demo import demo_mapping
from patron.errors import NotFoundError
from tests.conftest import SHARED_DATA, needs

FEBRL1 = SHARED_DATA / "febrl" / "dataset1.csv"
pytestmark = [needs(FEBRL1)]


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Engine]]:
    import_file(engine, FEBRL1, demo_mapping("febrl"), rejects_dir=tmp_path)
    link(engine, thresholds=Thresholds(0.95, 0.2), actor="setup")
    create_user(engine, "admin", "admin-password", "admin")
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        token = client.post("/api/auth/token", json={"username": "admin", "password": "admin-password"}).json()
        yield client, {"Authorization": f"Bearer {token['token']}"}, engine


def someone(engine: Engine) -> dict[str, Any]:
    wanted = ("first_name", "last_name", "street", "postal_code", "city", "birth_date")
    with engine.connect() as conn:
        return next(r for r in person_records(conn) if all(r.get(f) for f in wanted))


def test_a_posted_duplicate_joins_its_person_and_a_stranger_is_created(
    api: tuple[TestClient, dict[str, str], Engine],
) -> None:
    client, auth, engine = api
    person = someone(engine)
    twin = {**{k: person[k] for k in ("first_name", "street", "postal_code", "city", "birth_date")},
            "last_name": person["last_name"] + "e", "system": "web", "external_id": "signup-1"}  # fmt: skip
    joined = client.post("/api/customers", json=twin, headers=auth)
    assert joined.status_code == 201, joined.text
    assert joined.json()["outcome"] == "joined"
    assert joined.json()["customer_id"] == person["customer_id"]
    # Sent again, the record's id leads to the survivor, whose fields it updates (the newest value wins); a third
    # send changes nothing.
    again = client.post("/api/customers", json=twin, headers=auth)
    assert again.json() == {"customer_id": person["customer_id"], "outcome": "updated", "problems": []}
    third = client.post("/api/customers", json=twin, headers=auth)
    assert third.json() == {"customer_id": person["customer_id"], "outcome": "unchanged", "problems": []}
    merges = client.get(f"/api/customers/{person['customer_id']}/merges", headers=auth).json()
    assert merges[-1]["how"] == "realtime"
    assert {"first_name", "street"} <= set(merges[-1]["agreed"])
    stranger = {"system": "web", "external_id": "signup-2", "first_name": "zebedee", "last_name": "quartermaine",
                "birth_date": "1999-01-01"}  # fmt: skip
    created = client.post("/api/customers", json=stranger, headers=auth).json()
    assert created["outcome"] == "created"
    split = client.post(f"/api/identity/merges/{merges[-1]['id']}/split", headers=auth)
    assert split.status_code == 200, split.text
    assert split.json()["split_at"] is not None


def test_reviews_are_listed_side_by_side_and_decided(api: tuple[TestClient, dict[str, str], Engine]) -> None:
    client, auth, _ = api
    listed = client.get("/api/identity/reviews", headers=auth, params={"limit": 5}).json()
    assert listed["open"] >= 1
    pair = listed["items"][0]
    assert [f["field"] for f in pair["fields"]][:3] == ["first_name", "last_name", "birth_date"]
    decided = client.post(f"/api/identity/reviews/{pair['id']}", json={"decision": "reject"}, headers=auth)
    assert decided.json()["status"] == "rejected"
    assert client.get("/api/identity/reviews", headers=auth).json()["open"] == listed["open"] - 1
    twice = client.post(f"/api/identity/reviews/{pair['id']}", json={"decision": "accept"}, headers=auth)
    assert twice.status_code == 422
    assert "already rejected" in twice.json()["detail"]


BAD_INPUT: list[tuple[str, dict[str, Any] | None, int, str]] = [
    ("/api/customers", {"system": "web", "external_id": "x", "birth_date": "1999-02-31"}, 422, "birth_date"),
    ("/api/customers", {"system": "web", "external_id": "x", "email": "not an e-mail"}, 422, "email"),
    ("/api/customers", {"system": "bad system!", "external_id": "x"}, 422, "system"),
    ("/api/identity/match", {"first_name": "  "}, 422, "every field"),
    ("/api/identity/reviews/999", {"decision": "accept"}, 404, "no review"),
    ("/api/identity/reviews/1", {"decision": "maybe"}, 422, "decision"),
    ("/api/identity/merges/999/split", None, 404, "no merge"),
]


def test_bad_input_answers_with_a_reason_and_writes_nothing(api: tuple[TestClient, dict[str, str], Engine]) -> None:
    client, auth, engine = api
    for path, body, status, says in BAD_INPUT:
        reply = client.post(path, json=body, headers=auth)
        assert reply.status_code == status, (path, body, reply.text)
        assert says in reply.text
    with pytest.raises(NotFoundError):
        resolve_customer(engine, "web:x")
