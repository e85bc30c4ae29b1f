"""Needs-based segments from the browser, on both stores: the roles that run models cluster the customers from the
evolution page (refused beside the field when the form cannot run, nothing stored), the page follows the run and
then shows its segments; the other roles see the runs but no form."""

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
from patron.segments.schema import SegmentationRun
from tests.conftest import WriteFile
from tests.test_pages import CHROMIUM, serving, sign_in_page

PASSWORD = "a-long-password-1"
MAPPING = {
    "source": {"system": "shop"},
    "customers": {"external_id": "customer"},
    "orders": {"customer": "customer", "order_id": "order", "ordered_at": "day", "revenue": "amount"},
}


def _shop(engine: Engine, write_file: WriteFile) -> None:
    """120 customers with one to eight orders each in 2024 (seeded): enough to cluster into a few segments."""
    rng = random.Random(11)
    lines = ["customer,order,day,amount"]
    for customer in range(1, 121):
        for number in range(rng.randint(1, 8)):
            lines.append(f"{customer},{customer}-{number},2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
                         f"{rng.randint(5, 400)}")  # fmt: skip
    path = write_file("orders.csv", "\n".join(lines) + "\n")
    import_file(engine, path, parse_mapping(MAPPING), rejects_dir=path.parent)
    create_user(engine, "ana", PASSWORD, "analyst")
    create_user(engine, "agent", PASSWORD, "agent")


def _runs(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(SegmentationRun)) or 0)


def _csrf(page: str) -> str:
    return page.split('"X-CSRF-Token": "', 1)[1].split('"', 1)[0]


def test_an_analyst_clusters_from_the_page_and_a_bad_form_is_refused_beside_its_field(
    engine: Engine, write_file: WriteFile
) -> None:
    _shop(engine, write_file)
    with TestClient(create_app(engine), follow_redirects=False) as client:
        assert client.post("/login", data={"username": "agent", "password": PASSWORD}).status_code == 303
        seen = client.get("/segments/evolution").text
        assert 'id="cluster-now"' not in seen
        assert "An admin or an analyst clusters the customers" in seen
        refused = client.post("/segments/evolution/cluster", data={"csrf_token": _csrf(seen), "population": ""})
        assert refused.status_code == 403

        client.cookies.clear()
        assert client.post("/login", data={"username": "ana", "password": PASSWORD}).status_code == 303
        seen = client.get("/segments/evolution").text
        assert 'id="cluster-now"' in seen
        csrf = _csrf(seen)
        bad_rule = client.post(
            "/segments/evolution/cluster", data={"csrf_token": csrf, "population": "orders >>> 0", "max_segments": "3"}
        )
        assert bad_rule.status_code == 422
        assert "not a valid rule" in bad_rule.text.split('id="population-problem"', 1)[1][:200]
        assert 'value="orders &gt;&gt;&gt; 0"' in bad_rule.text  # what was typed stays in the field
        too_many = client.post("/segments/evolution/cluster",
                               data={"csrf_token": csrf, "population": "orders > 0", "max_segments": "99"})  # fmt: skip
        assert too_many.status_code == 422
        assert "up to 2 to 20 segments" in too_many.text.split('id="max-segments-problem"', 1)[1][:200]
        not_a_number = client.post("/segments/evolution/cluster", data={"csrf_token": csrf, "max_segments": "a few"})
        assert not_a_number.status_code == 422
        assert 'id="max-segments-problem"' in not_a_number.text
        odd_method = client.post("/segments/evolution/cluster", data={"csrf_token": csrf, "method": "magic"})
        assert odd_method.status_code == 422
        assert "the method is one of gmm, kmeans" in odd_method.text.split('id="method-problem"', 1)[1][:200]
        assert _runs(engine) == 0  # nothing ran

        started = client.post("/segments/evolution/cluster",
                              data={"csrf_token": csrf, "population": "orders > 0", "method": "kmeans",
                                    "max_segments": "3"})  # fmt: skip
        assert (started.status_code, started.headers["location"]) == (303, "/segments/evolution?clustering=1")
        deadline = time.monotonic() + 60
        panel = client.get("/segments/evolution/cluster").text
        while 'data-finished="done"' not in panel and time.monotonic() < deadline:
            assert 'data-finished="failed"' not in panel, panel
            time.sleep(0.2)
            panel = client.get("/segments/evolution/cluster").text
        assert "segments, chosen by the highest silhouette" in panel
        assert _runs(engine) == 1
        shown = client.get("/segments/evolution").text
        assert "Segments of run" in shown
        rows = shown.split('id="latest-segments"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0].count("<tr>")
        with engine.connect() as conn:
            chosen = conn.scalar(select(SegmentationRun.segments))
        assert chosen is not None
        assert rows == chosen >= 2


def test_in_chromium_the_analyst_starts_a_clustering_and_sees_its_segments(
    engine: Engine, write_file: WriteFile, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    _shop(engine, write_file)
    with serving(engine) as site, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in_page(page, site, "ana", PASSWORD)
        page.goto(site + "/segments/evolution")
        page.fill("input[name=max_segments]", "3")
        page.click("#cluster-now")
        expect(page.locator("#cluster-job")).to_have_attribute("data-finished", "done", timeout=60_000)
        page.click("#cluster-job a.button")
        expect(page.locator("#latest-segments tbody tr").first).to_be_visible()
        page.screenshot(path=str(tmp_path / "evolution.png"), full_page=True)
        browser.close()
    assert _runs(engine) == 1
