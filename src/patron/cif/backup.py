"""Backup and restore of the embedded store: SQLite's online backup, so a backup can run while Patron writes."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from sqlalchemy import Engine

from patron.cif.stamp import forget_kept
from patron.errors import InvalidInputError, SourceFileError


def _sqlite_path(engine: Engine) -> Path:
    if engine.dialect.name != "sqlite" or not engine.url.database or engine.url.database == ":memory:":
        raise InvalidInputError(
            "backup and restore are for the embedded SQLite store; back PostgreSQL up with pg_dump or your "
            "provider's snapshots",
            field="store",
        )
    return Path(engine.url.database)


def backup_store(engine: Engine, target: Path) -> Path:
    """A consistent copy of the store at one moment, taken page by page while others keep writing."""
    source = _sqlite_path(engine)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with sqlite3.connect(source) as live, sqlite3.connect(partial) as copy:
        live.backup(copy, pages=4096)
    os.replace(partial, target)  # a reader never sees half a backup
    _check(target)
    return target


def prune_backups(folder: Path, *, keep_days: int) -> list[Path]:
    """Delete Patron's dated backups (``patron-*.bak``) in ``folder`` older than ``keep_days``; the newest stays."""
    backups = sorted(folder.glob("patron-*.bak"), key=lambda path: path.stat().st_mtime)
    cutoff = time.time() - keep_days * 86_400
    old = [path for path in backups[:-1] if path.stat().st_mtime < cutoff]
    for path in old:
        path.unlink()
    return old


def restore_store(engine: Engine, backup: Path) -> Path:
    """Replace the store with ``backup`` after checking it is a sound Patron store (stop the server first)."""
    target = _sqlite_path(engine)
    _check(backup)
    engine.dispose()
    forget_kept()  # the restored store's ids may reach a stamp this process has kept results for
    staged = target.with_name(target.name + ".restoring")
    staged.unlink(missing_ok=True)
    with sqlite3.connect(backup) as source, sqlite3.connect(staged) as copy:
        source.backup(copy)
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    os.replace(staged, target)
    return target


def _check(path: Path) -> None:
    if not path.is_file():
        raise SourceFileError(f"{path} does not exist")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise SourceFileError(f"{path} fails SQLite's integrity check")
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as error:
        raise SourceFileError(f"{path} is not a SQLite database: {error}") from error
    if not {"alembic_version", "customers"} <= tables:
        raise SourceFileError(f"{path} is not a Patron store (no customers or migration history)")
