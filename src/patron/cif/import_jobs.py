"""Imports started from the web page: run in a background thread, their progress readable while they run.

The process that receives the upload runs it; its progress is written to ``status.json`` beside the upload (at
most every half second), so whichever server process answers the page's next poll can report it. The import itself
is the same batched, idempotent ``import_file`` as the CLI's, and its run is recorded in ``import_runs`` as always.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import tomllib
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.errors import MappingError, PatronError
from patron.settings import get_settings


def max_upload_bytes() -> int:
    return get_settings().max_upload_mb * 2**20


@dataclass
class ImportJob:
    id: str
    file_name: str
    status: str = "queued"  # queued → running → done | failed
    done: int = 0
    total: int = 0
    summary: str = ""
    error: str = ""
    rejects: list[dict[str, Any]] = field(default_factory=list)
    rejects_file: str = ""
    dry_run: bool = False

    @property
    def share(self) -> float:
        """How far the import has got, 0 to 1 (the page's progress bar)."""
        return self.done / self.total if self.total else (1.0 if self.status == "done" else 0.0)


STATUS_FILE = "status.json"
JOB_ID = re.compile(r"^[0-9a-f]{12}$")
WRITE_EVERY_SECONDS = 0.5


def _check_size(data: bytes) -> None:
    if len(data) > max_upload_bytes():
        raise MappingError(f"the file is larger than {max_upload_bytes() // 2**20} MB: import it with `patron import`")


def _save(job: ImportJob, folder: Path) -> None:
    temporary = folder / f".{STATUS_FILE}.tmp"
    temporary.write_text(json.dumps(asdict(job)))
    os.replace(temporary, folder / STATUS_FILE)  # a reader sees the old state or the new one, never half


def start_import(
    engine: Engine,
    data: bytes,
    file_name: str,
    mapping_text: str,
    *,
    upload_dir: Path,
    actor: str,
    dry_run: bool = False,
) -> ImportJob:
    """Check the mapping at once (a bad one is refused before anything runs), then import in the background."""
    _check_size(data)
    try:
        mapping = parse_mapping(tomllib.loads(mapping_text), origin="uploaded mapping")
    except tomllib.TOMLDecodeError as error:
        raise MappingError(f"the mapping is not valid TOML: {error}", field="mapping") from error
    job = ImportJob(uuid.uuid4().hex[:12], Path(file_name).name or "upload.csv", dry_run=dry_run)
    folder = upload_dir / job.id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / job.file_name
    path.write_bytes(data)
    _save(job, folder)
    written = [0.0]

    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total
        if time.monotonic() - written[0] >= WRITE_EVERY_SECONDS:
            written[0] = time.monotonic()
            _save(job, folder)

    def run() -> None:
        try:
            imported()
        finally:  # the uploaded file goes once it is imported (the rejects file keeps what was refused)
            path.unlink(missing_ok=True)

    def imported() -> None:
        job.status = "running"
        _save(job, folder)
        try:
            result = import_file(
                engine,
                path,
                mapping,
                rejects_dir=folder,
                progress=progress,
                actor=actor,
                interface="web",
                dry_run=dry_run,
            )
        except PatronError as error:
            job.status, job.error = "failed", error.message
            _save(job, folder)
            return
        except Exception as error:
            job.status, job.error = "failed", f"the import stopped: {error}"
            _save(job, folder)
            return
        job.summary = result.summary_line()
        job.rejects = [
            {"line": r.line, "column": r.column, "value": r.value, "reason": r.reason, "outcome": r.outcome}
            for r in result.rejects[:20]
        ]
        job.rejects_file = str(result.rejects_path or "")
        job.done = job.total = max(job.total, result.read)
        job.status = "done"
        _save(job, folder)

    threading.Thread(target=run, name=f"import-{job.id}", daemon=True).start()
    return job


def import_job(job_id: str, upload_dir: Path) -> ImportJob | None:
    """The job's last saved state, from any server process; ``None`` for an id that names no job."""
    if not JOB_ID.match(job_id):
        return None
    try:
        state = json.loads((upload_dir / job_id / STATUS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return ImportJob(**state)


def recent_imports(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    runs = table_of(s.ImportRun).c
    with engine.connect() as conn:
        rows = conn.execute(select(table_of(s.ImportRun)).order_by(runs.id.desc()).limit(limit)).all()
    return [dict(row._mapping) for row in rows]


@dataclass(frozen=True)
class StagedUpload:
    """A file uploaded to be looked at before it is imported: a preview, a mapping to edit, dry runs."""

    id: str
    file_name: str
    folder: Path

    @property
    def path(self) -> Path:
        return self.folder / self.file_name

    @property
    def mapping_path(self) -> Path:
        return self.folder / "mapping.toml"


def stage_upload(data: bytes, file_name: str, upload_dir: Path, mapping_text: str | None = None) -> StagedUpload:
    """Keep the upload, with the given mapping or a suggested one (``cif/suggest.py``) to start from."""
    from patron.cif.suggest import suggest_mapping  # noqa: PLC0415

    _check_size(data)
    prune_staged(upload_dir, hours=get_settings().upload_retention_hours)
    staged_id = uuid.uuid4().hex[:12]
    staged = StagedUpload(staged_id, Path(file_name).name or "upload.csv", upload_dir / "staged" / staged_id)
    staged.folder.mkdir(parents=True, exist_ok=True)
    staged.path.write_bytes(data)
    staged.mapping_path.write_text(mapping_text or suggest_mapping(staged.path), encoding="utf-8")
    return staged


def prune_staged(upload_dir: Path, *, hours: int) -> list[str]:
    """Delete staged uploads nobody touched for ``hours`` (previewed, maybe dry-run, never imported)."""
    cutoff = time.time() - hours * 3600
    gone = []
    for folder in (upload_dir / "staged").glob("*") if (upload_dir / "staged").is_dir() else []:
        if folder.is_dir() and max((f.stat().st_mtime for f in folder.iterdir()), default=0) < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder.name)
    return gone


def staged_upload(staged_id: str, upload_dir: Path) -> StagedUpload | None:
    """A staged upload by id, from any server process; ``None`` for an id that names none."""
    if not JOB_ID.match(staged_id):
        return None
    folder = upload_dir / "staged" / staged_id
    files = [item for item in folder.glob("*") if item.name != "mapping.toml"] if folder.is_dir() else []
    return StagedUpload(staged_id, files[0].name, folder) if len(files) == 1 else None
