"""Who may call what: one table for every API route and page, run as every role on both stores.

The table is written out here, not derived from the code: it is what the product promises (docs/WEB.md). A route
that is not in the table fails the test, so a new route cannot ship without saying who may use it. A refused call
answers 403 (401 for nobody signed in) and changes nothing in the store; an allowed call is never refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, text

from patron.app import create_app
from patron.auth.service import create_user
from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.import_jobs import stage_upload
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.engage.offers import create_offer
from patron.schema import Base
from patron.segments.rules import create_segment
from patron.web.import_pages import uploads_dir
from tests.conftest import WriteFile

ROLES = ("admin", "manager", "agent", "analyst")
EVERYONE = frozenset(ROLES)
PUBLIC = frozenset({"nobody", *ROLES})  # no sign-in needed
PASSWORD = "correct horse battery"
ANALYSTS_TOO = frozenset({"admin", "manager", "analyst"})
SERVICE = frozenset({"admin", "manager", "agent"})
MANAGERS = frozenset({"admin", "manager"})
ADMIN = frozenset({"admin"})

# (method, path) → the roles that may call it.
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/api/auth/token"): PUBLIC,
    ("GET", "/api/me"): EVERYONE,
    ("POST", "/api/auth/logout"): EVERYONE,
    ("GET", "/api/customers"): EVERYONE,
    ("GET", "/api/customers/export.csv"): ANALYSTS_TOO,
    ("GET", "/api/customers/{customer_id}"): EVERYONE,
    ("GET", "/api/customers/{customer_id}/profile"): EVERYONE,
    ("GET", "/api/customers/{customer_id}/context"): SERVICE,
    ("GET", "/api/customers/{customer_id}/next-best-offer"): EVERYONE,
    ("GET", "/api/customers/{customer_id}/recommendations"): EVERYONE,
    ("GET", "/api/customers/{customer_id}/consents"): EVERYONE,
    ("POST", "/api/customers/{customer_id}/consents"): SERVICE,
    ("POST", "/api/events"): SERVICE,
    ("POST", "/api/events/batch"): SERVICE,
    ("GET", "/api/segments"): EVERYONE,
    ("POST", "/api/segments"): ANALYSTS_TOO,
    ("POST", "/api/segments/preview"): EVERYONE,
    ("GET", "/api/segments/{name}/members"): EVERYONE,
    ("GET", "/api/value/runs"): EVERYONE,
    ("GET", "/api/value/retention"): EVERYONE,
    ("GET", "/api/value/runs/{run_id}/scores"): EVERYONE,
    ("GET", "/api/value/lists/{name}"): EVERYONE,
    ("GET", "/api/cases/queue"): SERVICE,
    ("POST", "/api/cases"): SERVICE,
    ("POST", "/api/cases/{case_id}/notes"): SERVICE,
    ("POST", "/api/cases/{case_id}/resolve"): SERVICE,
    ("GET", "/api/strategy/budget"): ANALYSTS_TOO,
    ("GET", "/api/strategy/portfolio"): ANALYSTS_TOO,
    ("GET", "/api/strategy/pricing"): ANALYSTS_TOO,
    ("GET", "/api/strategy/elasticity"): ANALYSTS_TOO,
    ("GET", "/api/strategy/network"): ANALYSTS_TOO,
    ("POST", "/api/strategy/links"): ANALYSTS_TOO,
    ("GET", "/api/campaigns"): EVERYONE,
    ("GET", "/api/campaigns/{key}/live"): EVERYONE,
    ("GET", "/api/campaigns/{key}/report"): EVERYONE,
    ("GET", "/api/campaigns/{key}/preview"): MANAGERS,
    ("GET", "/api/offers"): EVERYONE,
    ("POST", "/api/offers"): MANAGERS,
    ("POST", "/api/customers"): MANAGERS,
    ("POST", "/api/identity/match"): ADMIN,
    ("GET", "/api/identity/reviews"): ADMIN,
    ("POST", "/api/identity/reviews/{review_id}"): ADMIN,
    ("GET", "/api/customers/{customer_id}/merges"): EVERYONE,
    ("POST", "/api/identity/merges/{merge_id}/split"): ADMIN,
    # Pages: every signed-in role sees the page (its content follows the role); actions are refused by role.
    ("GET", "/login"): PUBLIC,
    ("GET", "/docs"): PUBLIC,  # the API's documentation page; /openapi.json itself is FastAPI's
    ("GET", "/users"): ADMIN,  # other roles get the page saying it is the admin's work (403)
    ("POST", "/users/{username}"): ADMIN,
    ("POST", "/users/tokens/{token_id}/revoke"): ADMIN,
    ("POST", "/login"): PUBLIC,
    ("GET", "/logout"): PUBLIC,
    ("GET", "/"): EVERYONE,
    ("GET", "/customers"): EVERYONE,
    ("GET", "/customers/{customer_id}"): EVERYONE,
    ("GET", "/segments"): EVERYONE,
    ("POST", "/segments"): ANALYSTS_TOO,
    ("POST", "/segments/count"): EVERYONE,
    ("GET", "/segments/evolution"): EVERYONE,
    ("GET", "/service"): EVERYONE,
    ("GET", "/quality"): EVERYONE,
    ("GET", "/strategy"): ANALYSTS_TOO,
    ("GET", "/strategy/budget"): ANALYSTS_TOO,
    ("GET", "/strategy/portfolio"): ANALYSTS_TOO,
    ("GET", "/strategy/pricing"): ANALYSTS_TOO,
    ("GET", "/strategy/elasticity"): ANALYSTS_TOO,
    ("GET", "/strategy/elasticity/panel"): ANALYSTS_TOO,
    ("GET", "/strategy/network"): ANALYSTS_TOO,
    ("GET", "/strategy/contacts"): ANALYSTS_TOO,
    ("GET", "/campaigns"): EVERYONE,
    ("GET", "/campaigns/{key}"): EVERYONE,
    ("GET", "/campaigns/{key}/live"): EVERYONE,
    ("GET", "/imports"): EVERYONE,
    ("POST", "/imports"): MANAGERS,
    ("GET", "/imports/{job_id}/panel"): EVERYONE,
    ("POST", "/imports/prepare"): MANAGERS,
    ("GET", "/imports/staged/{staged_id}"): EVERYONE,
    ("POST", "/imports/staged/{staged_id}"): MANAGERS,
    ("GET", "/identity"): ADMIN,
    ("POST", "/identity/link"): ADMIN,
    ("POST", "/identity/reviews/{review_id}"): ADMIN,
    ("POST", "/identity/merges/{merge_id}/split"): ADMIN,
    ("GET", "/vendor/plotly.min.js"): PUBLIC,
}


def app_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path) the app answers, found by walking its routers."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str = "") -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.update((method, prefix + route.path) for method in route.methods or ())
            elif hasattr(route, "original_router"):
                walk(route.original_router.routes, prefix + route.include_context.prefix)

    walk(app.routes)
    return found


PEOPLE_MAPPING = '[source]\nsystem = "crm"\n[customers]\nexternal_id = "id"\nemail = "email"\n'


def request_for(method: str, path: str, role: str, ids: dict[str, Any]) -> dict[str, Any]:
    """A well-formed request, so an allowed call does its real work and a refused one would have written."""
    url = path.format(**ids)
    unique = f"perm-{role}"
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/api/auth/token"): {"json": {"username": "admin", "password": PASSWORD}},
        ("POST", "/api/events"): {"json": {"customer": "crm:1", "idempotency_key": unique,
                                           "occurred_at": "2024-05-01T10:00:00", "channel": "web", "type": "visit"}},
        ("POST", "/api/events/batch"): {"json": {"events": [{"customer": "crm:2", "idempotency_key": unique,
                                        "occurred_at": "2024-05-01T10:00:00", "channel": "web", "type": "visit"}]}},
        ("POST", "/api/segments"): {"json": {"name": unique, "rule": "orders >= 0"}},
        ("POST", "/api/segments/preview"): {"json": {"rule": "orders >= 0"}},
        ("POST", "/api/cases"): {"json": {"customer_id": ids["customer_id"], "subject": unique}},
        ("POST", "/api/cases/{case_id}/notes"): {"json": {"text": unique}},
        ("POST", "/api/cases/{case_id}/resolve"): {"json": {"text": unique}},
        ("POST", "/api/strategy/links"): {"json": {"source": unique, "links": [
            {"from": "crm:1", "to": "crm:2", "kind": "referral"}]}},
        ("POST", "/api/customers/{customer_id}/consents"): {"json": {"channel": "email", "status": "granted"}},
        ("POST", "/api/offers"): {"json": {"name": unique, "margin": 2.5}},
        ("POST", "/api/customers"): {"json": {"system": "crm", "external_id": unique, "first_name": "Cy"}},
        ("POST", "/api/identity/match"): {"json": {"first_name": "Ann", "last_name": "Lee"}},
        ("POST", "/api/identity/reviews/{review_id}"): {"json": {"decision": "reject"}},
        ("POST", "/identity/reviews/{review_id}"): {"data": {"decision": "reject"}},
        ("POST", "/login"): {"data": {"username": "admin", "password": PASSWORD}},
        ("POST", "/segments"): {"data": {"name": unique, "rule": "orders >= 0"}},
        ("POST", "/segments/count"): {"data": {"rule": "orders >= 0"}},
        ("POST", "/imports/prepare"): {"files": {"data": ("people.csv", b"id,email\n78,x@example.com\n", "text/csv")}},
        ("POST", "/imports/staged/{staged_id}"): {"data": {"action": "dry-run", "mapping_text": PEOPLE_MAPPING}},
        ("POST", "/users/{username}"): {"data": {"action": "unlock"}},
        ("POST", "/users/tokens/{token_id}/revoke"): {"data": {"username": "nobody"}},
        ("POST", "/imports"): {"files": {
            "data": ("people.csv", b"id,email\n77,new@example.com\n", "text/csv"),
            "mapping": ("m.toml", b'[source]\nsystem = "crm"\n[customers]\nexternal_id = "id"\nemail = "email"\n',
                        "text/plain")}},
    }  # fmt: skip
    return {"method": method, "url": url, **bodies.get((method, path), {})}


@pytest.fixture
def store(engine: Engine, write_file: WriteFile) -> Iterator[tuple[TestClient, dict[str, str], dict[str, Any]]]:
    people = write_file("people.csv", "id,email,name\n1,ann@example.com,Ann Lee\n2,bob@example.org,Bob Ray\n")
    mapping = {
        "source": {"system": "crm"},
        "customers": {"external_id": "id", "email": "email", "display_name": "name"},
    }
    import_file(engine, people, parse_mapping(mapping), rejects_dir=people.parent)
    for role in ROLES:
        create_user(engine, role, PASSWORD, role)
    create_segment(engine, "everyone", "orders >= 0")
    create_offer(engine, "thank-you", margin=1.0)
    with engine.begin() as conn:  # the manager's portfolio holds Ann
        ann = conn.scalar(select(s.Identity.customer_id).where(s.Identity.value == "1"))
        account = conn.execute(
            insert(table_of(s.Account)).values(source="crm", account_key="a1", name="Lee & Co", manager="manager")
            .returning(table_of(s.Account).c.id)
        ).scalar_one()  # fmt: skip
        conn.execute(insert(table_of(s.AccountContact)).values(account_id=account, customer_id=ann, role="buyer"))
    with TestClient(create_app(engine), raise_server_exceptions=False, follow_redirects=False) as client:
        tokens = {}
        for role in ROLES:
            reply = client.post("/api/auth/token", json={"username": role, "password": PASSWORD})
            tokens[role] = reply.json()["token"]
        case = client.post("/api/cases", headers={"Authorization": f"Bearer {tokens['admin']}"},
                           json={"customer_id": ann, "subject": "a case to act on"})  # fmt: skip
        assert case.status_code == 201, case.text
        staged = stage_upload(b"id,email\n79,y@example.com\n", "staged.csv", uploads_dir(), PEOPLE_MAPPING)
        ids = {"customer_id": ann, "case_id": case.json()["id"], "name": "everyone", "run_id": 1, "key": "none",
               "job_id": "none", "staged_id": staged.id, "review_id": 1, "merge_id": 1, "username": "analyst",
               "token_id": 10**9}  # fmt: skip
        yield client, tokens, ids


SIGN_OUTS = {("POST", "/api/auth/logout"), ("GET", "/logout")}


def _fingerprint(engine: Engine) -> dict[str, str]:
    """A digest of every table's rows (sign-in bookkeeping aside): equal digests, nothing written."""
    digests = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in ("api_tokens", "users"):
                continue  # a token's last use is recorded on every call
            query = f'SELECT * FROM "{table.name}"'
            if table.name == "audit_events":  # allowed reads before this call are audited by a background thread
                query += " WHERE action <> 'read_pii'"
            rows = conn.execute(text(query)).all()
            digests[table.name] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
    return digests


def test_every_route_is_in_the_table(store: tuple[TestClient, dict[str, str], dict[str, Any]]) -> None:
    client, _, _ = store
    served = app_routes(client.app)
    assert served - ALLOWED.keys() == set(), "say in ALLOWED who may call these new routes"
    assert ALLOWED.keys() - served == set(), "these routes in ALLOWED are gone"
    documented = {
        (method.upper(), path) for path, item in client.get("/openapi.json").json()["paths"].items() for method in item
    }
    assert documented <= served


@pytest.mark.parametrize("role", ["nobody", *ROLES])
def test_every_route_as_every_role(
    role: str, engine: Engine, store: tuple[TestClient, dict[str, str], dict[str, Any]]
) -> None:
    client, tokens, ids = store
    refused_wrongly, let_through = [], []
    for method, path in sorted(ALLOWED):
        client.cookies.clear()
        headers = {}
        if role != "nobody":
            secret = tokens[role]
            if (method, path) in SIGN_OUTS:  # signing out ends the token it is made with: use one of its own
                secret = client.post("/api/auth/token", json={"username": role, "password": PASSWORD}).json()["token"]
            headers["Authorization"] = f"Bearer {secret}"
            client.cookies.set("patron_session", secret)
        allowed = role in ALLOWED[(method, path)]
        before = {} if allowed else _fingerprint(engine)
        reply = client.request(**request_for(method, path, role, ids), headers=headers)
        assert reply.status_code < 500, f"{method} {path} as {role}: {reply.status_code} {reply.text[:300]}"
        refused = reply.status_code in (401, 403) or (
            role == "nobody" and reply.status_code == 303 and reply.headers["location"] == "/login"
        )
        if allowed and reply.status_code in (401, 403):
            refused_wrongly.append(f"{method} {path}: {reply.status_code}")
        if not allowed:
            if not refused:
                let_through.append(f"{method} {path}: {reply.status_code}")
            elif (after := _fingerprint(engine)) != before:
                changed = sorted(name for name in after if after[name] != before[name])
                let_through.append(f"{method} {path}: refused, but {', '.join(changed)} changed")
    assert refused_wrongly == [], f"refused to {role}"
    assert let_through == [], f"let through for {role}"


def test_openapi_names_a_model_for_every_response_body(
    store: tuple[TestClient, dict[str, str], dict[str, Any]],
) -> None:
    client, _, _ = store
    undocumented = []
    for path, item in client.get("/openapi.json").json()["paths"].items():
        for method, operation in item.items():
            success = next(v for k, v in operation["responses"].items() if k.startswith("2"))
            content = success.get("content", {})
            schema = content.get("application/json", {}).get("schema", {})
            named = schema.get("$ref") or schema.get("items", {}).get("$ref") or "text/plain" in content
            if not named:  # a named model (or a list of one), not a bare "object"
                undocumented.append(f"{method.upper()} {path}")
    assert undocumented == []
