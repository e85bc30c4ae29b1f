"""The erasure ledger's copy in the data folder: one line per erasure (customer id, when, by whom; nothing
personal), so a restore can erase again people a backup still holds even when the store itself was lost."""

from __future__ import annotations

import json
from pathlib import Path

LEDGER_FILE = "erasure-ledger.jsonl"


def append_to_ledger_file(data_dir: Path, customer_id: int, erased_at: str, requested_by: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"customer_id": customer_id, "erased_at": erased_at, "requested_by": requested_by})
    with (data_dir / LEDGER_FILE).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
