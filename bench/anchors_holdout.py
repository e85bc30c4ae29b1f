"""lifetimes' BG/NBD on a calibration/holdout split, per customer; runs in the benchmark environment.

Usage: python anchors_holdout.py OCCASIONS.parquet CALIBRATION_END OBSERVATION_END PERIOD_DAYS OUT.parquet
OCCASIONS holds (customer_id, at): one row per purchase day. Recency and T are measured in days and divided by
PERIOD_DAYS, as Patron measures them (day precision, in weeks or days). Writes customer_id and forecast_holdout;
prints the seconds of summary, fit and forecast and the fitted parameters as JSON.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import pandas as pd

warnings.filterwarnings("ignore")


def main() -> None:
    from lifetimes import BetaGeoFitter  # noqa: PLC0415  (anchor environment only)
    from lifetimes.utils import calibration_and_holdout_data  # noqa: PLC0415

    source, calibration_end, observation_end, period_days, out = sys.argv[1:6]
    # A value column to aggregate: with none, lifetimes 0.11's holdout count is empty under pandas 3.
    occasions = pd.read_parquet(source).assign(value=1.0)
    started = time.perf_counter()  # timed as Patron's side is: summary, fit and forecast
    data = calibration_and_holdout_data(
        occasions, "customer_id", "at", calibration_period_end=calibration_end,
        observation_period_end=observation_end, freq="D", monetary_value_col="value",
    )  # fmt: skip
    days = float(period_days)
    model = BetaGeoFitter(penalizer_coef=0.0)
    model.fit(data["frequency_cal"], data["recency_cal"] / days, data["T_cal"] / days)
    horizon = float(data["duration_holdout"].iloc[0]) / days
    forecast = model.conditional_expected_number_of_purchases_up_to_time(
        horizon, data["frequency_cal"], data["recency_cal"] / days, data["T_cal"] / days
    )
    seconds = time.perf_counter() - started
    pd.DataFrame({"customer_id": data.index.astype("int64"), "forecast_holdout": forecast.to_numpy()}).to_parquet(out)
    print(json.dumps({"seconds": seconds, **{name: float(value) for name, value in model.params_.items()}}))


if __name__ == "__main__":
    main()
