"""Thompson sampling over campaign arms: each arm's response rate has a Beta(1 + responders, 1 + non-responders)
posterior; every customer goes to the arm whose sampled rate is highest, so better arms get more of the base while
the others are still tried in proportion to the chance that they are best."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def thompson_allocation(
    arms: Sequence[str], results: Mapping[str, tuple[int, int]], customers: int, *, seed: int = 0
) -> list[str]:
    """An arm for each of ``customers``; ``results`` maps an arm to (members, responders) seen so far."""
    rng = np.random.default_rng(seed)
    successes = np.array([results.get(arm, (0, 0))[1] for arm in arms], dtype=float)
    trials = np.array([results.get(arm, (0, 0))[0] for arm in arms], dtype=float)
    draws = rng.beta(1 + successes, 1 + trials - successes, size=(customers, len(arms)))
    return [arms[index] for index in draws.argmax(axis=1)]
