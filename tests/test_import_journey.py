"""An admin imports a file in the browser, on both stores: uploads it, edits the suggested mapping, dry-runs it
(nothing written), imports it, and sees each rejected row and dropped field with its line and reason; the store
holds exactly the rows that were taken."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from patron.auth.service import create_user
from patron.cif import schema as s
from tests.conftest import WriteFile
from tests.test_pages import CHROMIUM, serving, sign_in_page

PASSWORD = "a-long-password-1"
PEOPLE = (
    "id,email,name,signup\n"
    "1,ann@example.com,Ann Lee,2024-01-05\n"
    "2,bob(at)example.org,Bob Ray,2024-02-05\n"  # a bad address: the field is dropped, Bob is kept
    ",cy@example.com,Cy Doe,2024-03-05\n"  # no id: the row is rejected
    "4,dee@example.com,Dee Moe,2024-04-05\n"
)


def _customers(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(s.Customer)) or 0)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_an_admin_uploads_edits_the_mapping_dry_runs_and_imports(
    engine: Engine, write_file: WriteFile, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    create_user(engine, "admin", PASSWORD, "admin")
    upload = write_file("people.csv", PEOPLE)
    with serving(engine) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        sign_in_page(page, url, "admin", PASSWORD)
        page.goto(url + "/imports")
        page.set_input_files("input[name=data]", str(upload))
        page.click("#prepare")
        expect(page.locator("#import-preview")).to_contain_text("bob(at)example.org")
        mapping = page.locator("#mapping-text")
        expect(mapping).to_have_value(re.compile(r'external_id = "email"'))  # the suggestion, to be edited
        mapping.fill(mapping.input_value().replace('external_id = "email"', 'external_id = "id"\nemail = "email"'))

        page.click("button[value=dry-run]")
        expect(page.locator("#import-job")).to_have_attribute("data-finished", "done", timeout=30_000)
        expect(page.locator("#import-summary")).to_contain_text("nothing was written")
        rejects = page.locator("#import-rejects")
        expect(rejects).to_contain_text("not a valid e-mail address")
        expect(rejects).to_contain_text("bob(at)example.org")
        assert _customers(engine) == 0  # a dry run writes nothing

        page.click("button[value=import]")
        expect(page.locator("#import-job")).to_have_attribute("data-finished", "done", timeout=30_000)
        rows = page.locator("#import-rejects tbody tr")
        texts = [rows.nth(index).inner_text() for index in range(rows.count())]
        assert any(text.startswith("3\temail") and "field dropped" in text.lower() for text in texts), texts
        assert any(text.startswith("4\t") and "row rejected" in text for text in texts), texts
        page.screenshot(path=str(tmp_path / "imported.png"), full_page=True)  # looked at when the page changes
        browser.close()
    with engine.connect() as conn:
        people = dict(
            conn.execute(
                select(s.Identity.value, s.Customer.display_name)
                .join(s.Customer, s.Customer.id == s.Identity.customer_id)
                .where(s.Identity.kind == "external")
            ).all()
        )
        emails = sorted(conn.scalars(select(s.Identity.value).where(s.Identity.kind == "email")))
    assert people == {"1": "Ann Lee", "2": "Bob Ray", "4": "Dee Moe"}
    assert emails == ["ann@example.com", "dee@example.com"]
