"""Forecast accuracy on a real shop: Online Retail II imported through the generic importer, calibrated to
2010-06-30, repeat purchase days forecast for 2010-07-01..2010-12-09, against the actual ones and against lifetimes'
BG/NBD on the same purchase days (weekly and daily periods). Patron's model is chosen by its own holdout rule.

The figures are accuracy first: the row's times are summary, model fit (Patron: its holdout choice among four
models) and forecast, each timed inside its own process; the note holds the absolute error of the cohort's total
and the per-customer mean absolute error of both.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from bench.bench_value import ANCHOR_PYTHON, ANCHOR_TIMEOUT, BENCH
from bench.cdnow_data import SHARED_DATA
from patron.cif.facts import resolve_scope
from patron.cif.importer import import_file
from patron.cif.store import make_engine, migrate
from patron.demo import demo_mapping
from patron.value.diagnostics import holdout_forecast
from patron.value.scoring import fit_models
from patron.value.summary import PERIOD_DAYS, purchase_summary
from patron.value.transactions import load_transactions

CALIBRATION_END, OBSERVATION_END = dt.date(2010, 6, 30), dt.date(2010, 12, 9)
SOURCE = SHARED_DATA / "online-retail-ii" / "online_retail_II_2009-2010.parquet"


def _lifetimes(occasions: Path, period: str, work: Path) -> tuple[pl.DataFrame | None, float, str]:
    if not ANCHOR_PYTHON.exists():
        return None, float("nan"), "lifetimes not installed"
    out = work / f"lifetimes-{period}.parquet"
    command = [str(ANCHOR_PYTHON), str(BENCH / "anchors_holdout.py"), str(occasions), str(CALIBRATION_END),
               str(OBSERVATION_END), str(PERIOD_DAYS[period]), str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=ANCHOR_TIMEOUT, check=False)
    if done.returncode != 0:
        return None, float("nan"), f"lifetimes failed: {done.stderr.strip().splitlines()[-1:]}"
    parameters = json.loads(done.stdout.strip().splitlines()[-1])
    seconds = parameters.pop("seconds")  # timed inside, so interpreter start and imports do not count
    return pl.read_parquet(out), seconds, ", ".join(f"{k} {v:.3g}" for k, v in parameters.items())


def run(copies: int) -> list[dict[str, object]]:
    del copies  # one real data set, one size
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        engine = make_engine(f"sqlite:///{work / 'patron.db'}")
        migrate(engine)
        import_file(engine, SOURCE, demo_mapping("online-retail-ii"), rejects_dir=work)
        transactions = load_transactions(engine, resolve_scope(engine))
        daily = transactions.group_by("customer_id", pl.col("at").dt.date().alias("day")).agg(pl.col("revenue").sum())
        occasions = work / "occasions.parquet"
        daily.filter(pl.col("revenue") >= 0).select(
            "customer_id", pl.col("day").cast(pl.Datetime).alias("at")
        ).write_parquet(occasions)
        for period in ("W", "D"):
            started = time.perf_counter()
            summary = purchase_summary(
                transactions,
                calibration_end=CALIBRATION_END,
                observation_end=OBSERVATION_END,
                period=period,  # type: ignore[arg-type]
            )
            fitted = fit_models(transactions, summary, "auto")
            assert fitted.purchases is not None
            ours = holdout_forecast(fitted.purchases.model, summary)
            patron_seconds = time.perf_counter() - started
            theirs, anchor_seconds, parameters = _lifetimes(occasions, period, work)
            actual = int(ours["frequency_holdout"].sum())
            note = [f"actual {actual:,}; Patron {fitted.purchases.name}: {_errors(ours, 'forecast_holdout')}"]
            if theirs is not None:
                both = ours.join(theirs.rename({"forecast_holdout": "lifetimes"}), on="customer_id", how="inner")
                note.append(
                    f"lifetimes bgnbd ({parameters}): {_errors(both, 'lifetimes')} on {both.height:,} customers"
                )
            else:
                note.append(parameters)
            rows.append(
                {
                    "workload": f"online-retail-ii holdout forecast, period {period}",
                    "size": f"{summary.frame.height:,} customers",
                    "patron_s": patron_seconds,
                    "anchor": "lifetimes BetaGeoFitter",
                    "anchor_s": anchor_seconds,
                    "note": "; ".join(note),
                }
            )
        engine.dispose()
    return rows


def _errors(frame: pl.DataFrame, column: str) -> str:
    forecast, actual = frame[column].to_numpy(), frame["frequency_holdout"].to_numpy()
    total_error = abs(forecast.sum() - actual.sum())
    return (
        f"forecast {forecast.sum():,.0f} ({(forecast.sum() / actual.sum() - 1):+.1%}, abs error {total_error:,.0f}), "
        f"MAE {np.abs(forecast - actual).mean():.4f}"
    )
