"""The import page: upload a file and its mapping, watch the progress, read what was rejected and why."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from patron.api.common import engine_of
from patron.cif.import_jobs import import_job, recent_imports, start_import
from patron.errors import PatronError
from patron.settings import get_settings
from patron.web.pages import _fragment, _page, _signed_in, _signed_out_fragment, _to_login

router = APIRouter(include_in_schema=False)


def uploads_dir() -> Path:
    return get_settings().data_dir / "uploads"


@router.get("/imports", response_model=None)
def imports(request: Request, job: str | None = None) -> Response:
    principal = _signed_in(request)
    if principal is None:
        return _to_login()
    running = import_job(job, uploads_dir()) if job else None
    return _page(
        request, "imports.html", principal, runs=recent_imports(engine_of(request)), job=running,
        allowed=principal.can("import_data"), problem=None,
    )  # fmt: skip


@router.post("/imports", response_model=None)
async def upload(
    request: Request, data: Annotated[UploadFile, File()], mapping: Annotated[UploadFile, File()]
) -> Response:
    principal = _signed_in(request)
    if principal is None:
        return _to_login()
    engine = engine_of(request)
    if not principal.can("import_data"):
        return _page(request, "imports.html", principal, runs=recent_imports(engine), job=None, allowed=False,
                     problem="Your role cannot import data.")  # fmt: skip
    try:
        mapping_text = (await mapping.read()).decode("utf-8")
        job = start_import(
            engine, await data.read(), data.filename or "upload.csv", mapping_text,
            upload_dir=uploads_dir(), actor=principal.username,
        )  # fmt: skip
    except (PatronError, UnicodeDecodeError) as error:
        message = error.message if isinstance(error, PatronError) else "the mapping is not UTF-8 text"
        return _page(request, "imports.html", principal, runs=recent_imports(engine), job=None, allowed=True,
                     problem=message)  # fmt: skip
    return RedirectResponse(f"/imports?job={job.id}", status_code=303)


@router.get("/imports/{job_id}/panel", response_model=None)
def progress_panel(request: Request, job_id: str) -> Response:
    """The progress panel alone: while the import runs it asks for itself again (HTMX); any server process answers."""
    principal = _signed_in(request)
    if principal is None:
        return _signed_out_fragment()
    job = import_job(job_id, uploads_dir())
    if job is None:
        return HTMLResponse(f"there is no import {job_id!r}", status_code=404)
    return _fragment(request, "_import_job.html", job=job)
