"""No script injection, on both stores: every page, fragment and API route is asked for as every role with hostile
values in its path, its query and its form fields, over a store whose customers, notes and segments hold hostile
text too; no HTML answer may carry the payload unescaped, none may fail with a 500. Then Chromium visits the pages
as an admin and as an analyst, and no injected script runs (no dialog opens)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from patron.app import create_app
from patron.auth.service import ROLES, create_user
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.segments.rules import create_segment
from tests.conftest import WriteFile
from tests.test_pages import CHROMIUM, serving

PAYLOAD = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
UNESCAPED = re.compile(r"<img src=x onerror=alert\(1\)>|<script>alert\(2\)</script>")
PASSWORD = "a-long-password-1"


@pytest.fixture
def hostile(engine: Engine, write_file: WriteFile) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A store whose data is hostile too: a customer named with the payload, with it in their city and e-mail."""
    rows = "id,name,city,email,order,date,amount\n" + "".join(
        f'{n},"Ann {PAYLOAD.replace(chr(34), chr(34) * 2)}","{PAYLOAD.replace(chr(34), chr(34) * 2)}",'
        f"ann{n}@example.com,o{n},2025-01-0{n},10\n"
        for n in range(1, 4)
    )
    mapping = {
        "source": {"system": "crm", "format": "csv", "date_format": "%Y-%m-%d"},
        "customers": {"external_id": "id", "display_name": "name", "email": "email", "profile": {"city": "city"}},
        "orders": {"customer": "id", "order_id": "order", "ordered_at": "date", "revenue": "amount"},
    }
    path = write_file("people.csv", rows)
    import_file(engine, path, parse_mapping(mapping), rejects_dir=path.parent)
    create_segment(engine, "seg-" + PAYLOAD[:20].replace("/", ""), "orders >= 0")
    for role in ROLES:
        create_user(engine, role, PASSWORD, role)
    with TestClient(create_app(engine), raise_server_exceptions=False, follow_redirects=False) as client:
        sessions = {}
        for role in ROLES:
            reply = client.post("/login", data={"username": role, "password": PASSWORD})
            sessions[role] = reply.cookies["patron_session"]
        client.cookies.clear()
        yield client, sessions


def routes(app: Any) -> list[APIRoute]:
    found: list[APIRoute] = []

    def walk(items: list[Any]) -> None:
        for route in items:
            if isinstance(route, APIRoute):
                found.append(route)
            elif hasattr(route, "original_router"):
                walk(route.original_router.routes)

    walk(app.routes)
    return found


def hostile_request(route: APIRoute, method: str) -> dict[str, Any]:
    url = route.path
    for param in route.dependant.path_params:
        value = "1" if param.field_info.annotation in (int,) or "id" in param.name else PAYLOAD
        url = url.replace("{" + param.name + "}", value if value == "1" else "x" + PAYLOAD.replace("/", "%2F"))
    query = {param.alias: PAYLOAD for param in route.dependant.query_params}
    request: dict[str, Any] = {"method": method, "url": url, "params": query}
    if method == "POST" and not url.startswith("/api"):
        request["data"] = {param.alias: PAYLOAD for param in route.dependant.body_params}
    return request


def test_no_answer_carries_an_injected_script(hostile: tuple[TestClient, dict[str, str]]) -> None:
    client, sessions = hostile
    client.cookies.set("patron_session", sessions["admin"])
    shown = client.get("/customers/1").text
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown  # the stored payload is on the page, escaped
    failures, asked = [], 0
    for route in sorted(routes(client.app), key=lambda r: r.path):
        for method in sorted(route.methods or ()):
            if route.path in ("/logout", "/api/auth/logout", "/login", "/api/auth/token"):
                continue  # signing out would end the session the crawl uses
            for role, session in sessions.items():
                client.cookies.clear()
                client.cookies.set("patron_session", session)
                request = hostile_request(route, method)
                page = client.get("/customers") if method == "POST" else None
                if page is not None and (token := re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)):
                    request.setdefault("headers", {})["X-CSRF-Token"] = token.group(1)
                reply = client.request(**request)
                asked += 1
                if reply.status_code >= 500:
                    failures.append(f"{method} {route.path} as {role}: {reply.status_code}")
                elif "text/html" in reply.headers.get("content-type", "") and UNESCAPED.search(reply.text):
                    failures.append(f"{method} {route.path} as {role}: the payload came back unescaped")
    assert failures == []
    assert asked > 250  # every route and method (74 when written) as each of the four roles


PAGES = ["/", "/customers", "/customers?search=Ann", "/customers/1", "/segments", "/segments/evolution", "/campaigns",
         "/service", "/quality", "/imports", "/identity", "/strategy/budget", "/campaigns/x%22%3E%3Cimg/live",
         "/customers/x%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(3)%3E"]  # fmt: skip


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_no_injected_script_runs_in_chromium(engine: Engine, hostile: tuple[TestClient, dict[str, str]]) -> None:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415  (browser tests only)

    _, sessions = hostile
    dialogs: list[str] = []
    with serving(engine) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        for role in ("admin", "analyst"):
            context = browser.new_context()
            context.add_cookies([{"name": "patron_session", "value": sessions[role], "url": url}])

            def opened(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            # Every page in a tab of its own, all at once: each waits for half a second without requests (the
            # fragments HTMX loads after the page included), and those waits overlap.
            tabs = []
            for path in PAGES:
                tab = context.new_page()
                tab.on("dialog", opened)
                tab.goto(url + path, wait_until="commit")
                tabs.append(tab)
            for tab in tabs:
                tab.wait_for_load_state("networkidle")
            context.close()
        browser.close()
    assert dialogs == []
