"""Value models that always answer: the NBD limit at the boundary, MBG/NBD, RFM when nothing can be fitted,
Gamma-Gamma refusing q ≤ 1, BG/BB runs for discrete-time data, and sBG retention against Fader & Hardie (2007)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cli.main import app
from patron.errors import FitError
from patron.settings import get_settings
from patron.value.fits import fit_purchases, fit_spend
from patron.value.lists import LISTS
from patron.value.models.bgnbd import BetaGeometricNBD
from patron.value.models.gammagamma import GammaGamma
from patron.value.models.mbgnbd import ModifiedBetaGeometricNBD
from patron.value.models.nbd import NegativeBinomial
from patron.value.models.sbg import ShiftedBetaGeometric
from patron.value.scoring import score_customers
from patron.value.summary import purchase_summary
from tests.conftest import SHARED_DATA, needs

START = dt.date(2023, 1, 1)


def simulate(
    rng: np.random.Generator, customers: int, days: int, *, r: float, alpha: float, p: np.ndarray, at_start: bool
) -> pl.DataFrame:  # fmt: skip
    """Purchase days of a base: Poisson rates gamma(r, α) per week; after each purchase (and, for MBG/NBD, at the
    first) a customer leaves with their own probability p."""
    rows = []
    for customer in range(customers):
        rate = rng.gamma(r, 1 / alpha) / 7
        first = int(rng.integers(0, days // 3))
        rows.append((customer, first))
        t, alive = float(first), not (at_start and rng.random() < p[customer])
        while alive:
            t += rng.exponential(1 / rate)
            if t >= days:
                break
            rows.append((customer, int(t)))
            alive = rng.random() >= p[customer]
    return pl.DataFrame(
        {
            "customer_id": [c for c, _ in rows],
            "at": [START + dt.timedelta(days=day) for _, day in rows],
            "revenue": rng.gamma(4.0, 10.0, len(rows)),
        }
    )


def test_a_base_without_drop_out_is_answered_by_the_nbd_limit() -> None:
    rng = np.random.default_rng(7)
    transactions = simulate(rng, 3_000, 730, r=0.8, alpha=4.0, p=np.zeros(3_000), at_start=False)
    summary = purchase_summary(transactions, period="W")
    with pytest.raises(FitError) as raised:
        BetaGeometricNBD().fit_summary(summary)
    assert raised.value.kind in ("edge", "flat")
    assert raised.value.field in ("a", "b")
    fit = fit_purchases("bgnbd", summary)
    assert (fit.requested, fit.name) == ("bgnbd", "nbd")
    assert "no detectable drop-out" in fit.notes[0]
    assert fit.model.params["r"] == pytest.approx(0.8, rel=0.15)
    assert fit.model.params["alpha"] == pytest.approx(4.0, rel=0.2)


def test_mbgnbd_recovers_the_parameters_it_simulated() -> None:
    rng = np.random.default_rng(11)
    p = rng.beta(1.0, 4.0, 6_000)
    summary = purchase_summary(simulate(rng, 6_000, 730, r=0.7, alpha=3.0, p=p, at_start=True), period="W")
    model = ModifiedBetaGeometricNBD().fit_summary(summary)
    assert model.params["r"] == pytest.approx(0.7, rel=0.2)
    assert model.params["alpha"] == pytest.approx(3.0, rel=0.25)
    assert model.params["a"] / (model.params["a"] + model.params["b"]) == pytest.approx(0.2, abs=0.05)
    x, t_x, big_t = (summary.frame[name].to_numpy() for name in ("frequency", "recency", "T"))
    assert (model.probability_alive(x, t_x, big_t) < 1).all()  # unlike BG/NBD, a one-time buyer may be gone
    assert NegativeBinomial().fit_summary(summary).log_likelihood < model.log_likelihood


def test_gamma_gamma_refuses_an_unbounded_mean_spend_and_the_run_falls_back() -> None:
    rng = np.random.default_rng(3)
    frequency = rng.integers(1, 6, 2_000)
    # Spend as the model has it, with the customers' scale ν ~ gamma(q = 0.8): E[1/ν] does not exist.
    scale = rng.gamma(0.8, 1 / 10.0, 2_000)
    spend = np.array([rng.gamma(3.0, 1 / nu, n).mean() for nu, n in zip(scale, frequency, strict=True)])
    with pytest.raises(FitError, match=r"q = .* ≤ 1.*unbounded"):
        GammaGamma().fit(frequency, spend)
    summary = purchase_summary(
        pl.DataFrame(
            {
                "customer_id": np.repeat(np.arange(2_000), frequency + 1),
                "at": [START + dt.timedelta(days=7 * int(k)) for n in frequency for k in range(n + 1)],
                "revenue": np.repeat(spend, frequency + 1),
            }
        )
    )
    fallback = fit_spend(summary)
    assert fallback.name == "observed_mean"
    assert "≤ 1" in fallback.notes[0]
    assert fallback.model.conditional_expected_value([2, 0], [7.5, 0.0]).tolist() == [
        7.5,
        fallback.model.population_mean,
    ]


def test_sbg_reproduces_the_published_estimates() -> None:
    regular = ShiftedBetaGeometric().fit_survivors([1000, 631, 468, 382, 326, 289, 262, 241])
    high_end = ShiftedBetaGeometric().fit_survivors([1000, 869, 743, 653, 593, 551, 517, 491])
    assert {k: float(f"{v:.3g}") for k, v in regular.params.items()} == {"alpha": 0.704, "beta": 1.18}
    assert round(regular.params["beta"], 3) == 1.182
    assert {k: float(f"{v:.3g}") for k, v in high_end.params.items()} == {"alpha": 0.668, "beta": 3.81}
    assert round(high_end.params["beta"], 3) == 3.806
    # Retention rises with tenure (the sorting effect): r(1) = β / (α + β), and onward.
    curve = regular.retention(np.arange(1, 8))
    assert curve[0] == pytest.approx(1.182 / (0.704 + 1.182), abs=1e-3)
    assert (np.diff(curve) > 0).all()
    assert regular.survival([7])[0] * 1000 == pytest.approx(241, abs=5)
    # DERL with no discounting and no heterogeneity would be (1 − θ) / θ; the sBG's is larger (the stayers stay).
    assert regular.residual_lifetime([0], 0.10)[0] == pytest.approx(2.96, abs=0.01)


SHOP = '[source]\nsystem = "tiny"\ncurrency = "EUR"\n[customers]\nexternal_id = "c"\none_row_per_customer = false\n' \
       '[orders]\ncustomer = "c"\nordered_at = "d"\nrevenue = "v"\n'  # fmt: skip


def test_a_twenty_customer_shop_gets_rfm_tiers_not_an_error(engine: Engine, tmp_path: Path) -> None:
    rows = ["c,d,v"] + [f"c{n},2024-0{1 + n % 6}-1{n % 9},{10 + 7 * n}.00" for n in range(20)]
    rows += [f"c{n},2024-07-0{n + 1},{5 + n}.50" for n in range(3)]  # three repeat buyers
    path = tmp_path / "tiny.csv"
    path.write_text("\n".join(rows) + "\n")
    import_file(engine, path, parse_mapping(__import__("tomllib").loads(SHOP)), rejects_dir=tmp_path)
    result = score_customers(engine)
    assert result.model == "rfm"
    assert result.customers == 20
    assert any("RFM" in note for note in result.notes)
    assert result.scores.group_by("tier").len().sort("tier")["len"].to_list() == [4, 6, 10]
    best = result.scores.sort("rank").row(0, named=True)
    assert best["r_score"] + best["f_score"] + best["m_score"] == result.scores["rfm"].max()
    assert result.scores["p_alive"].null_count() == 20  # an RFM run forecasts nothing
    top = LISTS["top"](__import__("patron.value.base", fromlist=["customer_base"]).customer_base(engine)[0])
    assert top.rows.height > 0
    # The dashboard says what an RFM run is, beside a second business it does not mix in.
    second = tmp_path / "other.csv"
    second.write_text("c,d,v\n" + "".join(f"o{n},2024-02-0{1 + n % 9},{3 + n}.00\n" for n in range(40)))
    other = __import__("tomllib").loads(SHOP.replace('"tiny"', '"other"').replace('"EUR"', '"USD"'))
    import_file(engine, second, parse_mapping(other), rejects_dir=tmp_path)
    from fastapi.testclient import TestClient  # noqa: PLC0415

    from patron.app import create_app  # noqa: PLC0415
    from patron.auth.service import create_user  # noqa: PLC0415

    create_user(engine, "boss", "a long password", "admin")
    with TestClient(create_app(engine)) as client:
        client.post("/login", data={"username": "boss", "password": "a long password"})
        tiny = client.get("/", params={"source": "tiny"})
        other_page = client.get("/", params={"source": "other"})
        builder = client.get("/segments")
    assert tiny.status_code == other_page.status_code == 200
    assert "RFM tiers" in tiny.text
    assert "Past margin distribution" in tiny.text
    assert "customers who bought in tiny" in tiny.text
    assert 'option value="other"' in tiny.text  # the picker offers the other business
    assert "customers who bought in other" in other_page.text
    assert "RFM tiers" not in other_page.text  # no run of its own yet
    # Segment rules name the currency their money fields are in (the main one: 40 USD orders against 23 EUR).
    assert "count every source's orders in USD" in builder.text


@pytest.fixture
def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PATRON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PATRON_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_bgbb_scores_a_discrete_time_base_from_the_cli(cli_store: Path) -> None:
    rng = np.random.default_rng(5)
    lines = ["donor,year_day,amount"]
    for donor in range(800):  # yearly donations, 2015-2024: give with p, lapse after each year with θ
        p, theta, alive = rng.beta(1.2, 0.8), rng.beta(0.6, 2.5), True
        start = int(rng.integers(2015, 2018))
        lines.append(f"d{donor},{start}-03-01,{rng.integers(20, 200)}")
        for year in range(start + 1, 2025):
            alive = alive and rng.random() >= theta
            if alive and rng.random() < p:
                lines.append(f"d{donor},{year}-03-01,{rng.integers(20, 200)}")
    data, mapping = cli_store / "donations.csv", cli_store / "m.toml"
    data.write_text("\n".join(lines) + "\n")
    mapping.write_text(
        '[source]\nsystem = "charity"\n[customers]\nexternal_id = "donor"\none_row_per_customer = false\n'
        '[orders]\ncustomer = "donor"\nordered_at = "year_day"\nrevenue = "amount"\n'
    )
    runner = CliRunner()
    assert runner.invoke(app, ["import", str(data), "-m", str(mapping)]).exit_code == 0
    scored = runner.invoke(app, ["value", "score", "--model", "bgbb", "--period", "Y", "--as-of", "2025-01-01"])
    assert scored.exit_code == 0, scored.output
    assert "800 customers scored with bgbb" in scored.output
    from patron.cli.shared import open_store  # noqa: PLC0415
    from patron.value.scoring import list_runs  # noqa: PLC0415

    run = list_runs(open_store(), 1)[0]
    assert run["model"].startswith("bgbb+")  # spend: Gamma-Gamma, or the observed means where it cannot answer
    assert set(run["parameters"]["bgbb"]) == {"alpha", "beta", "gamma", "delta"}


@needs(SHARED_DATA / "telco-churn")
def test_telco_contract_retention_per_contract_type_from_the_store_and_the_api(sqlite_engine: Engine) -> None:
    from fastapi.testclient import TestClient  # noqa: PLC0415

    from patron.app import create_app  # noqa: PLC0415
    from patron.auth.service import create_user  # noqa: PLC0415
    from patron.demo import load_demo  # noqa: PLC0415
    from patron.value.retention import contract_retention  # noqa: PLC0415

    load_demo(sqlite_engine, SHARED_DATA, names=("telco-churn",))
    report = contract_retention(sqlite_engine)
    cohorts = {item.cohort: item for item in report.cohorts}
    assert set(cohorts) == {"Month-to-month", "One year", "Two year"}
    monthly = cohorts["Month-to-month"]
    assert (monthly.customers, monthly.churned) == (3_875, 1_655)  # 11 customers of tenure 0 are left out
    assert report.left_out["customers_without_a_whole_period_of_tenure"] == 11
    assert monthly.note is None
    assert (np.diff(monthly.retention) > 0).all()  # the sorting effect: those likely to cancel leave first
    assert cohorts["Two year"].survival[-1] > cohorts["One year"].survival[-1] > monthly.survival[-1]
    assert report.customers["residual_value"].drop_nulls().to_numpy().min() > 0
    create_user(sqlite_engine, "analyst", "analyst-password", "analyst")
    with TestClient(create_app(sqlite_engine)) as client:
        token = client.post("/api/auth/token", json={"username": "analyst", "password": "analyst-password"})
        reply = client.get("/api/value/retention", headers={"Authorization": f"Bearer {token.json()['token']}"})
    assert reply.status_code == 200, reply.text
    by_name = {item["cohort"]: item for item in reply.json()["cohorts"]}
    assert by_name["Month-to-month"]["alpha"] == pytest.approx(monthly.alpha)
    assert by_name["Two year"]["alpha"] is None
    assert "geometric limit" in by_name["Two year"]["note"]
