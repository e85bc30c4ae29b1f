"""Consents, offers and a score run's customers over the API, on both stores, with what each role may not do."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.engage.consent import consent_in_force
from patron.engage.schema import Offer
from tests.conftest import stored_score_run
from tests.test_api import client, count, customer_id, sign_in

__all__ = ["client"]  # the fixture, shared with test_api.py


def test_consents_are_recorded_by_those_allowed_and_the_newest_is_in_force(client: TestClient, engine: Engine) -> None:
    agent = sign_in(client, "agent")
    ann = customer_id(client, agent, "ann@example.com")
    granted = client.post(
        f"/api/customers/{ann}/consents", headers=agent, json={"channel": "email", "status": "granted"}
    )
    assert granted.status_code == 201, granted.text
    withdrawn = client.post(
        f"/api/customers/{ann}/consents", headers=agent,
        json={"channel": "email", "status": "withdrawn", "source": "preference-centre", "wording_version": "v2"},
    )  # fmt: skip
    assert withdrawn.json()["in_force"] == [{"channel": "email", "purpose": "marketing", "granted": False}]
    assert [r["status"] for r in withdrawn.json()["records"]] == ["granted", "withdrawn"]
    assert withdrawn.json()["records"][1]["source"] == "preference-centre"
    assert not consent_in_force(engine, ann, channel="email")  # what campaigns check before each send

    analyst = sign_in(client, "analyst")
    refused = client.post(
        f"/api/customers/{ann}/consents", headers=analyst, json={"channel": "sms", "status": "granted"}
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    bob = customer_id(client, agent, "bob@example.org")
    outside = client.post(
        f"/api/customers/{bob}/consents",
        headers=sign_in(client, "manager"),
        json={"channel": "sms", "status": "granted"},
    )
    assert outside.status_code == 404  # not in the manager's portfolio
    assert count(engine, table_of(s.Consent)) == 2  # neither refusal wrote anything

    wrong = client.post(f"/api/customers/{ann}/consents", headers=agent, json={"channel": "email", "status": "maybe"})
    assert (wrong.status_code, wrong.json()["field"]) == (422, "status")
    assert (
        client.post(
            "/api/customers/999999/consents", headers=agent, json={"channel": "email", "status": "granted"}
        ).status_code
        == 404
    )
    assert client.get(f"/api/customers/{ann}/consents", headers=analyst).json()["in_force"][0]["granted"] is False


def test_offers_are_listed_for_all_and_added_by_managers(client: TestClient, engine: Engine) -> None:
    manager = sign_in(client, "manager")
    made = client.post(
        "/api/offers", headers=manager, json={"name": "vip upgrade", "margin": 25.5, "eligibility": "orders > 0"}
    )
    assert made.status_code == 201, made.text
    listed = client.get("/api/offers", headers=sign_in(client, "agent")).json()
    assert [(o["name"], o["margin"], o["margin_minor"]) for o in listed] == [("vip upgrade", 25.5, 2550)]

    assert (
        client.post("/api/offers", headers=sign_in(client, "agent"), json={"name": "x", "margin": 1}).status_code == 403
    )
    twice = client.post("/api/offers", headers=manager, json={"name": "vip upgrade", "margin": 1})
    assert (twice.status_code, twice.json()["code"]) == (409, "conflict")
    bad_rule = client.post("/api/offers", headers=manager, json={"name": "y", "margin": 1, "eligibility": "ordrs > 0"})
    assert bad_rule.status_code in {400, 422}
    assert "ordrs" in bad_rule.json()["detail"]
    losing = client.post("/api/offers", headers=manager, json={"name": "z", "margin": -1})
    assert (losing.status_code, losing.json()["field"]) == (422, "margin")
    assert count(engine, table_of(Offer)) == 1


def test_a_score_runs_customers_page_by_rank_within_the_callers_portfolio(client: TestClient, engine: Engine) -> None:
    admin = sign_in(client, "admin")
    ids = [customer_id(client, admin, mail) for mail in ("ann@example.com", "bob@example.org", "cid@example.net")]
    run = stored_score_run(engine, ids)
    page = client.get(f"/api/value/runs/{run}/scores?limit=2", headers=admin).json()
    assert (page["total"], [row["customer_id"] for row in page["items"]]) == (3, ids[:2])
    second = client.get(f"/api/value/runs/{run}/scores?limit=2&offset=2", headers=admin).json()
    assert [row["customer_id"] for row in second["items"]] == ids[2:]
    assert client.get(f"/api/value/runs/{run}/scores?tier=B", headers=admin).json()["items"][0]["customer_id"] == ids[1]
    mine = client.get(f"/api/value/runs/{run}/scores", headers=sign_in(client, "manager")).json()
    assert [row["customer_id"] for row in mine["items"]] == [ids[0]]  # Ann, the manager's one customer
    missing = client.get("/api/value/runs/999/scores", headers=admin)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert client.get(f"/api/value/runs/{run}/scores?tier=AB", headers=admin).status_code == 422
