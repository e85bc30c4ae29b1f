"""Who may call what: one table for every API route and page, run as every role on both stores.

The table is written out here, not derived from the code: it is what the product promises (docs/WEB.md). A route
that is not in the table fails the test, so a new route cannot ship without saying who may use it. A refused call
answers 403 (401 for nobody signed in) and changes nothing in the store; an allowed call is never refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
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
from patron.engage.campaigns import create_campaign, prepare_campaign
from patron.engage.consent import record_consent
from patron.engage.offers import create_offer
from patron.schema import Base
from patron.segments.rules import create_segment, evaluate_segments
from patron.service.cases import open_case
from patron.service.schema import Case
from patron.strategy.network import add_link_records
from patron.web.import_pages import uploads_dir
from tests.conftest import WriteFile, stored_score_run

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
    ("PUT", "/api/segments/{name}"): ANALYSTS_TOO,
    ("DELETE", "/api/segments/{name}"): ANALYSTS_TOO,
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
    ("POST", "/value/score"): frozenset({"admin", "analyst"}),
    ("GET", "/value/score/panel"): EVERYONE,
    ("POST", "/segments/evolution/cluster"): frozenset({"admin", "analyst"}),
    ("GET", "/segments/evolution/cluster"): EVERYONE,
    ("GET", "/customers"): EVERYONE,
    ("GET", "/customers/{customer_id}"): EVERYONE,
    ("POST", "/customers/{customer_id}/contacts"): SERVICE,
    ("POST", "/customers/{customer_id}/cases"): SERVICE,
    ("POST", "/customers/{customer_id}/consents"): SERVICE,
    ("POST", "/customers/{customer_id}/details"): SERVICE,
    ("POST", "/customers/{customer_id}/preferences"): SERVICE,
    ("GET", "/service/cases/{case_id}"): SERVICE,
    ("POST", "/service/cases/{case_id}/notes"): SERVICE,
    ("POST", "/service/cases/{case_id}/resolve"): SERVICE,
    ("POST", "/service/cases/{case_id}/reopen"): SERVICE,
    ("POST", "/service/cases/{case_id}/assign"): SERVICE,
    ("POST", "/service/cases/{case_id}/escalate"): SERVICE,
    ("GET", "/segments"): EVERYONE,
    ("POST", "/segments"): ANALYSTS_TOO,
    ("POST", "/segments/count"): EVERYONE,
    ("GET", "/segments/evolution"): EVERYONE,
    ("GET", "/segments/{name}"): EVERYONE,
    ("POST", "/segments/{name}"): ANALYSTS_TOO,
    ("POST", "/segments/{name}/delete"): ANALYSTS_TOO,
    ("GET", "/segments/{name}/members.csv"): ANALYSTS_TOO,
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
    ("GET", "/campaigns/new"): MANAGERS,
    ("POST", "/campaigns/new/preview"): MANAGERS,
    ("POST", "/campaigns/new"): MANAGERS,
    ("POST", "/campaigns/{key}/send"): MANAGERS,
    ("POST", "/campaigns/{key}/discard"): MANAGERS,
    ("POST", "/campaigns/{key}/responses"): MANAGERS,
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

# The out-of-portfolio column: what a manager meets about a customer outside the accounts they manage (every
# route a manager may call says). Bob is that customer; Ann is the manager's one customer.
HIDDEN = "answers exactly as for a customer who does not exist, and writes nothing"
UNLISTED = "lists the portfolio's customers only"
COUNTED = "counts the portfolio's customers only"
NAMES_NONE = "names no customer"  # the caller's own account, offers, aggregates of the whole base
SOURCE_WIDE = "an import right loads whole sources: the portfolio does not limit it (docs/SECURITY.md)"
OWN_CAMPAIGNS = "targets, previews and sends to the portfolio's customers only (tests/test_campaign_wizard.py)"
OUT_OF_PORTFOLIO: dict[tuple[str, str], str] = {
    ("POST", "/api/auth/token"): NAMES_NONE,
    ("GET", "/api/me"): NAMES_NONE,
    ("POST", "/api/auth/logout"): NAMES_NONE,
    ("GET", "/api/customers"): UNLISTED,
    ("GET", "/api/customers/export.csv"): UNLISTED,
    ("GET", "/api/customers/{customer_id}"): HIDDEN,
    ("GET", "/api/customers/{customer_id}/profile"): HIDDEN,
    ("GET", "/api/customers/{customer_id}/context"): HIDDEN,
    ("GET", "/api/customers/{customer_id}/next-best-offer"): HIDDEN,
    ("GET", "/api/customers/{customer_id}/recommendations"): HIDDEN,
    ("GET", "/api/customers/{customer_id}/consents"): HIDDEN,
    ("POST", "/api/customers/{customer_id}/consents"): HIDDEN,
    ("GET", "/api/customers/{customer_id}/merges"): HIDDEN,
    ("POST", "/api/events"): HIDDEN,
    ("POST", "/api/events/batch"): HIDDEN,
    ("GET", "/api/segments"): COUNTED,
    ("POST", "/api/segments"): NAMES_NONE,  # a rule; its members are read through the routes below
    ("POST", "/api/segments/preview"): COUNTED,
    ("GET", "/api/segments/{name}/members"): UNLISTED,
    ("PUT", "/api/segments/{name}"): COUNTED,
    ("DELETE", "/api/segments/{name}"): NAMES_NONE,
    ("GET", "/api/value/runs"): NAMES_NONE,
    ("GET", "/api/value/retention"): NAMES_NONE,
    ("GET", "/api/value/runs/{run_id}/scores"): UNLISTED,
    ("GET", "/api/value/lists/{name}"): UNLISTED,
    ("GET", "/api/cases/queue"): UNLISTED,
    ("POST", "/api/cases"): HIDDEN,
    ("POST", "/api/cases/{case_id}/notes"): HIDDEN,
    ("POST", "/api/cases/{case_id}/resolve"): HIDDEN,
    ("GET", "/api/strategy/budget"): UNLISTED,
    ("GET", "/api/strategy/portfolio"): NAMES_NONE,  # segments and managers, not customers
    ("GET", "/api/strategy/pricing"): UNLISTED,
    ("GET", "/api/strategy/elasticity"): NAMES_NONE,
    ("GET", "/api/strategy/network"): UNLISTED,
    ("POST", "/api/strategy/links"): HIDDEN,
    ("GET", "/api/campaigns"): NAMES_NONE,
    ("GET", "/api/campaigns/{key}/live"): NAMES_NONE,
    ("GET", "/api/campaigns/{key}/report"): NAMES_NONE,
    ("GET", "/api/campaigns/{key}/preview"): UNLISTED,
    ("GET", "/api/offers"): NAMES_NONE,
    ("POST", "/api/offers"): NAMES_NONE,
    ("POST", "/api/customers"): SOURCE_WIDE,
    ("GET", "/login"): NAMES_NONE,
    ("GET", "/docs"): NAMES_NONE,
    ("POST", "/login"): NAMES_NONE,
    ("GET", "/logout"): NAMES_NONE,
    ("GET", "/"): UNLISTED,
    ("GET", "/value/score/panel"): NAMES_NONE,
    ("GET", "/customers"): UNLISTED,
    ("GET", "/customers/{customer_id}"): HIDDEN,
    ("POST", "/customers/{customer_id}/contacts"): HIDDEN,
    ("POST", "/customers/{customer_id}/cases"): HIDDEN,
    ("POST", "/customers/{customer_id}/consents"): HIDDEN,
    ("POST", "/customers/{customer_id}/details"): HIDDEN,
    ("POST", "/customers/{customer_id}/preferences"): HIDDEN,
    ("GET", "/service/cases/{case_id}"): HIDDEN,
    ("POST", "/service/cases/{case_id}/notes"): HIDDEN,
    ("POST", "/service/cases/{case_id}/resolve"): HIDDEN,
    ("POST", "/service/cases/{case_id}/reopen"): HIDDEN,
    ("POST", "/service/cases/{case_id}/assign"): HIDDEN,
    ("POST", "/service/cases/{case_id}/escalate"): HIDDEN,
    ("GET", "/segments"): COUNTED,
    ("POST", "/segments"): NAMES_NONE,
    ("POST", "/segments/count"): COUNTED,
    ("GET", "/segments/evolution"): NAMES_NONE,
    ("GET", "/segments/evolution/cluster"): NAMES_NONE,
    ("GET", "/segments/{name}"): UNLISTED,
    ("POST", "/segments/{name}"): NAMES_NONE,  # the rule changes; the page after it lists as GET does
    ("POST", "/segments/{name}/delete"): NAMES_NONE,
    ("GET", "/segments/{name}/members.csv"): UNLISTED,
    ("GET", "/service"): UNLISTED,
    ("GET", "/quality"): UNLISTED,
    ("GET", "/strategy"): UNLISTED,
    ("GET", "/strategy/budget"): UNLISTED,
    ("GET", "/strategy/portfolio"): NAMES_NONE,
    ("GET", "/strategy/pricing"): UNLISTED,
    ("GET", "/strategy/elasticity"): NAMES_NONE,
    ("GET", "/strategy/elasticity/panel"): NAMES_NONE,
    ("GET", "/strategy/network"): UNLISTED,
    ("GET", "/strategy/contacts"): NAMES_NONE,  # no uplift model here; the plan's curve counts, never names
    ("GET", "/campaigns"): NAMES_NONE,
    ("GET", "/campaigns/{key}"): UNLISTED,
    ("GET", "/campaigns/{key}/live"): NAMES_NONE,
    ("GET", "/campaigns/new"): NAMES_NONE,
    ("POST", "/campaigns/new/preview"): OWN_CAMPAIGNS,
    ("POST", "/campaigns/new"): OWN_CAMPAIGNS,
    ("POST", "/campaigns/{key}/send"): OWN_CAMPAIGNS,
    ("POST", "/campaigns/{key}/discard"): OWN_CAMPAIGNS,
    ("POST", "/campaigns/{key}/responses"): HIDDEN,
    ("GET", "/imports"): SOURCE_WIDE,
    ("POST", "/imports"): SOURCE_WIDE,
    ("GET", "/imports/{job_id}/panel"): SOURCE_WIDE,
    ("POST", "/imports/prepare"): SOURCE_WIDE,
    ("GET", "/imports/staged/{staged_id}"): SOURCE_WIDE,
    ("POST", "/imports/staged/{staged_id}"): SOURCE_WIDE,
    ("GET", "/vendor/plotly.min.js"): NAMES_NONE,
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


DELETIONS = {("DELETE", "/api/segments/{name}"), ("POST", "/segments/{name}/delete")}


def request_for(method: str, path: str, role: str, ids: dict[str, Any]) -> dict[str, Any]:
    """A well-formed request, so an allowed call does its real work and a refused one would have written."""
    doomed = {"name": "doomed"} if (method, path) in DELETIONS else {}  # not the segment the other routes read
    url = path.format(**{**ids, **doomed})
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
        ("PUT", "/api/segments/{name}"): {"json": {"rule": "orders >= 0"}},
        ("POST", "/segments/{name}"): {"data": {"rule": "orders >= 0"}},
        ("POST", "/segments/{name}/delete"): {"data": {"confirm": "yes"}},
        ("POST", "/campaigns/new/preview"): {"data": {"segment": "everyone", "subject": "Hi", "body": "Hi {{ name }}"}},
        ("POST", "/campaigns/new"): {"data": {"segment": "everyone", "key": unique, "name": unique, "subject": "Hi",
                                              "body": "Hi {{ name }}", "control": "10", "arms": "A"}},
        ("POST", "/campaigns/{key}/responses"): {"data": {"customer": "crm:2", "kind": "bought"}},
        ("POST", "/customers/{customer_id}/contacts"): {"data": {"key": unique, "kind": "call", "body": "hello"}},
        ("POST", "/customers/{customer_id}/cases"): {"data": {"key": unique, "subject": unique}},
        ("POST", "/customers/{customer_id}/consents"): {"data": {"channel": "sms", "status": "granted",
                                                                   "wording": unique}},
        ("POST", "/customers/{customer_id}/details"): {"data": {"city": unique}},
        ("POST", "/value/score"): {"data": {"source": "no-such-source"}},  # refused before any work starts
        ("POST", "/segments/evolution/cluster"): {"data": {"population": "orders >>> 0"}},  # likewise
        ("POST", "/customers/{customer_id}/preferences"): {"data": {"channel": "sms", "max_per_month": "2"}},
        ("POST", "/service/cases/{case_id}/notes"): {"data": {"text": unique}},
        ("POST", "/service/cases/{case_id}/resolve"): {"data": {"text": unique}},
        ("POST", "/service/cases/{case_id}/reopen"): {"data": {"text": unique}},
        ("POST", "/service/cases/{case_id}/assign"): {"data": {"agent": "me"}},
        ("POST", "/service/cases/{case_id}/escalate"): {"data": {"text": unique}},
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
    _people_with_history(engine, write_file)
    for role in ROLES:
        create_user(engine, role, PASSWORD, role)
    create_segment(engine, "everyone", "orders >= 0")
    create_segment(engine, "doomed", "orders >= 1")
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
        _bobs_case_and_campaign(engine)
        staged = stage_upload(b"id,email\n79,y@example.com\n", "staged.csv", uploads_dir(), PEOPLE_MAPPING)
        ids = {"customer_id": ann, "case_id": case.json()["id"], "name": "everyone", "run_id": 1, "key": "none",
               "job_id": "none", "staged_id": staged.id, "review_id": 1, "merge_id": 1, "username": "analyst",
               "token_id": 10**9}  # fmt: skip
        yield client, tokens, ids


PEOPLE = """id,email,name,first,last,postal,education,deals,web,catalog,shop
1,ann@example.com,Ann Lee,Ann,Lee,1011,Master,2,3,1,4
2,bob@example.org,Bob Ray,Bob,Ray,2022,Basic,5,1,0,1
3,bob.ray@example.org,Bob Ray,Bob,Ray,2022,Basic,1,2,2,2
"""
ORDERS = "id,order,date,amount\n1,o1,2024-01-05,40\n1,o2,2024-03-05,60\n2,o3,2024-02-05,90\n3,o4,2024-02-07,20\n"


def _people_with_history(engine: Engine, write_file: WriteFile) -> None:
    """Ann (the manager's), Bob and Bob's likely duplicate, with orders, value scores, deal counts and links, so
    that every list and analysis a manager may read would name Bob if the portfolio did not hold."""
    people = write_file("people.csv", PEOPLE)
    counts = {f"{name}_purchases": {"column": name, "type": "integer"} for name in ("deals", "web", "catalog")}
    mapping = {
        "source": {"system": "crm"},
        "customers": {"external_id": "id", "email": "email", "first_name": "first", "last_name": "last",
                      "display_name": "name", "profile": {"postal_code": "postal", "education": "education"},
                      "attributes": {**counts,
                                     "store_purchases": {"column": "shop", "type": "integer"}}},
    }  # fmt: skip
    import_file(engine, people, parse_mapping(mapping), rejects_dir=people.parent)
    orders = write_file("orders.csv", ORDERS)
    order_mapping = {
        "source": {"system": "crm"},
        "orders": {"customer": "id", "order_id": "order", "ordered_at": "date", "revenue": "amount"},
    }
    import_file(engine, orders, parse_mapping(order_mapping), rejects_dir=orders.parent)  # fmt: skip
    with engine.begin() as conn:
        by_source_id = select(s.Identity.value, s.Identity.customer_id).where(s.Identity.kind == "external")
        ids = {str(value): int(customer) for value, customer in conn.execute(by_source_id)}
    stored_score_run(engine, [ids["2"], ids["1"], ids["3"]], p_alive=0.4, clv_top=9000, at_risk_top=5000)
    links = [{"from": "crm:1", "to": "crm:2", "kind": "referral"}, {"from": "crm:2", "to": "crm:3", "kind": "referral"}]
    add_link_records(engine, enumerate(links), source="crm")
    for customer in ids.values():
        record_consent(engine, customer, channel="email")


def _bobs_case_and_campaign(engine: Engine) -> None:
    """A case about Bob in the queue, a campaign whose preview would show him, segment members counted."""
    with engine.connect() as conn:
        bob = conn.scalar(select(s.Identity.customer_id).where(s.Identity.kind == "external", s.Identity.value == "2"))
    assert bob is not None
    open_case(engine, bob, subject="Bob's parcel is late", kind="complaint")
    evaluate_segments(engine)
    create_campaign(engine, "spring", "Spring", rule="orders >= 0", subject="Hello {{ first_name }}",
                    body="Dear {{ first_name }}", control_share=0)  # fmt: skip
    prepare_campaign(engine, "spring")


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


@pytest.mark.parametrize("role", ROLES)
def test_the_menu_offers_each_role_only_pages_it_may_open(
    role: str, store: tuple[TestClient, dict[str, str], dict[str, Any]]
) -> None:
    client, tokens, _ = store
    client.cookies.clear()
    client.cookies.set("patron_session", tokens[role])
    menu = client.get("/").text.split("<nav>", 1)[1].split("</nav>", 1)[0]
    links = re.findall(r'href="([^"]+)"', menu)
    assert "/customers" in links
    assert [link for link in links if role not in ALLOWED[("GET", link)]] == []
    assert ("/strategy/budget" in links) == (role in ALLOWED[("GET", "/strategy/budget")])


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


GHOST = 987654321  # an id (and external id) nobody has
# A customer-naming list route whose path needs other values than the table-wide ids.
PATH_VALUES = {("GET", "/api/value/lists/{name}"): {"name": "at-risk"}, ("GET", "/api/campaigns/{key}/preview"):
               {"key": "spring"}, ("GET", "/campaigns/{key}"): {"key": "spring"},
               ("POST", "/campaigns/{key}/responses"): {"key": "spring"}}  # fmt: skip
# How a counting route's answer says how many customers it counted.
COUNTS: dict[tuple[str, str], Callable[[Any], int]] = {
    ("POST", "/api/segments/preview"): lambda reply: int(reply.json()["count"]),
    ("GET", "/api/segments"): lambda reply: next(int(row["member_count"]) for row in reply.json()
                                                 if row["name"] == "everyone"),
    ("POST", "/segments/count"): lambda reply: int(re.findall(r"([\d,]+) of [\d,]+ customers match", reply.text)[0]),
    ("GET", "/segments"): lambda reply: int(re.findall(r">everyone</a></td><td><code>[^<]*</code></td><td>(\d+)</td>",
                                                       reply.text)[0]),
    ("PUT", "/api/segments/{name}"): lambda reply: int(reply.json()["member_count"]),
}  # fmt: skip


def _naming_bob(ids: dict[str, Any], bob: int) -> dict[str, Any]:
    """The table's ids, with Bob (and a case about him) wherever a route names a customer."""
    return {**ids, "customer_id": bob, "case_id": ids["bobs_case"]}


def _naming_nobody(ids: dict[str, Any]) -> dict[str, Any]:
    return {**ids, "customer_id": GHOST, "case_id": GHOST}


def _about(request: dict[str, Any], reference: str) -> dict[str, Any]:
    """A request's body with its customer references (crm:2, and an event's customer) swapped for ``reference``."""
    form = request.get("data") or {}
    if form.get("customer") == "crm:2":  # a form naming a customer (a campaign response)
        return {**request, "data": {**form, "customer": reference}}
    body = request.get("json")
    if body is None:
        return request
    text = json.dumps(body).replace('"crm:2"', json.dumps(reference))
    text = text.replace('"customer": "crm:1"', f'"customer": {json.dumps(reference)}')
    return {**request, "json": json.loads(text)}


def _names_bob(reply: Any, bob: int) -> bool:
    """Does an answer name Bob: his name, his e-mail, his id in a customer field, or a link to his page."""
    text = reply.text
    if "bob ray" in text.lower() or "bob@example.org" in text or f'/customers/{bob}"' in text:
        return True
    if '/customers/crm:2"' in text or ">crm:2<" in text:  # a link to him, or his key, as lists show customers
        return True
    if f"customer {bob}," in text or f"\n{bob}," in text:  # a point of the network plot, a CSV row
        return True
    if not reply.headers.get("content-type", "").startswith("application/json"):
        return False
    found = False

    def walk(value: Any, key: str | None = None) -> None:
        nonlocal found
        if isinstance(value, dict):
            for inner_key, inner in value.items():
                walk(inner, inner_key)
        elif isinstance(value, list):
            for inner in value:
                walk(inner, key)
        elif key in ("id", "customer_id", "first_id", "last_id", "members", "items") and value == bob:
            found = True

    walk(reply.json())
    return found


def test_a_manager_meets_a_customer_outside_their_portfolio_as_nobody(
    engine: Engine, store: tuple[TestClient, dict[str, str], dict[str, Any]]
) -> None:
    """The out-of-portfolio column, route by route: Bob is named nowhere a manager looks, asking about him answers
    as asking about nobody, and nothing the manager does about him is written. The admin's answers show that each
    check could fail: they do name (or count) Bob."""
    client, tokens, ids = store
    with engine.connect() as conn:
        bob = conn.scalar(select(s.Identity.customer_id).where(s.Identity.kind == "external", s.Identity.value == "2"))
    assert bob is not None
    ids = {**ids, "bobs_case": _case_about(engine, bob)}
    callable_by_manager = {route for route, roles in ALLOWED.items() if "manager" in roles}
    assert callable_by_manager == OUT_OF_PORTFOLIO.keys(), "say in OUT_OF_PORTFOLIO what a manager meets here"
    failures = []
    for method, path in sorted(callable_by_manager):
        expected = OUT_OF_PORTFOLIO[(method, path)]
        if expected not in (HIDDEN, UNLISTED, COUNTED):
            continue
        values = {**ids, **PATH_VALUES.get((method, path), {})}

        def ask(
            role: str, values: dict[str, Any], reference: str = "crm:2", route: tuple[str, str] = (method, path)
        ) -> Any:
            client.cookies.clear()
            client.cookies.set("patron_session", tokens[role])
            request = _about(request_for(*route, role, values), reference)
            return client.request(**request, headers={"Authorization": f"Bearer {tokens[role]}"})

        where = f"{method} {path}"
        if expected == HIDDEN:
            before = _fingerprint(engine)
            about_bob = ask("manager", _naming_bob(values, bob))
            if _fingerprint(engine) != before:
                failures.append(f"{where}: writing about Bob changed the store")
            about_nobody = ask("manager", _naming_nobody(values), f"crm:{GHOST}")
            # The answers may repeat what was asked about: Bob's case, his source id (crm:2) or his own id.
            named = ids["bobs_case"] if "{case_id}" in path else (bob if "{customer_id}" in path else 2)
            named = bob if (method, path) == ("POST", "/api/cases") else named
            ghost_text = about_nobody.text.replace(str(GHOST), str(named))
            if (about_bob.status_code, about_bob.text) != (about_nobody.status_code, ghost_text):
                failures.append(f"{where}: Bob {about_bob.status_code} {about_bob.text[:160]!r}, nobody "
                                f"{about_nobody.status_code} {about_nobody.text[:160]!r}")  # fmt: skip
            if method == "GET" and ask("admin", _naming_bob(values, bob)).status_code >= 400:
                failures.append(f"{where}: the admin cannot read Bob here either, so this proves nothing")
        elif expected == UNLISTED:
            mine, everyone = ask("manager", values), ask("admin", values)
            if not _names_bob(everyone, bob):
                failures.append(f"{where}: the admin's answer does not name Bob ({everyone.status_code}), so this "
                                f"proves nothing: {everyone.text[:200]!r}")  # fmt: skip
            if mine.status_code != 200 or _names_bob(mine, bob):
                failures.append(f"{where}: the manager's answer names Bob ({mine.status_code})")
        else:
            counted = COUNTS[(method, path)]
            mine, everyone = counted(ask("manager", values)), counted(ask("admin", values))
            if (mine, everyone) != (1, 3):
                failures.append(f"{where}: counted {mine} for the manager (Ann only: 1), {everyone} for the admin")
    assert failures == [], "\n".join(failures)


def _case_about(engine: Engine, customer: int) -> int:
    with engine.connect() as conn:
        case = conn.scalar(select(table_of(Case).c.id).where(table_of(Case).c.customer_id == customer))
    assert case is not None
    return int(case)
