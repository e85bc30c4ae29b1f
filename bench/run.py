"""Run every benchmark and write one table to bench/out/results.md (``make bench``).

Sizes: PATRON_BENCH_COPIES (default "1,10,100") replicates CDNOW that many times.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_import

OUT = Path(__file__).resolve().parent / "out"


def main() -> None:
    copies = [int(part) for part in os.environ.get("PATRON_BENCH_COPIES", "1,10,100").split(",")]
    rows: list[dict[str, object]] = []
    for count in copies:
        for row in bench_import.run(count):
            rows.append(row)
            print(_line(row), flush=True)
    OUT.mkdir(exist_ok=True)
    header = (
        "| workload | size | Patron (s) | anchor | anchor (s) | Patron/anchor time | note |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    (OUT / "results.md").write_text(header + "".join(_line(row) + "\n" for row in rows))
    print(f"wrote {OUT / 'results.md'}")


def _line(row: dict[str, object]) -> str:
    patron, anchor = float(row["patron_s"]), float(row["anchor_s"])  # type: ignore[arg-type]
    return (
        f"| {row['workload']} | {row['size']} | {patron:.2f} | {row['anchor']} | {anchor:.2f} | "
        f"{patron / anchor:.2f} | {row['note']} |"
    )


if __name__ == "__main__":
    main()
