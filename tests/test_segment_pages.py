"""Segments you can use in the browser, on both stores: a segment's own page with its members (paged, searchable,
masked for analysts), the CSV export for the roles that may export, the rule edited and the segment deleted with
the audit trail, the size trend over evaluations; bad input comes back beside its field with what was typed,
nothing written. The API's and CLI's edit and delete go through the same functions."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from patron.app import create_app
from patron.auth.access import pseudonym_of
from patron.auth.service import create_user
from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.segments.rules import SEGMENTS, SIZES, create_segment, evaluate_segments, segment_id
from patron.settings import get_settings
from tests.conftest import WriteFile

PASSWORD = "a-long-password-1"
PEOPLE = "id,email,name,spend\n" + "".join(
    f"{i},p{i}@example.com,Person {i},{i * 10}\n" for i in range(1, 8)
)  # spend 10 … 70
MAPPING = {
    "source": {"system": "crm"},
    "customers": {"external_id": "id", "email": "email", "display_name": "name",
                  "attributes": {"spend": {"column": "spend", "type": "integer"}}},
}  # fmt: skip
AUDIT = table_of(s.AuditEvent)


@pytest.fixture
def people(engine: Engine, write_file: WriteFile) -> Engine:
    path = write_file("people.csv", PEOPLE)
    import_file(engine, path, parse_mapping(MAPPING), rejects_dir=path.parent)
    for role in ("admin", "analyst", "agent"):
        create_user(engine, role, PASSWORD, role)
    create_segment(engine, "big", "attributes.spend >= 40")
    evaluate_segments(engine)
    return engine


@pytest.fixture
def client(people: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(people), follow_redirects=False) as test_client:
        yield test_client


def _sign_in(client: TestClient, username: str) -> str:
    client.cookies.clear()
    assert client.post("/login", data={"username": username, "password": PASSWORD}).status_code == 303
    page = client.get("/segments").text
    return str(page.split('"X-CSRF-Token": "', 1)[1].split('"', 1)[0])


def _ids(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(s.Identity.value, s.Identity.customer_id).where(s.Identity.kind == "external"))
        return {str(value): int(customer) for value, customer in rows}


def test_a_segments_members_are_listed_searched_and_exported_as_the_role_may(
    client: TestClient, people: Engine
) -> None:
    ids = _ids(people)
    _sign_in(client, "admin")
    page = client.get("/segments/big")
    assert page.status_code == 200
    assert "4 members" in page.text  # spend 40, 50, 60, 70
    assert all(f"Person {i}" in page.text for i in (4, 5, 6, 7))
    assert "Person 3" not in page.text
    found = client.get("/segments/big", params={"search": "p5@example.com"})
    assert "1 member " in found.text
    assert "Person 5" in found.text
    assert "Person 6" not in found.text
    exported = client.get("/segments/big/members.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(int(row["id"]) for row in rows) == sorted(ids[str(i)] for i in (4, 5, 6, 7))
    assert {row["display_name"] for row in rows} == {f"Person {i}" for i in (4, 5, 6, 7)}

    _sign_in(client, "analyst")  # may export, never sees a name
    page = client.get("/segments/big")
    assert "Person" not in page.text
    assert pseudonym_of(ids["4"]) in page.text
    rows = list(csv.DictReader(io.StringIO(client.get("/segments/big/members.csv").text)))
    assert {row["display_name"] for row in rows} == {pseudonym_of(ids[str(i)]) for i in (4, 5, 6, 7)}
    _sign_in(client, "agent")  # sees the members, may not export, has no forms to change the segment
    page = client.get("/segments/big")
    assert "Person 4" in page.text
    assert "members.csv" not in page.text
    assert 'id="edit-segment"' not in page.text
    assert client.get("/segments/big/members.csv").status_code == 403
    assert client.get("/segments/nothing-called-this").status_code == 404
    with people.connect() as conn:
        exports = conn.scalars(select(AUDIT.c.actor).where(AUDIT.c.action == "export")).all()
    assert sorted(exports) == ["admin", "analyst"]


def test_the_rule_is_edited_and_the_segment_deleted_with_bad_input_refused(client: TestClient, people: Engine) -> None:
    csrf = _sign_in(client, "admin")
    refused = client.post("/segments/big", data={"csrf_token": csrf, "rule": "attributes.spend >= "})
    assert refused.status_code == 422
    assert 'role="alert"' in refused.text
    assert "attributes.spend &gt;= </textarea>" in refused.text
    with people.connect() as conn:
        assert conn.scalar(select(SEGMENTS.c.expression).where(SEGMENTS.c.name == "big")) == "attributes.spend >= 40"

    edited = client.post("/segments/big", data={"csrf_token": csrf, "rule": "attributes.spend >= 60"})
    assert (edited.status_code, edited.headers["location"]) == (303, "/segments/big?done=edited")
    page = client.get("/segments/big?done=edited")
    assert "2 members" in page.text
    assert "Rule changed" in page.text
    assert '<polyline points="' in page.text
    assert "-2</span>" in page.text
    listed = client.get("/segments").text
    assert '<polyline points="' in listed
    assert "-2</span>" in listed

    unticked = client.post("/segments/big/delete", data={"csrf_token": csrf})
    assert unticked.status_code == 422
    assert "Tick the box" in unticked.text
    assert segment_id(people, "big")  # still there
    deleted = client.post("/segments/big/delete", data={"csrf_token": csrf, "confirm": "yes"})
    assert (deleted.status_code, deleted.headers["location"]) == (303, "/segments?deleted=big")
    assert client.get("/segments/big").status_code == 404
    with people.connect() as conn:
        assert conn.scalar(select(SEGMENTS.c.id).where(SEGMENTS.c.name == "big")) is None
        assert conn.execute(select(SIZES)).all() == []
        trail = conn.execute(select(AUDIT.c.action, AUDIT.c.interface).where(AUDIT.c.entity == "segment")).all()
    assert sorted(trail) == [("delete", "web"), ("update", "web")]

    csrf = _sign_in(client, "agent")  # may not change segments
    create_segment(people, "small", "attributes.spend < 20")
    assert client.post("/segments/small", data={"csrf_token": csrf, "rule": "orders >= 0"}).status_code == 403
    assert client.post("/segments/small/delete", data={"csrf_token": csrf, "confirm": "yes"}).status_code == 403


def test_the_api_and_cli_edit_and_delete_through_the_same_functions(
    client: TestClient, people: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = client.post("/api/auth/token", json={"username": "admin", "password": PASSWORD}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    edited = client.put("/api/segments/big", json={"rule": "attributes.spend >= 70"}, headers=auth)
    assert (edited.status_code, edited.json()["member_count"]) == (200, 1)
    bad = client.put("/api/segments/big", json={"rule": "spend >>> 1"}, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["field"] == "expression"
    assert client.delete("/api/segments/nothing", headers=auth).status_code == 404
    assert client.delete("/api/segments/big", headers=auth).json() == {"name": "big"}

    from patron.cli.main import app  # noqa: PLC0415  (the CLI opens the store named by its settings)

    create_segment(people, "cli", "attributes.spend >= 10")
    runner = CliRunner()
    monkeypatch.setenv("PATRON_DATABASE_URL", people.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["segments", "edit", "cli", "attributes.spend >= 50"])
        assert result.exit_code == 0, result.output
        assert "cli: 3 members" in result.output
        assert runner.invoke(app, ["segments", "delete", "cli"]).exit_code == 0
    finally:
        get_settings.cache_clear()
    with people.connect() as conn:
        assert conn.scalar(select(SEGMENTS.c.id).where(SEGMENTS.c.name == "cli")) is None
        interfaces = conn.execute(select(AUDIT.c.interface, AUDIT.c.action).where(AUDIT.c.entity == "segment")).all()
    assert sorted(interfaces) == [("api", "delete"), ("api", "update"), ("cli", "delete"), ("cli", "update")]
