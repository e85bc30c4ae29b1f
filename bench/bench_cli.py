"""What a person waits for at the prompt: `patron --help` and `patron customers show` on the CDNOW store, each the
median of ten runs of a fresh process (wall time, as a user sees it).

The anchors are the floors: a bare Python interpreter for the help, and for the customer the same reads done
with the standard library's sqlite3 in a fresh interpreter (no CLI, no formatting).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 10
PATRON = str(Path(sys.executable).with_name("patron"))
RAW_SHOW = (
    "import sqlite3, sys\n"
    "db = sqlite3.connect(sys.argv[1])\n"
    "(customer,) = db.execute(\"SELECT customer_id FROM identities WHERE kind = 'external' AND system = 'cdnow' "
    "AND value = '00001'\").fetchone()\n"
    "print(db.execute('SELECT * FROM customers WHERE id = ?', (customer,)).fetchall())\n"
    "print(db.execute('SELECT * FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.customer_id = ?', "
    "(customer,)).fetchall())\n"
)


def _median_wall(command: list[str], env: dict[str, str]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(copies: int) -> list[dict[str, object]]:
    del copies  # one size: the demo store
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PATRON_DATA_DIR": folder}
        subprocess.run([PATRON, "demo", "--only", "cdnow"], env=env, check=True, capture_output=True)
        store = str(Path(folder) / "patron.db")
        rows = [
            {
                "workload": "`patron --help` (median of 10 fresh processes)",
                "size": "-",
                "patron_s": _median_wall([PATRON, "--help"], env),
                "anchor": "bare `python -c pass`",
                "anchor_s": _median_wall([sys.executable, "-c", "pass"], env),
                "note": "target ≤ 0.3 s",
            },
            {
                "workload": "`patron customers show cdnow:00001` (median of 10)",
                "size": "CDNOW, 23,570 customers",
                "patron_s": _median_wall([PATRON, "customers", "show", "cdnow:00001"], env),
                "anchor": "the same reads with sqlite3 in a fresh python",
                "anchor_s": _median_wall([sys.executable, "-c", RAW_SHOW, store], env),
                "note": "target ≤ 1 s",
            },
        ]
    return rows
