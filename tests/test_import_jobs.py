"""Imports started from the web page: their state lives beside the upload, so any server process can report it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from patron.cif import schema as s
from patron.cif.import_jobs import ImportJob, import_job, start_import
from patron.errors import MappingError

MAPPING = '[source]\nsystem = "crm"\n[customers]\nexternal_id = "id"\nemail = "email"\n'


def _finished(job_id: str, uploads: Path) -> ImportJob:
    for _ in range(200):
        state = import_job(job_id, uploads)
        if state is not None and state.status in ("done", "failed"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"import {job_id} did not finish")


def test_any_process_reads_a_job_from_the_file_beside_its_upload(sqlite_engine: Engine, tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    data = b"id,email\n1,a@example.com\n2,not-an-address\n3,c@example.com\n"
    job = start_import(sqlite_engine, data, "people.csv", MAPPING, upload_dir=uploads, actor="admin")
    state = _finished(job.id, uploads)  # read back from status.json, not from the starting thread's memory
    assert state.status == "done"
    # A bad e-mail drops only that field: all three people are kept, and the summary counts both.
    assert state.summary == "people.csv: read 3, written 3, updated 0, unchanged 0, rejected 0 rows, dropped 1 field"
    assert [(r["line"], r["column"]) for r in state.rejects] == [(3, "email")]
    assert (uploads / job.id / "status.json").is_file()
    with sqlite_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(s.Customer)) == 3
    assert import_job("000000000000", uploads) is None  # no such job
    assert import_job("../../etc", uploads) is None  # not a job id: never a path outside the uploads


def test_a_bad_mapping_is_refused_before_anything_is_saved(sqlite_engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="not valid TOML"):
        start_import(sqlite_engine, b"id\n1\n", "x.csv", "[source", upload_dir=tmp_path / "uploads", actor="admin")
    assert not (tmp_path / "uploads").exists()
