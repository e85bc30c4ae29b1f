"""A propensity model at interactive size: N × 50,000 customers with 20 attributes (19 numbers and a category;
the target depends on five of them), imported through the importer, then ``train_model`` — logistic regression and
calibrated gradient boosting judged on a held-out quarter, the drivers, every customer scored and stored.

The anchor is what an analyst would fit with scikit-learn alone on the same table already in memory: the two
models on the same split, judged on it, without the store, the calibration, the drivers or the scoring.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cif.store import make_engine, migrate
from patron.predict.models import train_model

CUSTOMERS_PER_COPY = 50_000
NUMBERS = [f"x{i:02d}" for i in range(19)]


def _table(customers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(19)
    numbers = rng.normal(size=(customers, len(NUMBERS)))
    category = rng.integers(0, 4, customers)
    signal = numbers[:, :4] @ np.array([1.2, -0.8, 0.6, 0.4]) + 0.7 * (category == 2) - 1.0
    target = rng.random(customers) < 1 / (1 + np.exp(-signal))
    return numbers, category, target


def _write(path: Path, numbers: np.ndarray, category: np.ndarray, target: np.ndarray) -> None:
    with path.open("w") as handle:
        handle.write("id,plan," + ",".join(NUMBERS) + ",churned\n")
        for index in range(len(target)):
            values = ",".join(f"{value:.4f}" for value in numbers[index])
            handle.write(f"c{index},p{category[index]},{values},{'true' if target[index] else 'false'}\n")


def _sklearn(numbers: np.ndarray, category: np.ndarray, target: np.ndarray) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    started = time.perf_counter()
    design = np.column_stack([numbers, np.eye(4)[category]])
    train_x, test_x, train_y, test_y = train_test_split(design, target, test_size=0.25, random_state=0)
    for model in (LogisticRegression(max_iter=1000), HistGradientBoostingClassifier(early_stopping=True)):
        roc_auc_score(test_y, model.fit(train_x, train_y).predict_proba(test_x)[:, 1])
    return time.perf_counter() - started


def run(copies: int) -> list[dict[str, object]]:
    customers = copies * CUSTOMERS_PER_COPY
    numbers, category, target = _table(customers)
    mapping = parse_mapping({"source": {"system": "bench"}, "customers": {"external_id": "id", "attributes": {
        "plan": "plan", "churned": {"column": "churned", "type": "boolean"},
        **{name: {"column": name, "type": "number"} for name in NUMBERS}}}})  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        _write(work / "customers.csv", numbers, category, target)
        engine = make_engine(f"sqlite:///{work / 'patron.db'}")
        migrate(engine)
        started = time.perf_counter()
        import_file(engine, work / "customers.csv", mapping, rejects_dir=work)
        imported = time.perf_counter() - started
        started = time.perf_counter()
        trained = train_model(engine, "bench churn", target="attributes.churned")
        seconds = time.perf_counter() - started
        engine.dispose()
    anchor = _sklearn(numbers, category, target)
    return [
        {
            "workload": "propensity model: logistic + calibrated boosting, held-out evaluation, drivers, scores",
            "size": f"{customers:,} customers × 20 attributes",
            "patron_s": seconds,
            "anchor": "scikit-learn: the two models fitted and judged on the table in memory",
            "anchor_s": anchor,
            "note": f"{trained.card.chosen} chosen, held-out AUC "
            f"{trained.card.metrics[trained.card.chosen].get('auc', float('nan')):.3f}, "
            f"{len(trained.card.features)} features; import {imported:.1f} s",
        }
    ]
