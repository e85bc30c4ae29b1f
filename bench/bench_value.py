"""The value engine on CDNOW ×N next to lifetimes 0.11.3 and pymc-marketing: summary build, BG/NBD, Pareto/NBD
and Gamma-Gamma fits, and scoring (P(alive) and 36-month CLV for every customer).

The anchors run in their own environment (bench/.venv-anchors, made by ``make bench``; never a runtime
dependency), one subprocess per workload, timed inside the subprocess so start-up and imports do not count.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from bench.cdnow_data import CDNOW_MASTER
from patron.demo.cdnow import read_cdnow
from patron.value.clv import ClvSettings, customer_lifetime_value
from patron.value.models.bgnbd import BetaGeometricNBD
from patron.value.models.gammagamma import GammaGamma
from patron.value.models.paretonbd import ParetoNBD
from patron.value.summary import Summary, purchase_summary

BENCH = Path(__file__).resolve().parent
ANCHOR_PYTHON = Path(os.environ.get("PATRON_BENCH_ANCHORS_PYTHON", BENCH / ".venv-anchors" / "bin" / "python"))
ANCHOR_TIMEOUT = float(os.environ.get("PATRON_BENCH_ANCHOR_TIMEOUT", "900"))
ANCHORS = ("lifetimes", "pymc-marketing")
WORKLOADS = tuple(os.environ.get("PATRON_BENCH_WORKLOADS", "summary,bgnbd,paretonbd,gammagamma,scoring").split(","))
OBSERVATION_END = dt.date(1998, 6, 30)


def replicated_transactions(copies: int) -> pl.DataFrame:
    base = read_cdnow(CDNOW_MASTER).select("customer_id", "at", "revenue")
    return pl.concat(base.with_columns(pl.col("customer_id") + copy * 100_000) for copy in range(copies))


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def patron_times(transactions: pl.DataFrame) -> tuple[dict[str, float], Summary]:
    def summarise() -> Summary:
        return purchase_summary(transactions, observation_end=OBSERVATION_END, period="D")

    # The summary's compiled pass is loaded from Numba's disk cache on first use (~0.2 s once per process, as an
    # import is; compiled once after install). The anchors' imports are not timed either, so load it first.
    loading = _timed(lambda: purchase_summary(transactions.head(1_000), observation_end=OBSERVATION_END, period="D"))
    runs = sorted(_timed(summarise) for _ in range(3))  # the median of three, as for the anchors (anchors_clv.py)
    times = {"summary": runs[1], "summary_loading": loading, "summary_slowest": runs[2]}
    summary = summarise()
    times["bgnbd"] = _timed(lambda: BetaGeometricNBD().fit_summary(summary))
    times["paretonbd"] = _timed(lambda: ParetoNBD().fit_summary(summary))
    times["gammagamma"] = _timed(lambda: GammaGamma().fit_summary(summary))
    purchases = BetaGeometricNBD().fit_summary(summary)
    spend = GammaGamma().fit_summary(summary)
    times["scoring"] = _timed(lambda: customer_lifetime_value(summary, purchases, spend, ClvSettings(36, 0.10)))
    return times, summary


def anchor_time(library: str, workload: str, parquet: Path) -> tuple[float | None, str]:
    """Seconds, or None with the reason (not installed, failed, timed out)."""
    if not ANCHOR_PYTHON.exists():
        return None, f"{library} not installed (make bench creates {ANCHOR_PYTHON.parent.parent})"
    command = [str(ANCHOR_PYTHON), str(BENCH / "anchors_clv.py"), library, workload, str(parquet)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=ANCHOR_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return None, f"over {ANCHOR_TIMEOUT:.0f} s (stopped)"
    if done.returncode != 0:
        return None, "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:120]
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"]), ""


def run(copies: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        parquet = Path(folder) / f"cdnow_x{copies}.parquet"
        replicated_transactions(copies).write_parquet(parquet)
        # Both sides start from the same file, read before the clock starts (the anchors read it into pandas).
        transactions = pl.read_parquet(parquet)
        patron, summary = patron_times(transactions)
        size = f"x{copies} ({summary.frame.height:,} customers, {transactions.height:,} lines)"
        for workload in WORKLOADS:
            for library in ANCHORS + (("pandas",) if workload == "summary" else ()):
                seconds, problem = anchor_time(library, workload, parquet)
                note = problem or f"Patron {seconds / patron[workload]:,.1f}× faster"
                if workload == "summary":
                    note += (
                        f" (median of 3 calls, slowest {patron['summary_slowest']:.2f} s; loading the compiled pass "
                        f"first: {patron['summary_loading']:.2f} s)"
                    )
                rows.append(
                    {
                        "workload": f"CLV: {workload}",
                        "size": size,
                        "patron_s": patron[workload],
                        "anchor": library,
                        "anchor_s": seconds if seconds is not None else float("nan"),
                        "note": note,
                    }
                )
                print(rows[-1], flush=True)
    return rows
