"""Evolve on a real randomised campaign (Hillstrom's e-mail test, loaded as a campaign with its control group): an
uplift model judged by Qini on a held-out 30 % with a bootstrap interval, targeting its top 30 % against e-mailing
everyone, campaigns targeted by expected incremental margin, contacts chosen under a budget, and Thompson sampling
judged by offline replay. Seeds are fixed; the figures are the ones docs/ENGAGE.md reports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from patron.auth.service import create_user
from patron.engage.campaigns import create_campaign, prepare_campaign, replay_campaign, targeting_of
from patron.engage.offers import create_offer
from patron.predict.campaign_uplift import TrainedUplift, train_uplift, uplift_scores
from patron.strategy.contacts import contact_plan
from tests.conftest import SHARED_DATA, demo_store, needs
from tests.test_pages import CHROMIUM, serving, sign_in_page

HILLSTROM = SHARED_DATA / "hillstrom-email" / "hillstrom.csv"
pytestmark = [pytest.mark.slow, needs(HILLSTROM), pytest.mark.xdist_group("hillstrom-uplift")]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    yield from demo_store(tmp_path_factory, "hillstrom-email")


@pytest.fixture(scope="module")
def model(store: Engine) -> TrainedUplift:
    return train_uplift(store, "email-visit", campaign="hillstrom-2008", kind="visit", seed=0)


def test_the_uplift_model_beats_random_targeting_on_held_out_customers(model: TrainedUplift) -> None:
    assert model.holdout_rows == 19_200
    assert model.train_rows == 44_800
    judged = model.evaluations[model.chosen]
    assert judged.qini_low > 0  # the 95 % bootstrap interval of the Qini coefficient excludes random targeting
    # E-mailing the top 30 % by predicted uplift brings more extra visits per e-mail than e-mailing everyone.
    assert judged.top_uplift > judged.overall_uplift
    assert judged.by_decile[0]["observed"] > judged.by_decile[-1]["observed"]
    assert model.chosen == "x-learner"
    assert judged.qini == pytest.approx(0.00313, abs=0.0002)
    assert (judged.top_uplift, judged.overall_uplift) == pytest.approx((0.0815, 0.0610), abs=0.001)
    assert model.scored == 64_000


def test_a_campaign_targeted_by_uplift_contacts_only_those_worth_the_cost(store: Engine, model: TrainedUplift) -> None:
    create_offer(store, "autumn visit", margin=10.0)
    create_campaign(
        store, "uplift-targeted", "Targeted by uplift", rule='source == "hillstrom"', subject="Hi", body="Hi",
        offer="autumn visit", uplift_model="email-visit", contact_cost=0.5,
    )  # fmt: skip
    prepared = prepare_campaign(store, "uplift-targeted")
    worth_it = sum(1 for uplift in uplift_scores(store, "email-visit").values() if uplift * 10.0 - 0.5 > 0)
    assert 0 < worth_it < 64_000
    assert prepared.members == worth_it
    assert prepared.left_out == 64_000 - worth_it
    assert prepared.everyone_incremental is not None
    stored = targeting_of(store, "uplift-targeted")  # what the campaign page shows
    assert stored is not None
    assert stored["left_out"] == prepared.left_out
    assert stored["everyone_incremental"] == pytest.approx(prepared.everyone_incremental)
    # The file has no e-mail addresses or consents: nobody is actually contacted, but the target is chosen.
    assert prepared.blocked == {"email consent for marketing not given": prepared.members - prepared.control}


def test_a_budget_goes_to_the_customers_with_the_most_incremental_value(store: Engine, model: TrainedUplift) -> None:
    """A visit is worth 10 and an e-mail costs 0.8: e-mailing everyone loses money (the average uplift, about 6
    points, brings 0.61 per e-mail); the budget goes to the customers whose own uplift pays for the e-mail."""
    plan = contact_plan(store, uplift_model="email-visit", cost=0.8, value_per_response=10.0, budget=2000.0)
    assert plan.contacted == 2500
    assert plan.spend == pytest.approx(2000.0)
    assert plan.everyone == 64_000
    assert plan.everyone_spend == pytest.approx(51_200.0)
    assert plan.expected_incremental > 0 > plan.everyone_incremental
    chosen = plan.customers.filter("contact")
    rest = plan.customers.filter(~plan.customers["contact"])
    assert chosen["uplift"].to_numpy().min() >= rest["uplift"].to_numpy().max()
    unlimited = contact_plan(store, uplift_model="email-visit", cost=0.8, value_per_response=10.0)
    assert unlimited.contacted == sum(1 for u in uplift_scores(store, "email-visit").values() if u * 10 > 0.8)
    assert unlimited.expected_incremental >= plan.expected_incremental


def test_thompson_sampling_replayed_offline_beats_random_arms(store: Engine) -> None:
    replay = replay_campaign(store, "hillstrom-2008", "visit", seed=0)
    assert replay.events == 64_000
    assert replay.ci_low > replay.uniform_rate  # better than the log's own random choice, with its interval
    best = max(replay.arm_rates.values())
    assert replay.ci_low <= best <= replay.ci_high + 0.005  # it approaches always sending the best arm
    assert max(replay.final_share, key=replay.final_share.__getitem__) == "Mens E-Mail"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_the_contacts_page_plans_a_budget_in_the_browser(store: Engine, model: TrainedUplift, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415  (browser tests only)

    create_user(store, "mia", "mia-password-1", "manager")
    with serving(store) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        sign_in_page(page, url, "mia", "mia-password-1")
        page.goto(url + "/strategy/contacts")
        page.fill("input[name=cost]", "0.8")
        page.fill("input[name=budget]", "2000")
        page.fill("input[name=value]", "10")
        page.click("#contacts-form button")
        expect(page.locator("#contact-plan")).to_contain_text("Contact 2,500 customers for 2,000.00")
        expect(page.locator("#contact-plan")).to_contain_text("Contacting everyone (64,000) would cost 51,200.00")
        expect(page.locator("#chart-contacts .plotly")).to_be_visible()
        page.screenshot(path=str(tmp_path / "contacts.png"), full_page=True)
        browser.close()
