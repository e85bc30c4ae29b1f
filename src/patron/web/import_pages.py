"""The import page: upload a file and its mapping, watch the progress, read what was rejected and why."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from patron.cif.import_jobs import import_job, recent_imports, start_import
from patron.errors import PatronError
from patron.http.common import FragmentViewer, Viewer, engine_of
from patron.settings import get_settings
from patron.web.render import fragment, page, problem_fragment

router = APIRouter(include_in_schema=False)


def uploads_dir() -> Path:
    return get_settings().data_dir / "uploads"


@router.get("/imports", response_model=None)
def imports(request: Request, principal: Viewer, job: str | None = None) -> Response:
    running = import_job(job, uploads_dir()) if job else None
    return page(
        request, "imports.html", principal, runs=recent_imports(engine_of(request)), job=running,
        allowed=principal.can("import_data"), problem=None,
    )  # fmt: skip


@router.post("/imports", response_model=None)
async def upload(
    request: Request, principal: Viewer, data: Annotated[UploadFile, File()], mapping: Annotated[UploadFile, File()]
) -> Response:
    engine = engine_of(request)
    if not principal.can("import_data"):
        return page(request, "imports.html", principal, status_code=403, runs=recent_imports(engine), job=None,
                    allowed=False, problem="Your role cannot import data.")  # fmt: skip
    try:
        mapping_text = (await mapping.read()).decode("utf-8")
        job = start_import(
            engine, await data.read(), data.filename or "upload.csv", mapping_text,
            upload_dir=uploads_dir(), actor=principal.username,
        )  # fmt: skip
    except (PatronError, UnicodeDecodeError) as error:
        message = error.message if isinstance(error, PatronError) else "the mapping is not UTF-8 text"
        return page(request, "imports.html", principal, runs=recent_imports(engine), job=None, allowed=True,
                     problem=message)  # fmt: skip
    return RedirectResponse(f"/imports?job={job.id}", status_code=303)


@router.get("/imports/{job_id}/panel", response_model=None)
def progress_panel(request: Request, principal: FragmentViewer, job_id: str) -> Response:
    """The progress panel alone: while the import runs it asks for itself again (HTMX); any server process answers."""
    job = import_job(job_id, uploads_dir())
    if job is None:
        return problem_fragment(request, f"there is no import {job_id!r}", 404)
    return fragment(request, "_import_job.html", job=job)
