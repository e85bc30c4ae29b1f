"""The dashboard's own action, on both stores: with orders but no score run, the roles that run models score the
customers from the page; the run goes on in the server while the page follows it, and the tiers appear."""

from __future__ import annotations

import random
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from patron.app import create_app
from patron.auth.service import create_user
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.value.schema import ScoreRun
from tests.conftest import WriteFile

PASSWORD = "a-long-password-1"


def _orders(write_file: WriteFile) -> Path:
    """80 customers with one to six orders each in 2024 (seeded): enough for a model to fit."""
    rng = random.Random(7)
    lines = ["customer,order,day,amount"]
    for customer in range(1, 81):
        for number in range(rng.randint(1, 6)):
            lines.append(f"{customer},{customer}-{number},2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
                         f"{rng.randint(5, 200)}")  # fmt: skip
    return write_file("orders.csv", "\n".join(lines) + "\n")


def test_an_analyst_scores_the_customers_from_the_dashboard(engine: Engine, write_file: WriteFile) -> None:
    path = _orders(write_file)
    mapping = {"source": {"system": "shop"}, "customers": {"external_id": "customer"},
               "orders": {"customer": "customer", "order_id": "order",
                                                         "ordered_at": "day", "revenue": "amount"}}  # fmt: skip
    import_file(engine, path, parse_mapping(mapping), rejects_dir=path.parent)
    create_user(engine, "ana", PASSWORD, "analyst")
    create_user(engine, "agent", PASSWORD, "agent")
    with TestClient(create_app(engine), follow_redirects=False) as client:
        assert client.post("/login", data={"username": "agent", "password": PASSWORD}).status_code == 303
        page = client.get("/").text
        assert "No lifetime values yet" in page
        assert 'id="score-now"' not in page
        assert "An admin or an analyst scores the customers." in page
        csrf = page.split('"X-CSRF-Token": "', 1)[1].split('"', 1)[0]
        assert client.post("/value/score", data={"csrf_token": csrf, "source": "shop"}).status_code == 403

        client.cookies.clear()
        assert client.post("/login", data={"username": "ana", "password": PASSWORD}).status_code == 303
        page = client.get("/").text
        assert 'id="score-now"' in page
        csrf = page.split('"X-CSRF-Token": "', 1)[1].split('"', 1)[0]
        unknown = client.post("/value/score", data={"csrf_token": csrf, "source": "nowhere"})
        assert unknown.status_code == 422
        assert "there are no orders for source nowhere" in unknown.text
        started = client.post("/value/score", data={"csrf_token": csrf, "source": "shop"})
        assert (started.status_code, started.headers["location"]) == (303, "/?scoring=1")
        assert 'id="score-job"' in client.get("/?scoring=1").text
        deadline, panel = time.monotonic() + 120, ""
        while time.monotonic() < deadline:
            panel = client.get("/value/score/panel").text
            if "data-finished" in panel:
                break
            time.sleep(0.2)
        assert 'data-finished="done"' in panel, panel
        assert "Scored 80 customers of shop" in panel
        page = client.get("/").text
        assert "No lifetime values yet" not in page
        assert 'id="chart-tiers"' in page or "Customers per tier" in page
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ScoreRun)) == 1
