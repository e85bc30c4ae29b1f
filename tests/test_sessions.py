"""Sessions and tokens that end, on both stores: signing out, disabling a user, changing a password and revoking a
token end them at once (as a cookie and as a bearer token); API tokens and sessions expire; sign-in failures are
throttled with growing waits, then lock the account until an admin lifts it, and each failure is audited."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, select, update

from patron.app import create_app
from patron.auth.accounts import change_password, disable_user, enable_user, list_tokens, revoke_token, unlock_user
from patron.auth.schema import ApiToken, SignInAddress, User
from patron.auth.service import REFUSED, UnauthorizedError, authenticate, create_user
from patron.cif import schema as s
from patron.cif.columns import table_of, utcnow
from patron.settings import get_settings
from tests.test_pages import CHROMIUM, serving, sign_in_page

PASSWORD = "a-long-password-1"


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("PATRON_SIGN_IN_LOCKOUT", "6")
    get_settings.cache_clear()
    from patron.auth.service import create_user  # noqa: PLC0415

    create_user(engine, "mia", PASSWORD, "manager")
    create_user(engine, "ana", PASSWORD, "analyst")
    with TestClient(create_app(engine), follow_redirects=False) as test_client:
        yield test_client
    get_settings.cache_clear()


def token_for(client: TestClient, username: str = "mia", password: str = PASSWORD) -> str:
    reply = client.post("/api/auth/token", json={"username": username, "password": password})
    assert reply.status_code == 200, reply.text
    return str(reply.json()["token"])


def works(client: TestClient, secret: str) -> bool:
    """Whether ``secret`` still signs a request in, asked once as a bearer token and once as the session cookie."""
    client.cookies.clear()
    as_bearer = client.get("/api/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    client.cookies.set("patron_session", secret)
    as_cookie = client.get("/customers").status_code == 200
    client.cookies.clear()
    assert as_bearer == as_cookie
    return bool(as_bearer)


def test_signing_out_ends_the_session_on_the_server(client: TestClient) -> None:
    signed_in = client.post("/login", data={"username": "mia", "password": PASSWORD})
    assert signed_in.status_code == 303
    session = signed_in.cookies["patron_session"]
    assert works(client, session)
    client.cookies.set("patron_session", session)
    assert client.get("/logout").status_code == 303
    assert not works(client, session)  # a copied cookie is worth nothing after sign-out
    token = token_for(client)
    assert client.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"}).json()["ended"]
    assert not works(client, token)


def test_disabling_a_user_or_changing_their_password_ends_every_session_and_token(
    client: TestClient, engine: Engine
) -> None:
    first, second = token_for(client), token_for(client)
    assert works(client, first)
    assert works(client, second)
    assert disable_user(engine, "mia") == 2
    assert not works(client, first)
    assert not works(client, second)
    assert client.post("/api/auth/token", json={"username": "mia", "password": PASSWORD}).status_code == 401
    enable_user(engine, "mia")
    assert not works(client, first)  # enabling again does not bring old tokens back
    third = token_for(client)
    assert change_password(engine, "mia", "another-long-password") == 1
    assert not works(client, third)
    assert client.post("/api/auth/token", json={"username": "mia", "password": PASSWORD}).status_code == 401
    assert works(client, token_for(client, password="another-long-password"))
    with engine.connect() as conn:
        actions = set(conn.scalars(select(s.AuditEvent.action).where(s.AuditEvent.interface == "accounts")))
    assert actions == {"user disabled", "user enabled", "password changed"}


def test_one_token_is_revoked_and_the_others_keep_working(client: TestClient, engine: Engine) -> None:
    kept, ended = token_for(client), token_for(client)
    tokens = list_tokens(engine, "mia")
    assert [t.kind for t in tokens] == ["api", "api"]
    assert all(t.expires_at is not None and t.expires_at > utcnow() + dt.timedelta(days=89) for t in tokens)
    revoke_token(engine, tokens[0].id)  # the newest: ``ended``
    assert not works(client, ended)
    assert works(client, kept)
    assert list_tokens(engine, "mia")[0].revoked_at is not None


def test_tokens_expire_and_idle_sessions_end(client: TestClient, engine: Engine) -> None:
    token = token_for(client)
    session = client.post("/login", data={"username": "mia", "password": PASSWORD}).cookies["patron_session"]
    assert works(client, token)
    assert works(client, session)
    tokens = table_of(ApiToken)
    past = utcnow() - dt.timedelta(minutes=1)
    with engine.begin() as conn:
        conn.execute(update(tokens).where(tokens.c.kind == "api").values(expires_at=past))
        conn.execute(
            update(tokens).where(tokens.c.kind == "session").values(last_used_at=utcnow() - dt.timedelta(hours=2))
        )
    from patron.auth.service import forget_tokens  # noqa: PLC0415

    forget_tokens()  # as another process would: it has not seen these tokens lately
    assert not works(client, token)
    client.cookies.set("patron_session", session)
    reply = client.get("/api/me")
    assert reply.status_code == 401
    assert "without use" in reply.json()["detail"]


def test_failed_sign_ins_are_throttled_then_lock_the_account(client: TestClient, engine: Engine) -> None:
    users = table_of(User)

    def attempt(password: str, username: str = "mia") -> int:
        reply = client.post("/api/auth/token", json={"username": username, "password": password})
        return int(reply.status_code)

    def wait_over() -> None:  # as if the wait had passed, without sleeping in a test
        an_hour_ago = utcnow() - dt.timedelta(hours=1)
        with engine.begin() as conn:
            conn.execute(update(users).values(last_failed_at=an_hour_ago))
            conn.execute(update(table_of(SignInAddress)).values(last_failed_at=an_hour_ago))

    assert [attempt("wrong") for _ in range(3)] == [401, 401, 401]  # three tries are free
    assert attempt(PASSWORD) == 429  # then a wait: even the right password is not tried yet
    wait_over()
    assert attempt(PASSWORD) == 200  # a success clears the count
    for _ in range(6):
        wait_over()
        assert attempt("wrong") == 401
    wait_over()
    locked = client.post("/api/auth/token", json={"username": "mia", "password": PASSWORD})
    assert locked.status_code == 401
    assert locked.json()["detail"] == REFUSED  # the words of any refusal: nothing says this account exists
    unlock_user(engine, "mia")
    assert attempt(PASSWORD) == 200
    with engine.connect() as conn:
        failures = conn.scalar(select(func.count()).where(s.AuditEvent.action == "sign-in failed"))
    assert failures == 3 + 6 + 1  # every failure, the refused attempt on the locked account included


def test_a_username_nobody_has_is_throttled_and_locked_like_a_real_one(client: TestClient, engine: Engine) -> None:
    """Failing as ``mia`` (who exists) and as ``zed`` (who does not) gives the same answers in the same order."""
    addresses = table_of(SignInAddress)

    def attempts(username: str) -> list[tuple[int, str]]:
        with engine.begin() as conn:  # each user's tries come from a fresh address
            conn.execute(delete(addresses).where(addresses.c.address.not_like("user:%")))

        def attempt(*, after_the_wait: bool) -> tuple[int, str]:
            if after_the_wait:
                an_hour_ago = utcnow() - dt.timedelta(hours=1)
                with engine.begin() as conn:
                    conn.execute(update(table_of(User)).values(last_failed_at=an_hour_ago))
                    conn.execute(update(addresses).values(last_failed_at=an_hour_ago))
            reply = client.post("/api/auth/token", json={"username": username, "password": "wrong"})
            return reply.status_code, re.sub(r"\d+ s$", "N s", reply.json()["detail"])  # the seconds left vary

        free = [attempt(after_the_wait=False) for _ in range(4)]
        return free + [attempt(after_the_wait=True) for _ in range(8)]

    real, made_up = attempts("mia"), attempts("zed")
    assert real == made_up
    assert real[:4] == [(401, REFUSED)] * 3 + [(429, "too many failed sign-ins for this user: try again in N s")]
    assert real[-1] == (401, REFUSED)  # locked at the lockout count (6 here): no wait offered any more, for either


def test_one_address_guessing_many_users_is_throttled(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # The clock stands still: the 2 s wait after the ninth failure must not run out on a busy machine mid-test.
    frozen = dt.datetime(2026, 12, 3, 12, 0)
    monkeypatch.setattr("patron.auth.service.utcnow", lambda: frozen)
    replies = [
        client.post("/api/auth/token", json={"username": f"guess{n}", "password": "x"}).status_code for n in range(10)
    ]
    assert replies == [401] * 9 + [429]  # an address may fail three times as often as one user, then waits
    page = client.post("/login", data={"username": "ana", "password": PASSWORD})
    assert page.status_code == 429
    assert "try again in" in page.text


def test_behind_a_trusted_proxy_each_client_address_is_counted_apart(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guesses from one client behind the proxy wait; another client behind the same proxy signs in at once. A
    forwarded header from anyone but the trusted proxy is not believed."""

    def guesses(client: TestClient, address: str, count: int) -> list[int]:
        headers = {"X-Forwarded-For": address}
        return [
            client.post("/api/auth/token", json={"username": f"g{n}", "password": "x"}, headers=headers).status_code
            for n in range(count)
        ]

    monkeypatch.setenv("PATRON_TRUSTED_PROXIES", "testclient")  # the address Starlette's test client comes from
    get_settings.cache_clear()
    with TestClient(create_app(engine), follow_redirects=False) as client:
        assert guesses(client, "203.0.113.7", 10) == [401] * 9 + [429]
        assert guesses(client, "198.51.100.2", 1) == [401]  # another client: not held up by the first one
    monkeypatch.setenv("PATRON_TRUSTED_PROXIES", "")
    get_settings.cache_clear()
    with TestClient(create_app(engine), follow_redirects=False) as client:
        assert guesses(client, "192.0.2.55", 9) == [401] * 9
        assert guesses(client, "192.0.2.56", 1) == [429]  # the same real address: the header is not believed
    get_settings.cache_clear()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_an_admin_manages_users_on_the_page(client: TestClient, engine: Engine, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    from patron.auth.service import create_user  # noqa: PLC0415

    create_user(engine, "root", PASSWORD, "admin")
    kept, ended = token_for(client), token_for(client)
    with serving(engine) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in_page(page, url, "root", PASSWORD)
        page.click("text=Users")
        expect(page.locator("#users tr[data-user=mia]")).to_contain_text("2")  # two live tokens
        page.click("#users tr[data-user=mia] a")
        newest = list_tokens(engine, "mia")[0].id
        page.locator(f'#tokens tr[data-token="{newest}"] button').click()
        expect(page.locator("#notice")).to_contain_text(f"token {newest} ended")
        assert not works(client, ended)
        assert works(client, kept)
        page.locator("#users tr[data-user=ana] button", has_text="Disable").click()
        expect(page.locator("#users tr[data-user=ana]")).to_contain_text("disabled")
        page.screenshot(path=str(tmp_path / "users.png"), full_page=True)
        browser.close()
    assert client.post("/api/auth/token", json={"username": "ana", "password": PASSWORD}).status_code == 401


def test_a_password_hashed_at_another_cost_is_rehashed_at_the_current_one_on_sign_in(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stored_hash() -> str:
        with engine.connect() as conn:
            return str(conn.scalar(select(User.password_hash).where(User.username == "old")))

    create_user(engine, "old", "an old long password", "agent")
    before = stored_hash()
    assert before.startswith("$argon2id$v=19$m=1024,t=1,p=1$")  # the tests' cheap cost (tests/conftest.py)
    monkeypatch.setenv("PATRON_PASSWORD_HASH_TIME_COST", "2")
    monkeypatch.setenv("PATRON_PASSWORD_HASH_MEMORY_KIB", "2048")
    get_settings.cache_clear()
    try:
        with pytest.raises(UnauthorizedError, match="wrong username or password"):
            authenticate(engine, "old", "not the password")
        assert stored_hash() == before  # a failed sign-in changes nothing
        assert authenticate(engine, "old", "an old long password").username == "old"
        after = stored_hash()
        assert after.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
        assert authenticate(engine, "old", "an old long password").username == "old"  # the new hash verifies
        assert stored_hash() == after
    finally:
        get_settings.cache_clear()  # the other tests of this process read the cheap cost again


def test_a_hashing_cost_argon2_cannot_use_is_refused_when_the_settings_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError  # noqa: PLC0415

    from patron.settings import Settings  # noqa: PLC0415

    monkeypatch.setenv("PATRON_PASSWORD_HASH_PARALLELISM", "4")
    monkeypatch.setenv("PATRON_PASSWORD_HASH_MEMORY_KIB", "16")
    with pytest.raises(ValidationError, match="at least 8 per lane"):
        Settings()
    monkeypatch.setenv("PATRON_PASSWORD_HASH_TIME_COST", "0")
    with pytest.raises(ValidationError, match="password_hash_time_cost"):
        Settings()
