"""One CLV workload in an anchor library, timed; runs in the separate benchmark environment (bench/.venv-anchors).

Usage: python anchors_clv.py LIBRARY WORKLOAD TRANSACTIONS.parquet  →  prints {"seconds": ...} as JSON.
LIBRARY is lifetimes, pymc-marketing or pandas (a plain pandas summary, what one would write by hand);
WORKLOAD is summary, bgnbd, paretonbd, gammagamma, scoring or pipeline (summary, BG/NBD and Gamma-Gamma fits,
36-month CLV, all timed). Otherwise only the workload itself is timed; the summary it needs is built first.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable

import pandas as pd

warnings.filterwarnings("ignore")
OBSERVATION_END = "1998-06-30"
HORIZON_MONTHS = 36
MONTHLY_DISCOUNT = 0.10 / 12


def lifetimes_summary(transactions: pd.DataFrame) -> pd.DataFrame:
    from lifetimes.utils import summary_data_from_transaction_data  # noqa: PLC0415  (anchor environment only)

    return summary_data_from_transaction_data(
        transactions,
        "customer_id",
        "at",
        monetary_value_col="revenue",
        observation_period_end=OBSERVATION_END,
        freq="D",
    )


def pymc_summary(transactions: pd.DataFrame) -> pd.DataFrame:
    from pymc_marketing.clv.utils import rfm_summary  # noqa: PLC0415  (anchor environment only)

    return rfm_summary(
        transactions,
        "customer_id",
        "at",
        monetary_value_col="revenue",
        observation_period_end=OBSERVATION_END,
        time_unit="D",
    )


def pandas_summary(transactions: pd.DataFrame) -> pd.DataFrame:
    """Frequency, recency, T (days) and mean repeat spend with plain pandas group-bys."""
    end = pd.Timestamp(OBSERVATION_END)
    days = transactions[transactions["at"] <= end].copy()
    days["day"] = days["at"].dt.normalize()
    daily = days.groupby(["customer_id", "day"], as_index=False)["revenue"].sum()
    daily = daily[daily["revenue"] >= 0].sort_values(["customer_id", "day"])
    first = daily.groupby("customer_id")["day"].transform("min")
    daily["repeat_revenue"] = daily["revenue"].where(daily["day"] != first, 0.0)
    summary = daily.groupby("customer_id").agg(
        occasions=("day", "size"), first=("day", "min"), last=("day", "max"), repeat_revenue=("repeat_revenue", "sum")
    )
    summary["frequency"] = summary["occasions"] - 1
    summary["recency"] = (summary["last"] - summary["first"]).dt.days
    summary["T"] = (end - summary["first"]).dt.days
    summary["monetary_value"] = (summary["repeat_revenue"] / summary["frequency"]).where(summary["frequency"] > 0, 0.0)
    return summary[["frequency", "recency", "T", "monetary_value"]]


SUMMARY_RUNS = 3


def median_time(work: Callable[[], object]) -> float:
    """The summary's time as the median of three calls in one process (bench_value.py times Patron's the same way):
    a single call's time swings with how fast this machine hands out fresh memory."""
    times = []
    for _ in range(SUMMARY_RUNS):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return sorted(times)[SUMMARY_RUNS // 2]


def run_pandas(workload: str, transactions: pd.DataFrame) -> float:
    if workload != "summary":
        raise SystemExit(f"the plain pandas anchor covers the summary only, not {workload}")
    return median_time(lambda: pandas_summary(transactions))


def run_lifetimes(workload: str, transactions: pd.DataFrame) -> float:
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter  # noqa: PLC0415  (anchor environment only)

    if workload == "pipeline":
        started = time.perf_counter()
        summary = lifetimes_summary(transactions)
        repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
        bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
        ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
        ggf.customer_lifetime_value(
            bgf, summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"],
            time=HORIZON_MONTHS, discount_rate=MONTHLY_DISCOUNT, freq="D",
        )  # fmt: skip
        return time.perf_counter() - started
    if workload == "summary":
        return median_time(lambda: lifetimes_summary(transactions))
    summary = lifetimes_summary(transactions)
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    started = time.perf_counter()
    if workload == "bgnbd":
        BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    elif workload == "paretonbd":
        ParetoNBDFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    elif workload == "gammagamma":
        GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    else:
        started_fits = time.perf_counter()
        bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
        ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
        started += time.perf_counter() - started_fits  # scoring only: the fits are timed above
        bgf.conditional_probability_alive(summary["frequency"], summary["recency"], summary["T"])
        ggf.customer_lifetime_value(
            bgf, summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"],
            time=HORIZON_MONTHS, discount_rate=MONTHLY_DISCOUNT, freq="D",
        )  # fmt: skip
    return time.perf_counter() - started


def run_pymc(workload: str, transactions: pd.DataFrame) -> float:
    from pymc_marketing import clv  # noqa: PLC0415  (anchor environment only)

    if workload == "pipeline":
        started = time.perf_counter()
        summary = pymc_summary(transactions)
        repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
        bg = clv.BetaGeoModel(data=summary)
        bg.fit(method="map")
        gg = clv.GammaGammaModel(data=repeat)
        gg.fit(method="map")
        gg.expected_customer_lifetime_value(
            transaction_model=bg, data=summary, future_t=HORIZON_MONTHS, discount_rate=MONTHLY_DISCOUNT, time_unit="D"
        )
        return time.perf_counter() - started
    if workload == "summary":
        return median_time(lambda: pymc_summary(transactions))
    summary = pymc_summary(transactions)
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    started = time.perf_counter()
    if workload == "bgnbd":
        clv.BetaGeoModel(data=summary).fit(method="map")
    elif workload == "paretonbd":
        clv.ParetoNBDModel(data=summary).fit(method="map")
    elif workload == "gammagamma":
        clv.GammaGammaModel(data=repeat).fit(method="map")
    else:
        started_fits = time.perf_counter()
        bg = clv.BetaGeoModel(data=summary)
        bg.fit(method="map")
        gg = clv.GammaGammaModel(data=repeat)
        gg.fit(method="map")
        started += time.perf_counter() - started_fits
        bg.expected_probability_alive(data=summary)
        gg.expected_customer_lifetime_value(
            transaction_model=bg, data=summary, future_t=HORIZON_MONTHS, discount_rate=MONTHLY_DISCOUNT, time_unit="D"
        )
    return time.perf_counter() - started


def main() -> None:
    library, workload, path = sys.argv[1:4]
    transactions = pd.read_parquet(path)
    transactions["at"] = pd.to_datetime(transactions["at"])
    runner = {"lifetimes": run_lifetimes, "pymc-marketing": run_pymc, "pandas": run_pandas}[library]
    seconds = runner(workload, transactions)
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
