"""The pages in a real browser (Debian's Chromium through Playwright): sign in, dashboard, search, the 360° view,
the segment builder's live count. Screenshots go to the test's folder."""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import uvicorn
from sqlalchemy import Engine, select

from patron.app import create_app
from patron.auth.service import REFUSED, create_user
from patron.cif.store import make_engine, migrate
from patron.demo import load_demo
from patron.demo.cdnow import read_cdnow
from patron.engage.campaigns import create_campaign, prepare_campaign
from patron.engage.sending import record_response
from patron.schema import Base
from patron.segments.clustering import segment_customers
from patron.strategy.network import synthetic_demo_links
from patron.value.scoring import score_customers
from tests.conftest import NEEDS_SHARED_DATA, SHARED_DATA

CHROMIUM = Path("/usr/bin/chromium")
SITE_STORE: list[str] = []  # the site's store URL, for tests that change data while a page is open
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("pages"),  # one site, built once; the tests that change it run after the ones that read it
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)"),
    NEEDS_SHARED_DATA,
]


def run_members(engine: Engine, key: str) -> list[tuple[int, bool]]:
    members = Base.metadata.tables["campaign_members"]
    campaigns = Base.metadata.tables["campaigns"]
    with engine.connect() as conn:
        rows = conn.execute(
            select(members.c.customer_id, members.c.is_control)
            .join(campaigns, campaigns.c.id == members.c.campaign_id)
            .where(campaigns.c.campaign_key == key)
        ).all()
    return [(int(customer), bool(control)) for customer, control in rows]


def big_cdnow_spenders() -> int:
    """Computed from the raw file, not the store: CDNOW customers who spent over $500 in all."""
    transactions = read_cdnow(SHARED_DATA / "cdnow" / "CDNOW_master.txt")
    return transactions.group_by("customer_id").agg(pl.col("revenue").sum()).filter(pl.col("revenue") > 500).height


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(engine: Engine) -> Iterator[str]:
    """The app on a free local port in a thread of this process, for the browser; stopped afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('site') / 'patron.db'}"
    SITE_STORE[:] = [url]
    engine: Engine = make_engine(url)
    migrate(engine)
    load_demo(engine, SHARED_DATA, names=("cdnow", "cfpb-complaints", "customer-personality"))
    score_customers(engine, model="bgnbd", source="cdnow")
    synthetic_demo_links(engine)
    create_campaign(
        engine, "winback", "Win back big spenders", rule='source == "cdnow" and revenue > 500', subject="Hello",
        body="Hello {{ first_name }}", control_share=0.25,
    )  # fmt: skip
    prepare_campaign(engine, "winback")  # nobody consented to e-mail: every treated contact is blocked
    members = sorted(run_members(engine, "winback"))
    for index, (customer, is_control) in enumerate(members):
        if index % (7 if is_control else 4) == 0:
            record_response(engine, "winback", customer, "bought", value=25.0)
    segment_customers(
        engine, population='source == "cdnow"', method="kmeans", k_range=range(2, 4), as_of=dt.date(1997, 9, 30)
    )
    segment_customers(engine, population='source == "cdnow"', method="kmeans", k_range=range(2, 4))
    create_user(engine, "maria", "maria-password", "manager", "Maria")
    create_user(engine, "admin", "admin-password", "admin")
    create_user(engine, "ana", "ana-password", "agent")
    with serving(engine) as url:
        yield url
    engine.dispose()


def test_sign_in_dashboard_search_360_and_segment_count(site: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        plotly_loads: list[str] = []  # Plotly is fetched only by a page that holds a chart, in the build it needs
        page.on("request", lambda request: plotly_loads.append(request.url) if "plotly" in request.url else None)

        page.goto(site + "/")
        expect(page).to_have_url(site + "/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "wrong password")
        page.click("button[type=submit]")
        expect(page.get_by_role("alert")).to_have_text(REFUSED)
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "admin-password")
        page.click("button[type=submit]")

        expect(page.locator("h1")).to_have_text("Dashboard")
        expect(page.locator(".tiles")).to_contain_text("26,159 customers")
        expect(page.locator(".lead")).to_contain_text("the top 20 % of customers give 67.8 % of revenue")
        expect(page.locator("#chart-pareto .plotly")).to_be_visible()
        expect(page.locator("#chart-tiers .plotly")).to_be_visible()
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

        assert plotly_loads == [site + "/static/vendor/plotly-basic.min.js"]  # bars and lines: the 1.1 MB build
        page.click("text=Customers")
        page.fill("input[name=search]", "00042")  # the results follow the typing (HTMX), no button pressed
        expect(page.locator(".count")).to_have_text("1 customer matching “00042”")
        assert page.url.endswith("/customers?search=00042")  # the search is in the address, for back and reload
        page.locator("table a").first.click()
        expect(page.locator("h1")).to_contain_text("Customer")
        expect(page.locator("#who")).to_contain_text("00042")
        expect(page.locator(".timeline li").first).to_be_visible()
        expect(page.locator("#next-question")).to_contain_text("Ask next")
        page.screenshot(path=str(tmp_path / "customer.png"), full_page=True)
        assert len(plotly_loads) == 1  # the customer list and the customer page have no chart: no Plotly
        assert page.locator('script[src*="plotly"]').count() == 0

        _build_and_save_a_segment(page, tmp_path)

        _open_with_chart(page, "Service", "chart-service")
        expect(page.locator("table")).to_contain_text("Credit reporting")

        _open_with_chart(page, "Evolution", "chart-sankey")
        expect(page.locator("#chart-sankey")).to_contain_text("run 1: 1")
        assert plotly_loads[-1] == site + "/vendor/plotly.min.js"  # a Sankey diagram needs Plotly's full build
        page.screenshot(path=str(tmp_path / "evolution.png"), full_page=True)

        _open_with_chart(page, "Data quality", "chart-quality")
        expect(page.locator("main")).to_contain_text("Possible duplicates")
        browser.close()
    assert all((tmp_path / name).stat().st_size > 10_000 for name in ("dashboard.png", "customer.png", "segments.png"))


def _open_with_chart(page: Any, link: str, chart: str) -> None:
    """Follow a navigation link and see the page's Plotly chart drawn."""
    from playwright.sync_api import expect  # noqa: PLC0415  (browser tests only)

    page.click(f"text={link}")
    expect(page.locator(f"#{chart} .plotly")).to_be_visible()


def _build_and_save_a_segment(page: Any, tmp_path: Path) -> None:
    """The segment builder: the live count as the rule is typed, a typo explained, the rule saved and counted."""
    from playwright.sync_api import expect  # noqa: PLC0415  (browser tests only)

    page.click("text=Segments")
    page.fill("#rule", 'source == "cdnow" and revenue > 500')
    expected = big_cdnow_spenders()
    expect(page.locator("#live-count")).to_have_text(f"{expected:,} of 26,159 customers match", timeout=15_000)
    page.fill("#rule", "revenu > 500")
    expect(page.locator("#live-count")).to_contain_text("unknown field 'revenu'")
    page.screenshot(path=str(tmp_path / "segments.png"), full_page=True)
    page.fill("#rule", 'source == "cdnow" and revenue > 500')
    page.fill("input[name=name]", "cdnow big spenders")
    page.click("button:has-text('Save segment')")
    expect(page.locator("[role=status]")).to_contain_text("Segment 'cdnow big spenders' saved.")
    expect(page.locator("table")).to_contain_text("cdnow big spenders")
    expect(page.locator("table tr", has_text="cdnow big spenders")).to_contain_text(f"{expected:,}")


def sign_in_page(page: object, site: str, username: str, password: str) -> None:
    """Signs a Chromium page in through the sign-in form."""
    page.goto(site + "/login")  # type: ignore[attr-defined]
    page.fill("input[name=username]", username)  # type: ignore[attr-defined]
    page.fill("input[name=password]", password)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]


def test_strategy_pages_show_their_plots_and_refuse_a_role_without_them(site: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        refused: list[str] = []  # the Content-Security-Policy must not have to refuse anything the pages do
        page.on("console", lambda message: refused.append(message.text)
                if "Content Security Policy" in message.text else None)  # fmt: skip
        sign_in_page(page, site, "admin", "admin-password")
        expect(page.locator("h1")).to_have_text("Dashboard")
        expect(page.locator(".plotly-figure .main-svg").first).to_be_visible()  # charts drawn without inline script

        page.click("text=Strategy")
        expect(page.locator("h1")).to_have_text("Budget: acquisition against retention")
        expect(page.locator("#budget-summary")).to_contain_text("0 prospects and 23,570 customers")
        expect(page.locator("#budget-summary")).to_contain_text("Customer equity is highest at a budget of")
        expect(page.locator("#chart-budget .plotly")).to_be_visible()
        expect(page.locator("#what-if tbody tr")).to_have_count(5)
        page.screenshot(path=str(tmp_path / "budget.png"), full_page=True)

        _open_with_chart(page, "Portfolio", "chart-frontier")
        expect(page.locator("#segments tbody tr")).to_have_count(3)
        expect(page.locator("#segments")).to_contain_text("4,714")  # tier A: the top 20 % of 23,570
        page.screenshot(path=str(tmp_path / "portfolio.png"), full_page=True)

        _open_with_chart(page, "Price sensitivity", "chart-pricing")
        expect(page.locator("#deal-segments")).to_contain_text("PhD")
        page.screenshot(path=str(tmp_path / "pricing.png"), full_page=True)

        _open_with_chart(page, "Network", "chart-network")
        expect(page.locator("#network-summary")).to_contain_text("Value assortativity")
        expect(page.locator("main")).to_contain_text("demo-synthetic")
        expect(page.locator("#influencers tbody tr").first).to_be_visible()
        page.screenshot(path=str(tmp_path / "network.png"), full_page=True)

        page.goto(site + "/logout")
        sign_in_page(page, site, "ana", "ana-password")
        page.goto(site + "/strategy/budget")
        expect(page.locator("main")).to_contain_text("Your role does not include strategy analytics.")
        expect(page.locator("#chart-budget")).to_have_count(0)
        browser.close()
    assert refused == []
    assert all(
        (tmp_path / f"{name}.png").stat().st_size > 10_000 for name in ("budget", "portfolio", "pricing", "network")
    )


def test_campaign_pages_show_results_and_follow_responses_live(site: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    engine = make_engine(SITE_STORE[0])
    members = run_members(engine, "winback")
    control = sum(1 for _, is_control in members if is_control)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in_page(page, site, "admin", "admin-password")
        page.click("text=Campaigns")
        expect(page.locator("#campaign-list")).to_contain_text("Win back big spenders")
        page.click("text=winback")
        expect(page.locator("#live-contacts")).to_contain_text(f"control {control:,}")
        expect(page.locator("#live-contacts")).to_contain_text("blocked")
        expect(page.locator("#chart-uplift .plotly")).to_be_visible()
        expect(page.locator("#arms")).to_contain_text("control")
        before = page.locator("#live-responses").inner_text()
        newcomer = next(c for c, is_control in sorted(members) if not is_control and c % 4 != 0)
        record_response(engine, "winback", newcomer, "opened")  # arrives while the page is open
        expect(page.locator("#live-responses")).to_contain_text("opened 1", timeout=12_000)
        assert before != page.locator("#live-responses").inner_text()
        live = page.request.get(site + "/api/campaigns/winback/live").json()
        assert live["responses"]["opened"] == 1
        page.screenshot(path=str(tmp_path / "campaign.png"), full_page=True)
        browser.close()
    engine.dispose()


def test_an_upload_imports_with_progress_and_shows_each_rejected_line(site: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    people = tmp_path / "people.csv"
    rows = [f"w{n},web{n}@example.com,Web Person {n}" for n in range(1, 41)]
    rows.insert(7, "w8b,not-an-address,Broken Mail")  # line 9: the bad e-mail is dropped, the person kept
    rows.insert(20, ",nobody@example.com,No Id")  # line 22: no id, so the row is rejected
    people.write_text("id,email,name\n" + "\n".join(rows) + "\n")
    mapping = tmp_path / "people.toml"
    mapping.write_text(
        '[source]\nsystem = "webform"\nformat = "csv"\n\n'
        '[customers]\nexternal_id = "id"\nemail = "email"\ndisplay_name = "name"\n'
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in_page(page, site, "admin", "admin-password")
        page.click("text=Import")
        page.set_input_files("input[name=data]", str(people))
        page.set_input_files("input[name=mapping]", str(mapping))
        page.click("button:has-text('Import')")
        expect(page.locator("#import-job")).to_have_attribute("data-finished", "done", timeout=30_000)
        expect(page.locator("#import-summary")).to_contain_text("written 41")
        expect(page.locator("#import-summary")).to_contain_text("rejected 1 row, dropped 1 field")
        expect(page.locator("#import-rejects")).to_contain_text("not-an-address")
        expect(page.locator("#import-rejects tr", has_text="not-an-address")).to_contain_text("field dropped")
        expect(page.locator("#import-rejects tr", has_text="22")).to_contain_text("row rejected")
        assert page.locator("#import-progress").evaluate("bar => bar.value") == 1
        page.screenshot(path=str(tmp_path / "import.png"), full_page=True)
        page.reload()
        expect(page.locator("#import-runs")).to_contain_text("webform")

        page.goto(site + "/logout")
        sign_in_page(page, site, "ana", "ana-password")
        page.goto(site + "/imports")
        expect(page.locator("main")).to_contain_text("Importing data needs the admin or manager role.")
        expect(page.locator("input[name=data]")).to_have_count(0)
        browser.close()


def test_a_file_without_a_mapping_is_previewed_suggested_dry_run_then_imported(site: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    export = tmp_path / "invoices.csv"
    export.write_text(
        "Invoice;Customer ID;InvoiceDate;StockCode;Description;Quantity;Price;Country\n"
        + "".join(f"{500 + n};{17000 + n % 7}.0;2024-0{1 + n % 9}-1{n % 9} 10:00:00;SKU{n % 5};Item {n % 5};"
                  f"{1 + n % 4};{1 + n % 3}.25;United Kingdom\n" for n in range(30))
        + "C900;17001.0;2024-09-20 10:00:00;SKU1;Item 1;-1;2.25;United Kingdom\n"
    )  # fmt: skip
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        sign_in_page(page, site, "admin", "admin-password")
        page.goto(site + "/imports")
        page.set_input_files("input[name=data]", str(export))
        page.click("#prepare")
        expect(page.locator("#import-preview")).to_contain_text("SKU0")
        mapping = page.locator("#mapping-text")
        expect(mapping).to_have_value(re.compile(r'unit_price = "Price"'))
        expect(mapping).to_have_value(re.compile(r'order_id_prefix = "C"'))
        edited = mapping.input_value().replace('format = "csv"', 'format = "csv"\ncurrency = "GBP"')
        mapping.fill(edited.replace('system = "invoices"', 'system = "giftshop"'))
        page.click("button[value=dry-run]")
        expect(page.locator("#import-job")).to_have_attribute("data-finished", "done", timeout=30_000)
        expect(page.locator("#import-summary")).to_contain_text("would write 31")
        expect(page.locator("#import-summary")).to_contain_text("nothing was written")
        page.screenshot(path=str(tmp_path / "dry-run.png"), full_page=True)
        page.click("button[value=import]")
        expect(page.locator("#import-job")).to_have_attribute("data-finished", "done", timeout=30_000)
        expect(page.locator("#import-summary")).to_contain_text("written 31")
        page.goto(site + "/imports")
        expect(page.locator("#import-runs")).to_contain_text("giftshop")
        browser.close()
