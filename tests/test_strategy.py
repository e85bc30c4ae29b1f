"""Strategy analytics checked against answers known in closed form or by hand."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import polars as pl
import pytest
from scipy.special import expit

from patron.errors import InvalidInputError
from patron.strategy.budget import EquityInputs, ResponseCurve, allocate, best_split, customer_equity, what_if
from patron.strategy.network import communities, high_value_clusters, value_assortativity
from patron.strategy.portfolio import best_for_risk, efficient_frontier, minimum_variance
from patron.strategy.pricing import deal_proneness, discount_response, recommend_discount


def test_two_concave_curves_split_the_budget_where_their_marginal_returns_meet() -> None:
    first, second = ResponseCurve(0.4, 0.05), ResponseCurve(0.8, 0.02)
    weights = (1000.0, 600.0)
    budget = 120.0
    spends = allocate([(weights[0], first), (weights[1], second)], budget)
    # Closed form (both funded): ln λ = (Σ ln(w c k)/k − B) / Σ 1/k, x = (ln(w c k) − ln λ) / k.
    peaks = [weights[0] * 0.4 * 0.05, weights[1] * 0.8 * 0.02]
    ks = [0.05, 0.02]
    log_lambda = (sum(math.log(p) / k for p, k in zip(peaks, ks, strict=True)) - budget) / sum(1 / k for k in ks)
    expected = [(math.log(p) - log_lambda) / k for p, k in zip(peaks, ks, strict=True)]
    assert spends == pytest.approx(expected, rel=1e-9)
    assert sum(spends) == pytest.approx(budget)
    assert weights[0] * first.marginal(spends[0]) == pytest.approx(weights[1] * second.marginal(spends[1]))


def test_a_curve_not_worth_funding_gets_nothing() -> None:
    strong, weak = ResponseCurve(0.9, 0.1), ResponseCurve(0.05, 0.01)
    spends = allocate([(1.0, strong), (1.0, weak)], 5.0)
    assert spends[1] == 0.0
    assert spends[0] == pytest.approx(5.0)


def test_response_curves_fitted_from_points_recover_the_curve() -> None:
    truth = ResponseCurve(0.35, 0.04)
    spend = np.array([0, 5, 10, 20, 40, 60, 90, 120.0])
    fitted = ResponseCurve.fit(spend, truth.rate(spend))  # type: ignore[arg-type]
    assert fitted.ceiling == pytest.approx(0.35, rel=1e-6)
    assert fitted.k == pytest.approx(0.04, rel=1e-6)
    with pytest.raises(InvalidInputError, match="three"):
        ResponseCurve.fit([1, 2], [0.1, 0.2])


def test_customer_equity_by_hand_and_the_best_split_beats_every_other() -> None:
    inputs = EquityInputs(
        prospects=10_000, customers=2_000, margin=100.0, discount_rate=0.1,
        acquisition=ResponseCurve(0.2, 0.05), retention=ResponseCurve(0.8, 0.05),
    )  # fmt: skip
    a, r = 0.2 * (1 - math.exp(-0.05 * 10)), 0.8 * (1 - math.exp(-0.05 * 20))
    by_hand = 10_000 * (a * (100 + (100 - 20) * r / (1.1 - r)) - 10) + 2_000 * (100 - 20) * 1.1 / (1.1 - r)
    assert customer_equity(inputs, 10.0, 20.0) == pytest.approx(by_hand)

    best = best_split(inputs, 150_000.0)
    for share in np.linspace(0, 1, 1001):
        other = customer_equity(inputs, share * 150_000 / 10_000, (1 - share) * 150_000 / 2_000)
        assert best.equity >= other - 1e-6
    assert best.acquisition_per_prospect * 10_000 + best.retention_per_customer * 2_000 == pytest.approx(150_000)
    table = what_if(inputs, 150_000.0)
    assert [row.budget for row in table] == pytest.approx([75_000, 112_500, 150_000, 187_500, 225_000])


def test_the_two_segment_frontier_matches_the_textbook_formulas() -> None:
    mu = np.array([0.10, 0.20])
    sd = np.array([0.10, 0.30])
    rho = 0.2
    cov = np.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])
    # Minimum variance: w1 = (σ2² − σ12) / (σ1² + σ2² − 2σ12).
    w1 = (cov[1, 1] - cov[0, 1]) / (cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    frontier = efficient_frontier(["low", "high"], mu, cov, points=11)
    assert frontier[0].weights["low"] == pytest.approx(w1, abs=1e-6)
    assert frontier[0].risk == pytest.approx(
        math.sqrt(w1**2 * cov[0, 0] + (1 - w1) ** 2 * cov[1, 1] + 2 * w1 * (1 - w1) * cov[0, 1]), rel=1e-6
    )
    # With two assets the target return fixes the weights: w1 = (μ2 − R) / (μ2 − μ1).
    target = 0.16
    weights = minimum_variance(mu, cov, target)
    assert weights[0] == pytest.approx((0.20 - target) / 0.10, abs=1e-7)
    assert [p.risk for p in frontier] == sorted(p.risk for p in frontier)
    assert frontier[-1].weights["high"] == pytest.approx(1.0, abs=1e-6)
    chosen = best_for_risk(frontier, 0.2)
    assert chosen.risk <= 0.2
    assert chosen.expected == max(p.expected for p in frontier if p.risk <= 0.2)


def test_with_short_positions_the_frontier_is_mertons_closed_form() -> None:
    rng = np.random.default_rng(3)
    factors = rng.normal(size=(40, 3))
    cov = np.cov(factors, rowvar=False) + np.eye(3) * 0.1
    mu = np.array([0.05, 0.08, 0.12])
    inverse = np.linalg.inv(cov)
    ones = np.ones(3)
    a, b, c = ones @ inverse @ ones, ones @ inverse @ mu, mu @ inverse @ mu
    for target in (0.06, 0.1, 0.15):
        weights = minimum_variance(mu, cov, target, long_only=False)
        assert weights.sum() == pytest.approx(1.0)
        assert weights @ mu == pytest.approx(target)
        assert weights @ cov @ weights == pytest.approx((a * target**2 - 2 * b * target + c) / (a * c - b * b))


def test_assortativity_on_constructed_graphs() -> None:
    two_cliques = nx.disjoint_union(nx.complete_graph(4), nx.complete_graph(4))
    values = {node: (10.0 if node < 4 else 1.0) for node in two_cliques}
    assert value_assortativity(two_cliques, values) == pytest.approx(1.0)
    bipartite = nx.complete_bipartite_graph(3, 3)
    assert value_assortativity(bipartite, {node: (5.0 if node < 3 else 1.0) for node in bipartite}) == pytest.approx(
        -1.0
    )
    # A path 0-1-2 with values 1, 2, 3: the ends pair (1,2) and (2,3) both ways; the covariance is 0 by hand.
    assert value_assortativity(nx.path_graph(3), {0: 1.0, 1: 2.0, 2: 3.0}) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(InvalidInputError, match="two links"):
        value_assortativity(nx.path_graph(2), {0: 1.0, 1: 2.0})


def test_two_cliques_joined_by_one_link_are_two_communities_ranked_by_value() -> None:
    graph = nx.disjoint_union(nx.complete_graph(5), nx.complete_graph(5))
    graph.add_edge(4, 5)
    found = communities(graph)
    assert sorted(map(sorted, found)) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    values = {node: (100.0 if node >= 5 else 10.0) for node in graph}
    clusters = high_value_clusters(found, values)
    assert clusters["total_value"].to_list() == [500.0, 50.0]
    assert clusters["members"][0].to_list() == [5, 6, 7, 8, 9]


def test_deal_shares_are_shrunk_towards_the_segment_the_less_the_more_a_customer_bought() -> None:
    rng = np.random.default_rng(11)
    purchases = np.concatenate([np.full(200, 40), np.full(200, 3)])
    true_share = rng.beta(4, 6, size=400)
    deals = rng.binomial(purchases, true_share)
    frame = pl.DataFrame({"customer_id": range(400), "segment": ["all"] * 400, "deals": deals, "purchases": purchases})
    customers, segments = deal_proneness(frame)
    prior = segments.row(0, named=True)
    shrink = (customers["shrunk_share"] - customers["raw_share"]).abs()
    assert float(shrink.head(200).mean()) < float(shrink.tail(200).mean())  # type: ignore[arg-type]
    # Shrinking brings the few-purchase customers closer to their true shares than their raw shares are.
    few = customers.tail(200)
    raw_error = float(np.mean((few["raw_share"].to_numpy() - true_share[200:]) ** 2))
    shrunk_error = float(np.mean((few["shrunk_share"].to_numpy() - true_share[200:]) ** 2))
    assert shrunk_error < raw_error
    assert prior["low"] < 0.4 < prior["high"]  # the Beta(4, 6) mean lies in the interval
    assert 5 < prior["prior_strength"] < 20  # α + β = 10 in truth


def test_discount_response_recovers_the_curve_and_the_advice_meets_the_first_order_condition() -> None:
    rng = np.random.default_rng(5)
    discounts = np.array([0.0, 5.0, 10.0, 15.0, 20.0])
    rows = []
    for segment, (alpha, beta) in {"young": (-3.0, 0.12), "loyal": (-2.0, 0.03)}.items():
        for d in discounts:
            responded = int(rng.binomial(20_000, expit(alpha + beta * d)))
            rows.append({"segment": segment, "discount": d, "offered": 20_000, "responded": responded})
    curves = {curve.segment: curve for curve in discount_response(pl.DataFrame(rows))}
    young = curves["young"]
    assert abs(young.slope - 0.12) < 3 * math.sqrt(young.covariance[1, 1])
    assert abs(young.intercept + 3.0) < 3 * math.sqrt(young.covariance[0, 0])
    advice = recommend_discount(young, margin=25.0, steps=4001)  # optimum inside the tried 0-20
    p = float(young.probability(advice.discount))
    # d/dd (m − d)·p(d) = 0  ⇔  (m − d)·β·(1 − p) = 1
    assert 0 < advice.discount < 20
    assert (25.0 - advice.discount) * young.slope_shrunk * (1 - p) == pytest.approx(1.0, abs=0.01)
    assert advice.low <= advice.discount <= advice.high
    assert recommend_discount(curves["loyal"], margin=25.0).discount < advice.discount  # less sensitive, less discount


def test_segments_with_the_same_true_slope_are_pooled() -> None:
    rows = [
        {"segment": name, "discount": d, "offered": 1000, "responded": int(1000 * expit(-2 + 0.05 * d))}
        for name in ("a", "b", "c")
        for d in (0.0, 10.0, 20.0)
    ]
    curves = discount_response(pl.DataFrame(rows))
    assert len({round(curve.slope_shrunk, 12) for curve in curves}) == 1
    with pytest.raises(InvalidInputError, match="two discount levels"):
        discount_response(pl.DataFrame([{"segment": "x", "discount": 5.0, "offered": 10, "responded": 1}]))


def test_a_real_shops_tiers_give_a_whole_long_only_frontier() -> None:
    """Online Retail II 2009-2010's A/B/C tiers: margins in money (variances in the thousands) made SLSQP stop
    short ("positive directional derivative") on 92 of 200 targets, and the portfolio page refused."""
    mu = np.array([158.32172768694693, 26.415282388664007, 11.202333714612543])
    cov = np.array(
        [
            [2376.171248579292, 638.4118124492941, 93.59619800932921],
            [638.4118124492941, 186.8157543005705, 20.3465843589168],
            [93.59619800932921, 20.3465843589168, 19.686243281898033],
        ]
    )
    for target in np.linspace(mu.min(), mu.max(), 200):
        weights = minimum_variance(mu, cov, float(target))
        assert weights.sum() == pytest.approx(1.0, abs=1e-6)
        assert weights @ mu == pytest.approx(target, rel=1e-6)
    frontier = efficient_frontier(["A", "B", "C"], mu, cov)
    assert frontier[-1].weights["A"] == pytest.approx(1.0, abs=1e-6)
    assert [p.risk for p in frontier] == sorted(p.risk for p in frontier)
