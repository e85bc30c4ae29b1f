"""Uploads are checked before they are read, on both stores: a multipart POST to an import route from someone not
signed in, or whose role may not import, is answered before its body is read; a body larger than the limit is cut
off as it streams in (413); an imported file is deleted when its import ends, and staged uploads nobody touched are
pruned."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from patron.app import create_app
from patron.auth.service import create_user
from patron.cif.import_jobs import import_job, prune_staged, stage_upload
from patron.settings import get_settings

PASSWORD = "a-long-password-1"
BOUNDARY = "patronboundary"
MAPPING = b'[source]\nsystem = "crm"\nformat = "csv"\n[customers]\nexternal_id = "id"\n'


@pytest.fixture
def site(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("PATRON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PATRON_MAX_UPLOAD_MB", "1")
    get_settings.cache_clear()
    create_user(engine, "admin", PASSWORD, "admin")
    create_user(engine, "ana", PASSWORD, "analyst")
    with TestClient(create_app(engine), follow_redirects=False) as client:
        yield client
    get_settings.cache_clear()


def multipart(rows: int, pulled: list[int]) -> Iterator[bytes]:
    """A CSV upload (id per line) and its mapping, streamed in 64 KB chunks; ``pulled`` counts the chunks read."""
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="mapping"; filename="m.toml"\r\n\r\n').encode()
    yield head + MAPPING + f"\r\n--{BOUNDARY}\r\n".encode()
    yield b'Content-Disposition: form-data; name="data"; filename="people.csv"\r\n\r\nid\n'
    chunk = b"".join(f"{n:07d}\n".encode() for n in range(8192))  # 64 KB
    for _ in range(max(1, rows // 8192)):
        pulled.append(1)
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def post(client: TestClient, rows: int, session: str | None, csrf: str = "") -> tuple[int, str, int]:
    """POST an upload straight to the ASGI app, counting the chunks it asks for (a test client would read the whole
    body before the app saw it)."""
    pulled: list[int] = []
    chunks = multipart(rows, pulled)
    headers = [
        (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
        (b"x-csrf-token", csrf.encode()),
    ]
    if session:
        headers.append((b"cookie", f"patron_session={session}".encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/imports", "raw_path": b"/imports", "query_string": b"", "headers": headers,
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "root_path": ""}  # fmt: skip
    status: list[int] = []
    body: list[bytes] = []

    async def receive() -> dict[str, object]:
        chunk = next(chunks, None)
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(int(message["status"]))
        elif message["type"] == "http.response.body":
            body.append(bytes(message.get("body", b"")))

    asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]
    return status[0], b"".join(body).decode(), len(pulled)


def signed_in(client: TestClient, username: str) -> tuple[str, str]:
    session = client.post("/login", data={"username": username, "password": PASSWORD}).cookies["patron_session"]
    client.cookies.set("patron_session", session)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get("/imports").text)
    return session, token.group(1) if token else ""


def test_an_upload_is_refused_before_its_body_is_read(site: TestClient) -> None:
    status, _, pulled = post(site, 8192 * 64, None)  # 4 MB from someone not signed in
    assert status == 303
    assert pulled == 0
    session, csrf = signed_in(site, "ana")  # an analyst may not import
    status, text, pulled = post(site, 8192 * 64, session, csrf)
    assert (status, pulled) == (403, 0)
    assert "may not import" in text


def test_a_body_over_the_limit_is_cut_off_while_it_streams(site: TestClient, tmp_path: Path) -> None:
    session, csrf = signed_in(site, "admin")
    status, text, pulled = post(site, 8192 * 64, session, csrf)  # 4 MB against a 1 MB limit
    assert status == 413
    assert "larger than 1 MB" in text
    assert pulled < 64  # stopped near the limit, not read to the end
    assert not (tmp_path / "data" / "uploads").exists() or not any((tmp_path / "data" / "uploads").iterdir())


def test_an_imported_file_is_deleted_when_its_import_ends(site: TestClient, tmp_path: Path) -> None:
    session, csrf = signed_in(site, "admin")
    status, _, _ = post(site, 8192, session, csrf)  # 64 KB: accepted
    assert status == 303
    uploads = tmp_path / "data" / "uploads"
    job_id = next(folder.name for folder in uploads.iterdir() if folder.is_dir())
    for _ in range(200):
        job = import_job(job_id, uploads)
        if job is not None and job.status in ("done", "failed"):
            break
        time.sleep(0.05)
    assert job is not None
    assert job.status == "done", job.error
    assert not (uploads / job_id / "people.csv").exists()  # the data went into the store; the file is gone


def test_staged_uploads_nobody_touched_are_pruned(tmp_path: Path) -> None:
    old = stage_upload(b"id\n1\n", "old.csv", tmp_path, MAPPING.decode())
    an_old_day = time.time() - 3 * 86_400
    for item in old.folder.iterdir():
        os.utime(item, (an_old_day, an_old_day))
    fresh = stage_upload(b"id\n2\n", "fresh.csv", tmp_path, MAPPING.decode())  # staging prunes the old ones
    assert not old.folder.exists()
    assert fresh.folder.exists()
    assert prune_staged(tmp_path, hours=24) == []
