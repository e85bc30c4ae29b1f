"""The import page: upload a file and its mapping, watch the progress, read what was rejected and why.

Or upload the file alone: it is kept ("staged"), its first rows shown beside a suggested mapping to edit, and the
mapping tried in a dry run (nothing written) as often as needed before the import itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from patron.auth.service import Principal
from patron.cif.import_jobs import import_job, recent_imports, stage_upload, staged_upload, start_import
from patron.cif.suggest import read_sample
from patron.errors import PatronError
from patron.http.common import FragmentViewer, Viewer, engine_of
from patron.settings import get_settings
from patron.web.render import fragment, page, problem_fragment

router = APIRouter(include_in_schema=False)


def uploads_dir() -> Path:
    return get_settings().data_dir / "uploads"


def refused(request: Request, principal: Principal) -> Response:
    return page(request, "imports.html", principal, status_code=403, runs=recent_imports(engine_of(request)),
                job=None, allowed=False, problem="Your role cannot import data.")  # fmt: skip


def no_staged_upload(request: Request, principal: Principal, staged_id: str) -> Response:
    return page(request, "imports.html", principal, status_code=404, runs=[], job=None,
                allowed=principal.can("import_data"), problem=f"there is no staged upload {staged_id!r}")  # fmt: skip


@router.get("/imports", response_model=None)
def imports(request: Request, principal: Viewer, job: str | None = None) -> Response:
    running = import_job(job, uploads_dir()) if job else None
    return page(
        request, "imports.html", principal, runs=recent_imports(engine_of(request)), job=running,
        allowed=principal.can("import_data"), problem=None,
    )  # fmt: skip


@router.post("/imports", response_model=None)
async def upload(
    request: Request, principal: Viewer, data: Annotated[UploadFile, File()],
    mapping: Annotated[UploadFile | None, File()] = None,
) -> Response:  # fmt: skip
    engine = engine_of(request)
    if not principal.can("import_data"):
        return refused(request, principal)
    if mapping is None or not mapping.filename:
        return page(request, "imports.html", principal, status_code=422, runs=recent_imports(engine), job=None,
                    allowed=True, problem="Choose a mapping file, or use Preview and suggest a mapping.")  # fmt: skip
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


PREVIEW_ROWS = 10


@router.post("/imports/prepare", response_model=None)
async def prepare(
    request: Request, principal: Viewer, data: Annotated[UploadFile, File()],
    mapping: Annotated[UploadFile | None, File()] = None,
) -> Response:  # fmt: skip
    """Keep the upload and open its preview with a mapping to edit (the uploaded one, or a suggestion)."""
    engine = engine_of(request)
    if not principal.can("import_data"):
        return refused(request, principal)
    try:
        given = (await mapping.read()).decode("utf-8") if mapping is not None and mapping.filename else None
        staged = stage_upload(await data.read(), data.filename or "upload.csv", uploads_dir(), given)
    except (PatronError, UnicodeDecodeError) as error:
        message = error.message if isinstance(error, PatronError) else "the mapping is not UTF-8 text"
        return page(request, "imports.html", principal, runs=recent_imports(engine), job=None, allowed=True,
                    problem=message)  # fmt: skip
    return RedirectResponse(f"/imports/staged/{staged.id}", status_code=303)


@router.get("/imports/staged/{staged_id}", response_model=None)
def staged(request: Request, principal: Viewer, staged_id: str, job: str | None = None) -> Response:
    """The staged file's first rows, the mapping to edit, and the last dry run or import of it."""
    upload = staged_upload(staged_id, uploads_dir())
    if upload is None:
        return no_staged_upload(request, principal, staged_id)
    try:
        sample, _ = read_sample(upload.path, PREVIEW_ROWS)
        preview, problem = sample.head(PREVIEW_ROWS), None
    except PatronError as error:
        preview, problem = None, error.message
    return page(
        request, "import_staged.html", principal, upload=upload, preview=preview, problem=problem,
        mapping_text=upload.mapping_path.read_text(encoding="utf-8"), allowed=principal.can("import_data"),
        job=import_job(job, uploads_dir()) if job else None,
    )  # fmt: skip


@router.post("/imports/staged/{staged_id}", response_model=None)
def run_staged(
    request: Request, principal: Viewer, staged_id: str, mapping_text: Annotated[str, Form(max_length=100_000)],
    action: Annotated[str, Form(pattern="^(dry-run|import)$")] = "dry-run",
) -> Response:  # fmt: skip
    """Save the edited mapping, then dry-run or import the staged file with it."""
    upload = staged_upload(staged_id, uploads_dir())
    if not principal.can("import_data"):
        return refused(request, principal)
    if upload is None:
        return no_staged_upload(request, principal, staged_id)
    upload.mapping_path.write_text(mapping_text, encoding="utf-8")
    try:
        job = start_import(
            engine_of(request), upload.path.read_bytes(), upload.file_name, mapping_text, upload_dir=uploads_dir(),
            actor=principal.username, dry_run=action == "dry-run",
        )  # fmt: skip
    except PatronError as error:
        sample, _ = read_sample(upload.path, PREVIEW_ROWS)
        return page(request, "import_staged.html", principal, status_code=422, upload=upload, preview=sample,
                    problem=error.message, mapping_text=mapping_text, allowed=True, job=None)  # fmt: skip
    return RedirectResponse(f"/imports/staged/{staged_id}?job={job.id}", status_code=303)
