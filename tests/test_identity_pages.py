"""The identity page in Chromium on FEBRL dataset 1: the admin reviews a pair side by side and merges it, undoes
a merge, and finds duplicates from the page; an agent is refused without seeing anyone's data. Each outcome is
checked in the store. Screenshots go to the test's folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from patron.auth.service import create_user
from patron.cif.identity.resolve import Thresholds, link
from patron.cif.identity.schema import IdentityMerge, MatchReview
from patron.cif.importer import import_file
from patron.cif.store import make_engine, migrate
from patron.demo import demo_mapping
from tests.conftest import SHARED_DATA, needs
from tests.test_pages import CHROMIUM, serving, sign_in_page

FEBRL1 = SHARED_DATA / "febrl" / "dataset1.csv"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("identity-pages"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)"),
    needs(FEBRL1),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    folder = tmp_path_factory.mktemp("identity-site")
    engine = make_engine(f"sqlite:///{folder / 'patron.db'}")
    migrate(engine)
    import_file(engine, FEBRL1, demo_mapping("febrl"), rejects_dir=folder)
    link(engine, thresholds=Thresholds(0.95, 0.2), actor="setup")
    create_user(engine, "admin", "admin-password", "admin")
    create_user(engine, "ana", "ana-password", "agent")
    with serving(engine) as url:
        yield url, engine
    engine.dispose()


def test_the_admin_merges_a_reviewed_pair_and_undoes_a_merge(site: tuple[str, Engine], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    url, engine = site
    with engine.connect() as conn:
        query = select(MatchReview.id, MatchReview.left_id, MatchReview.right_id).where(MatchReview.status == "open")
        first = conn.execute(query.order_by(MatchReview.match_probability.desc(), MatchReview.id).limit(1)).one()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in_page(page, url, "admin", "admin-password")
        page.click("nav >> text=Identity")
        card = page.locator(f"#review-{first.id}")
        expect(card).to_contain_text("first name")
        expect(card).to_contain_text(f"Customer {first.left_id}")
        page.screenshot(path=str(tmp_path / "identity.png"), full_page=False)
        card.get_by_role("button", name="Same person: merge").click()
        expect(page.get_by_role("status")).to_contain_text("merged into one customer")
        with engine.connect() as conn:
            assert conn.scalar(select(MatchReview.status).where(MatchReview.id == first.id)) == "accepted"
            merged = IdentityMerge.merged_id == max(first.left_id, first.right_id)
            merge = conn.execute(select(IdentityMerge.id, IdentityMerge.how).where(merged)).one()
        assert merge.how == "review"
        merged_id = max(first.left_id, first.right_id)
        page.goto(f"{url}/customers/{merged_id}")  # the merged record's id leads to the survivor's page
        expect(page.locator("#merges")).to_contain_text(f"customer {merged_id} merged in")
        page.screenshot(path=str(tmp_path / "survivor.png"), full_page=True)
        page.goto(f"{url}/identity")
        page.locator(f"form[action='/identity/merges/{merge.id}/split'] button").click()
        expect(page.get_by_role("status")).to_contain_text(f"Merge {merge.id} undone")
        with engine.connect() as conn:
            assert conn.scalar(select(IdentityMerge.split_at).where(IdentityMerge.id == merge.id)) is not None
        page.get_by_role("button", name="Find duplicates now").click()
        expect(page.get_by_role("status")).to_contain_text("records compared")
        page.screenshot(path=str(tmp_path / "identity-after.png"), full_page=True)
        browser.close()


def test_an_agent_is_refused_and_sees_no_one(site: tuple[str, Engine], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    url, _ = site
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        sign_in_page(page, url, "ana", "ana-password")
        expect(page.locator("nav")).not_to_contain_text("Identity")
        reply = page.goto(url + "/identity")
        assert reply is not None
        assert reply.status == 403
        expect(page.get_by_role("alert")).to_contain_text("admin's work")
        assert page.locator(".review").count() == 0
        page.screenshot(path=str(tmp_path / "identity-agent.png"), full_page=True)
        browser.close()
