"""Thompson sampling over campaign arms: each arm's response rate has a Beta(1 + responders, 1 + non-responders)
posterior; every customer goes to the arm whose sampled rate is highest, so better arms get more of the base while
the others are still tried in proportion to the chance that they are best."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from patron.errors import InvalidInputError


def thompson_allocation(
    arms: Sequence[str], results: Mapping[str, tuple[int, int]], customers: int, *, seed: int = 0
) -> list[str]:
    """An arm for each of ``customers``; ``results`` maps an arm to (members, responders) seen so far."""
    rng = np.random.default_rng(seed)
    successes = np.array([results.get(arm, (0, 0))[1] for arm in arms], dtype=float)
    trials = np.array([results.get(arm, (0, 0))[0] for arm in arms], dtype=float)
    draws = rng.beta(1 + successes, 1 + trials - successes, size=(customers, len(arms)))
    return [arms[index] for index in draws.argmax(axis=1)]


@dataclass(frozen=True)
class Replay:
    """A policy judged offline on logged randomised data (Li, Chu, Langford & Wang 2011, "Unbiased offline
    evaluation of contextual-bandit-based news article recommendation algorithms", WSDM): walk the log in a random
    order; where the policy picks the arm the log shows, the event counts (its reward is what the policy would have
    got) and the policy learns from it; other events are skipped. Unbiased when the log's arms were drawn uniformly."""

    events: int
    accepted: float  # events per replay the policy could be judged on (about events / arms)
    reward_rate: float  # the policy's response rate, mean over the replays
    ci_low: float  # 95 %: the binomial error of the accepted events and the spread between replay orders
    ci_high: float
    uniform_rate: float  # choosing an arm at random (the log's own policy)
    arm_rates: dict[str, float]  # each arm always: the best is what a perfect policy would approach
    final_share: dict[str, float]  # how the policy split its last wave: where it settled


def replay_thompson(
    logged_arms: Sequence[str], rewards: Sequence[int], *, seed: int = 0, replays: int = 20, wave: int = 500
) -> Replay:
    """Replay Thompson sampling over the log, updating its posteriors after each wave of ``wave`` events (as
    Patron's bandit campaigns allocate in waves)."""
    arms = sorted(set(logged_arms))
    logged = np.array([arms.index(arm) for arm in logged_arms])
    reward = np.asarray(rewards, dtype=float)
    counts = np.bincount(logged, minlength=len(arms))
    if len(arms) < 2 or counts.min() == 0:
        raise InvalidInputError("a replay needs a log with at least two arms, each with events", field="campaign")
    shares = counts / counts.sum()
    if shares.max() - shares.min() > 0.1:
        raise InvalidInputError(
            "the log's arms were not drawn with equal chances (shares "
            + ", ".join(f"{arm} {share:.0%}" for arm, share in zip(arms, shares, strict=True))
            + "): a replay would be biased",
            field="campaign",
        )
    rng = np.random.default_rng(seed)
    rates, accepted, last_share = [], [], np.zeros(len(arms))
    for _ in range(replays):
        order = rng.permutation(len(logged))
        successes, trials = np.zeros(len(arms)), np.zeros(len(arms))
        got = taken = 0.0
        for start in range(0, len(order), wave):
            events = order[start : start + wave]
            draws = rng.beta(1 + successes, 1 + trials - successes, size=(len(events), len(arms)))
            chosen = draws.argmax(axis=1)
            match = chosen == logged[events]
            hits = reward[events][match]
            got, taken = got + hits.sum(), taken + match.sum()
            np.add.at(trials, chosen[match], 1)
            np.add.at(successes, chosen[match], hits)
        last_share += np.bincount(chosen, minlength=len(arms)) / len(chosen) / replays
        rates.append(got / taken)
        accepted.append(taken)
    rate, spread = float(np.mean(rates)), float(np.var(rates))
    error = math.sqrt(rate * (1 - rate) / float(np.mean(accepted)) + spread)
    arm_rates = {arm: float(reward[logged == i].mean()) for i, arm in enumerate(arms)}
    return Replay(
        len(logged), float(np.mean(accepted)), rate, rate - 1.96 * error, rate + 1.96 * error,
        float(np.mean(list(arm_rates.values()))), arm_rates, dict(zip(arms, last_share.tolist(), strict=True)),
    )  # fmt: skip
