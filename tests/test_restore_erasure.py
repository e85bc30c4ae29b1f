"""Erasure survives restore: a backup taken before an erasure comes back with the person erased again, whether the
store being replaced still holds its erasure ledger or was lost (the data folder's copy of the ledger is enough);
dated backups are pruned after their retention period."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import Engine, select

from patron.cif import schema as s
from patron.cif.backup import backup_store, prune_backups
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cif.store import make_engine, migrate
from patron.privacy.restore import restore
from patron.privacy.subject import erase_customer
from tests.conftest import WriteFile

PEOPLE = "id,name,email\n1,Ann Lee,ann@example.com\n2,Bob Roe,bob@example.com\n3,Cy Poe,cy@example.com\n"
MAPPING = {"source": {"system": "crm", "format": "csv"},
           "customers": {"external_id": "id", "display_name": "name", "email": "email"}}  # fmt: skip


def store(tmp_path: Path, write_file: WriteFile) -> tuple[Engine, dict[str, int]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'patron.db'}")
    migrate(engine)
    import_file(engine, write_file("people.csv", PEOPLE), parse_mapping(MAPPING), rejects_dir=tmp_path)
    with engine.connect() as conn:
        rows = conn.execute(select(s.Identity.value, s.Identity.customer_id).where(s.Identity.kind == "external"))
        ids = {str(value): int(customer) for value, customer in rows}
    return engine, ids


def emails(engine: Engine) -> set[str]:
    """The e-mail addresses the store holds (an erased one is an irreversible pseudonym, ``erased:…``)."""
    with engine.connect() as conn:
        found = set(conn.scalars(select(s.Identity.value).where(s.Identity.kind == "email")))
    return {value for value in found if not value.startswith("erased:")}


def test_a_restored_backup_from_before_an_erasure_comes_back_with_the_person_erased(
    tmp_path: Path, write_file: WriteFile
) -> None:
    engine, ids = store(tmp_path, write_file)
    data_dir = tmp_path / "data"
    backup = backup_store(engine, tmp_path / "backups" / "before.bak")
    erase_customer(engine, ids["2"], requested_by="dpo", data_dir=data_dir)
    assert "bob@example.com" not in emails(engine)

    restored = restore(engine, backup, data_dir=data_dir)
    assert restored.re_erased == [ids["2"]]
    assert emails(engine) == {"ann@example.com", "cy@example.com"}  # Bob is gone again; the others are back
    with engine.connect() as conn:
        assert conn.scalar(select(s.Customer.status).where(s.Customer.id == ids["2"])) == "anonymised"
    again = restore(engine, backup, data_dir=data_dir)  # a second restore of the same backup: the same outcome
    assert again.re_erased == [ids["2"]]
    assert "bob@example.com" not in emails(engine)


def test_the_data_folders_ledger_is_enough_when_the_store_was_lost(tmp_path: Path, write_file: WriteFile) -> None:
    engine, ids = store(tmp_path, write_file)
    data_dir = tmp_path / "data"
    backup = backup_store(engine, tmp_path / "backups" / "before.bak")
    erase_customer(engine, ids["3"], requested_by="dpo", data_dir=data_dir)
    engine.dispose()
    (tmp_path / "patron.db").unlink()  # the disk with the store died; the data folder's ledger survived
    fresh = make_engine(f"sqlite:///{tmp_path / 'patron.db'}")
    restored = restore(fresh, backup, data_dir=data_dir)
    assert restored.re_erased == [ids["3"]]
    assert "cy@example.com" not in emails(fresh)
    assert (data_dir / "erasure-ledger.jsonl").read_text().count('"customer_id"') == 2  # the erasure, and again


def test_dated_backups_are_pruned_after_their_retention(tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    now = time.time()
    for name, days_old in (("patron-1.bak", 90), ("patron-2.bak", 40), ("patron-3.bak", 2), ("notes.bak", 400)):
        (folder / name).write_text("x")
        os.utime(folder / name, (now - days_old * 86_400, now - days_old * 86_400))
    pruned = prune_backups(folder, keep_days=35)
    assert sorted(path.name for path in pruned) == ["patron-1.bak", "patron-2.bak"]
    assert sorted(path.name for path in folder.iterdir()) == ["notes.bak", "patron-3.bak"]  # not ours: kept
    everything_old = prune_backups(folder, keep_days=0)
    assert everything_old == []  # the newest backup always stays
