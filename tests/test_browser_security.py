"""The browser's side of security, on both stores: every answer carries the security headers (a CSP without inline
script, no framing, no sniffing, a referrer policy, HSTS behind HTTPS); a state-changing request signed in by the
session cookie needs the session's CSRF token, and in Chromium a page on another port of the same host (same site,
so SameSite=Lax lets the cookie through) cannot create a segment as a signed-in manager, while the app's own pages,
work under the policy (the charts too: test_pages.py watches for policy violations on the strategy pages)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from patron.app import create_app
from patron.auth.service import create_user
from patron.segments.schema import Segment
from patron.settings import get_settings
from tests.test_pages import CHROMIUM, serving, sign_in_page

PASSWORD = "a-long-password-1"


@pytest.fixture
def signed_in(engine: Engine) -> Iterator[TestClient]:
    create_user(engine, "mia", PASSWORD, "manager")
    with TestClient(create_app(engine), follow_redirects=False) as client:
        assert client.post("/login", data={"username": "mia", "password": PASSWORD}).status_code == 303
        yield client


def segments(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(Segment)) or 0)


def test_every_answer_carries_the_security_headers(signed_in: TestClient, engine: Engine) -> None:
    answers = {
        "page": signed_in.get("/customers"), "api": signed_in.get("/api/me"),
        "static": signed_in.get("/static/patron.js"), "missing page": signed_in.get("/no-such-page"),
        "signed out": TestClient(create_app(engine)).get("/login"),
    }  # fmt: skip
    for name, answer in answers.items():
        policy = answer.headers.get("content-security-policy", "")
        assert "script-src 'self';" in policy, name  # no 'unsafe-inline' for scripts
        assert "frame-ancestors 'none'" in policy, name
        assert answer.headers["x-content-type-options"] == "nosniff", name
        assert answer.headers["x-frame-options"] == "DENY", name
        assert answer.headers["referrer-policy"] == "same-origin", name
        assert "strict-transport-security" not in answer.headers, name  # plain HTTP here
    assert "<script>" not in answers["page"].text  # no inline script on a page


def test_hsts_and_a_secure_cookie_behind_https(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATRON_SECURE_COOKIES", "true")
    get_settings.cache_clear()
    try:
        create_user(engine, "mia", PASSWORD, "manager")
        with TestClient(create_app(engine), follow_redirects=False) as client:
            answer = client.post("/login", data={"username": "mia", "password": PASSWORD})
        assert answer.headers["strict-transport-security"].startswith("max-age=")
        assert "secure" in answer.headers["set-cookie"].lower()
        assert "httponly" in answer.headers["set-cookie"].lower()
    finally:
        get_settings.cache_clear()


def test_a_cookie_signed_request_needs_the_sessions_csrf_token(signed_in: TestClient, engine: Engine) -> None:
    page = signed_in.get("/segments").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert token is not None
    assert f'"X-CSRF-Token": "{token.group(1)}"' in page  # HTMX sends it as a header
    forged = signed_in.post("/segments", data={"name": "forged", "rule": "orders >= 0"})
    assert forged.status_code == 403
    assert "CSRF" in forged.text
    wrong = signed_in.post("/segments", data={"name": "forged", "rule": "orders >= 0", "csrf_token": "0" * 40})
    assert wrong.status_code == 403
    assert segments(engine) == 0
    real = signed_in.post("/segments", data={"name": "real", "rule": "orders >= 0", "csrf_token": token.group(1)})
    assert real.status_code == 303
    # The API with the cookie alone is a browser too; with a bearer token it needs no CSRF token.
    assert signed_in.post("/api/segments", json={"name": "api", "rule": "orders >= 0"}).status_code == 403
    headed = signed_in.post("/api/segments", json={"name": "api", "rule": "orders >= 0"},
                            headers={"X-CSRF-Token": token.group(1)})  # fmt: skip
    assert headed.status_code == 201, headed.text
    token_reply = signed_in.post("/api/auth/token", json={"username": "mia", "password": PASSWORD}).json()
    signed_in.cookies.clear()
    bearer = signed_in.post("/api/segments", json={"name": "bearer", "rule": "orders >= 0"},
                            headers={"Authorization": f"Bearer {token_reply['token']}"})  # fmt: skip
    assert bearer.status_code == 201
    assert segments(engine) == 3


ATTACK = """<!doctype html><html><body>
<form id="f" method="post" action="{target}/segments"><input name="name" value="planted"><input name="rule"
value="orders >= 0"></form><script>document.getElementById("f").submit()</script></body></html>"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_another_page_on_the_same_host_cannot_act_for_a_signed_in_manager(engine: Engine, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    create_user(engine, "mia", PASSWORD, "manager")
    with serving(engine) as url:
        attack = ATTACK.format(target=url).encode()

        class Attacker(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(attack)

            def log_message(self, *_: object) -> None:
                return

        evil = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
        threading.Thread(target=evil.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
                page = browser.new_page()
                violations: list[str] = []
                page.on("console", lambda message: violations.append(message.text)
                        if "Content Security Policy" in message.text else None)  # fmt: skip
                sign_in_page(page, url, "mia", PASSWORD)
                page.goto(url + "/segments")
                page.fill("input[name=name]", "mine")
                page.fill("textarea[name=rule]", "orders >= 0")
                page.click("#segment-builder button[type=submit]")
                expect(page.locator("main")).to_contain_text("mine")
                assert segments(engine) == 1
                page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")  # lured to another site on the host
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(tmp_path / "refused.png"))
                assert "CSRF" in page.content()
                assert segments(engine) == 1  # nothing planted
                assert violations == []
                browser.close()
        finally:
            evil.shutdown()
            evil.server_close()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_the_api_documentation_is_served_offline_under_the_policy(engine: Engine) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    with serving(engine) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        hosts: set[str] = set()
        refused: list[str] = []
        page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
        page.on("console", lambda message: refused.append(message.text)
                if "Content Security Policy" in message.text else None)  # fmt: skip
        page.goto(url + "/docs")
        expect(page.locator(".opblock").first).to_be_visible()
        expect(page.locator("#swagger-ui")).to_contain_text("/api/customers/{customer_id}/recommendations")
        browser.close()
    assert hosts == {url.split("/")[2]}  # nothing from a CDN
    assert refused == []
