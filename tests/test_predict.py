"""Predictive models on the real data sets: the AUCs the issue asks for, model cards, stored scores, explanations."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pytest
from sqlalchemy import Engine

from patron.errors import InvalidInputError
from patron.predict.models import explain, list_models, model_card, model_scores, train_model
from tests.conftest import NEEDS_SHARED_DATA, demo_store

pytestmark = [pytest.mark.slow, NEEDS_SHARED_DATA, pytest.mark.xdist_group("predict")]  # one store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    yield from demo_store(tmp_path_factory, "telco-churn", "customer-personality")


def test_churn_model_on_telco_reaches_the_auc_and_explains_itself(store: Engine) -> None:
    trained = train_model(
        store, "telco churn", population='source == "telco"', target="attributes.churned", exclude=["status"], seed=0
    )
    card = trained.card
    assert card.metrics[card.chosen]["auc"] >= 0.84
    assert set(card.metrics) == {"logistic", "gradient_boosting"}
    assert card.train_rows + card.holdout_rows == 7043
    assert card.holdout_rows == 1761  # 25 %, stratified
    assert "attributes.churned" in card.excluded
    assert "status" in card.excluded
    assert "attributes.churned" not in card.features
    assert "status" not in card.features
    assert len(card.calibration) == len(card.lift) == 10
    assert card.lift[0]["lift"] > 2 > card.lift[-1]["lift"]
    assert card.lift[-1]["cumulative_capture"] == pytest.approx(1.0)
    assert card.top_drivers[0]["feature"] == "attributes.tenure_months"

    stored = model_scores(store, trained.run_id)
    assert stored.height == 7043
    assert stored["decile"].value_counts().height == 10
    assert model_card(store, trained.run_id)["chosen"] == card.chosen
    assert list_models(store)[0]["id"] == trained.run_id

    riskiest = int(stored.sort("score", descending=True)["customer_id"][0])
    reasons = explain(store, trained.run_id, riskiest, top=3)
    assert len(reasons) == 3
    assert all(isinstance(effect, float) for _, effect in reasons)
    assert {name for name, _ in reasons} <= set(card.features)


def test_response_model_on_customer_personality_reaches_the_auc(store: Engine) -> None:
    trained = train_model(store, "last campaign", population='source == "personality"', target="responded.last", seed=0)
    assert trained.card.metrics[trained.card.chosen]["auc"] >= 0.88
    assert "responded.last" in trained.card.excluded
    assert trained.scores.height == 2240
    assert trained.scores["score"].is_between(0, 1).all()


def test_a_target_with_too_few_cases_is_refused(store: Engine) -> None:
    with pytest.raises(InvalidInputError, match="needs at least 20"):
        train_model(store, "nobody", population='source == "telco"', target="attributes.tenure_months > 1000")
    with pytest.raises(InvalidInputError, match="unknown field"):
        train_model(store, "typo", target="attributes.churnd")


def test_scores_can_target_another_population(store: Engine) -> None:
    trained = train_model(
        store,
        "seniors",
        population='source == "telco"',
        target="attributes.churned",
        exclude=["status"],
        score_population='source == "telco" and attributes.senior_citizen',
    )
    assert trained.scores.height == 1142
    assert isinstance(trained.scores, pl.DataFrame)
