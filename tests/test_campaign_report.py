"""The Hillstrom e-mail test loaded as a campaign: the report reproduces its uplift per arm from the raw file."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from patron.engage.report import campaign_report
from patron.errors import NotFoundError
from tests.conftest import SHARED_DATA, demo_store, needs

HILLSTROM = SHARED_DATA / "hillstrom-email" / "hillstrom.csv"
pytestmark = [pytest.mark.slow, needs(HILLSTROM), pytest.mark.xdist_group("hillstrom-report")]  # one store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    yield from demo_store(tmp_path_factory, "hillstrom-email")


def raw_rates(kind: str) -> dict[str, tuple[int, int, float]]:
    """Per segment: members, responders, spend — straight from the CSV."""
    members: dict[str, int] = defaultdict(int)
    responders: dict[str, int] = defaultdict(int)
    spend: dict[str, float] = defaultdict(float)
    with HILLSTROM.open(newline="") as handle:
        for row in csv.DictReader(handle):
            members[row["segment"]] += 1
            responders[row["segment"]] += int(row[kind])
            if kind == "conversion":
                spend[row["segment"]] += float(row["spend"])
    return {segment: (members[segment], responders[segment], spend[segment]) for segment in members}


@pytest.mark.parametrize("kind", ["visit", "conversion"])
def test_report_reproduces_the_uplift_of_each_arm(store: Engine, kind: str) -> None:
    raw = raw_rates(kind)
    n0, r0, _ = raw["No E-Mail"]
    report = campaign_report(store, "hillstrom-2008", kind)
    arms = {arm.arm: arm for arm in report.arms}
    assert set(arms) == set(raw)
    assert arms["No E-Mail"].is_control
    for segment in ("Mens E-Mail", "Womens E-Mail"):
        n1, r1, spend = raw[segment]
        arm = arms[segment]
        assert (arm.members, arm.responders) == (n1, r1)
        assert arm.uplift is not None
        assert arm.ci_low is not None
        assert arm.uplift == pytest.approx(r1 / n1 - r0 / n0, abs=1e-12)
        half = 1.959964 * math.sqrt((r1 / n1) * (1 - r1 / n1) / n1 + (r0 / n0) * (1 - r0 / n0) / n0)
        assert arm.ci_low == pytest.approx(arm.uplift - half, rel=1e-5)
        assert arm.ci_high == pytest.approx(arm.uplift + half, rel=1e-5)
        assert arm.ci_low > 0  # both e-mails raised visits and conversions in this test
        assert arm.p_value is not None
        assert arm.p_value < 0.001
        if kind == "conversion":
            assert arm.value_per_member == pytest.approx(spend / n1, abs=0.01)
    mens, womens = arms["Mens E-Mail"], arms["Womens E-Mail"]
    assert mens.uplift is not None
    assert womens.uplift is not None
    assert mens.uplift > womens.uplift  # the published finding: the men's e-mail did better


def test_roi_and_unknown_campaign(store: Engine) -> None:
    report = campaign_report(store, "hillstrom-2008", "conversion", contact_cost=0.10, margin_rate=0.5)
    mens = next(arm for arm in report.arms if arm.arm == "Mens E-Mail")
    assert mens.roi is not None
    assert mens.roi > 0
    with pytest.raises(NotFoundError, match="no campaign 'nope'"):
        campaign_report(store, "nope", "visit")
