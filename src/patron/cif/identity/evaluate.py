"""Pairwise precision, recall and F1 of a de-duplication against known truth (labelled data, benchmarks)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PairwiseQuality:
    true_pairs: int
    found_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.found_pairs if self.found_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def _pairs(sizes: Counter[Any]) -> int:
    return sum(n * (n - 1) // 2 for n in sizes.values())


def pairwise_quality(found: Mapping[Any, Any], truth: Mapping[Any, Any]) -> PairwiseQuality:
    """``found`` and ``truth`` map each record to its cluster (customer) and its true entity; a pair of records is
    found when they share a cluster, true when they share an entity. Counted from cluster sizes, never pair lists."""
    records = found.keys() & truth.keys()
    both = Counter((found[r], truth[r]) for r in records)
    return PairwiseQuality(
        true_pairs=_pairs(Counter(truth[r] for r in records)),
        found_pairs=_pairs(Counter(found[r] for r in records)),
        correct_pairs=_pairs(both),
    )
