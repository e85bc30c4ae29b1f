"""CDNOW replicated ×N: each copy of the 23,570 customers gets new ids, so the base grows N-fold."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("PATRON_SHARED_DATA_DIR", ROOT.parent / "shared" / "data"))
CDNOW_MASTER = SHARED_DATA / "cdnow" / "CDNOW_master.txt"


def replicate_cdnow(copies: int, out: Path) -> int:
    """Write CDNOW_master ×``copies`` in its own whitespace format; returns the number of transaction lines."""
    lines = [line.split() for line in CDNOW_MASTER.read_text().splitlines()[1:] if line.strip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as handle:
        handle.write("customer_id date number_of_cds dollar_value\n")
        for copy in range(copies):
            prefix = f"{copy:04d}"
            handle.writelines(f"{prefix}{c} {d} {n} {v}\n" for c, d, n, v in lines)
    return len(lines) * copies
