"""Run every benchmark and write one table to bench/out/results.md (``make bench``).

Sizes: PATRON_BENCH_COPIES (default "1,10,100") replicates CDNOW that many times.
Which: PATRON_BENCH_ONLY (default all:
"import,value,pipeline,segments,context,api,cli,pages,holdout,identity,recommend,offers,models").
The CLV pipeline's scaling curve (embedded, Spark, lifetimes, pymc-marketing) is drawn to bench/out/scaling.png.
For segments a copy is 100k customers and 1M order lines, so ×10 is the 1M-customer, 10M-line base.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    bench_api,
    bench_cli,
    bench_context,
    bench_holdout,
    bench_identity,
    bench_import,
    bench_models,
    bench_offers,
    bench_pages,
    bench_pipeline,
    bench_recommend,
    bench_segments,
    bench_value,
)

BENCHMARKS = {
    "import": bench_import.run,
    "value": bench_value.run,
    "pipeline": bench_pipeline.run,
    "segments": bench_segments.run,
    "context": bench_context.run,
    "api": bench_api.run,
    "cli": bench_cli.run,
    "pages": bench_pages.run,
    "holdout": bench_holdout.run,
    "identity": bench_identity.run,
    "recommend": bench_recommend.run,
    "offers": bench_offers.run,
    "models": bench_models.run,
}

OUT = Path(__file__).resolve().parent / "out"
# The CLV pipeline's scaling curve reaches 23.6M customers (the anchors stop at 2.36M: see bench_pipeline).
DEFAULT_COPIES = {
    "recommend": "1",
    "pipeline": "1,10,100,1000",
    "cli": "1",
    "pages": "1",
    "holdout": "1",
    "identity": "10",
    "models": "1",
}


def main() -> None:
    copies = [int(part) for part in os.environ.get("PATRON_BENCH_COPIES", "1,10,100").split(",")]
    chosen = os.environ.get("PATRON_BENCH_ONLY", ",".join(BENCHMARKS)).split(",")
    rows: list[dict[str, object]] = []
    for name in chosen:
        # A benchmark may have sizes of its own, e.g. PATRON_BENCH_COPIES_PIPELINE=1,10,100,1000.
        own = os.environ.get(f"PATRON_BENCH_COPIES_{name.upper()}", DEFAULT_COPIES.get(name, ""))
        for count in [int(part) for part in own.split(",")] if own else copies:
            rows.extend(_in_own_process(name, count))
    OUT.mkdir(exist_ok=True)
    header = (
        "| workload | size | Patron (s) | anchor | anchor (s) | Patron/anchor time | note |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    (OUT / "results.md").write_text(header + "".join(_line(row) + "\n" for row in rows))
    print(f"wrote {OUT / 'results.md'}")
    if plot := bench_pipeline.plot_scaling(rows, OUT):
        print(f"wrote {plot}")


def _in_own_process(name: str, copies: int) -> list[dict[str, object]]:
    """Each benchmark and size runs in a fresh interpreter: the memory a ×1000 run kept, a Spark JVM still up or a
    thread pool left behind must not slow the next one (the API load run was twice as slow after them)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, __file__, "--one", name, str(copies), out.name], check=True)
        rows: list[dict[str, object]] = json.loads(Path(out.name).read_text())
    return rows


def _run_one(name: str, copies: int, out: Path) -> None:
    rows = BENCHMARKS[name](copies)
    for row in rows:
        print(_line(row), flush=True)
    out.write_text(json.dumps(rows))


def _line(row: dict[str, object]) -> str:
    patron = float(row["patron_s"])  # type: ignore[arg-type]
    anchor = math.nan if row["anchor_s"] is None else float(row["anchor_s"])  # type: ignore[arg-type]
    if math.isnan(anchor):  # the anchor did not finish
        return f"| {row['workload']} | {row['size']} | {patron:.3f} | {row['anchor']} | – | – | {row['note']} |"
    return (
        f"| {row['workload']} | {row['size']} | {patron:.3f} | {row['anchor']} | {anchor:.2f} | "
        f"{patron / anchor:.4f} | {row['note']} |"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        _run_one(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
