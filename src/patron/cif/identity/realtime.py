"""Real-time matching: records that just arrived (an import batch, an API call) against the stored file.

Each arriving record's blocking keys are looked up in ``match_keys`` (an index lookup, whatever the size of the
file), the candidates are scored in Python with the stored model's weights (``model.Scorer``), and in the same
transaction the record is joined to its best match (a merge into the older record), sent to review, or kept as a
new customer whose keys are stored for the next arrival.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from patron.cif import schema as s
from patron.cif.identity import records as person
from patron.cif.identity.comparisons import agreed_fields, blocking_keys
from patron.cif.identity.merge import Evidence, merge_clusters
from patron.cif.identity.model import Score
from patron.cif.identity.resolve import REVIEWS, StoredModel, Thresholds, latest_model, review_row
from patron.cif.identity.schema import MatchKey
from patron.cif.sealed import keyed_digest
from patron.cif.writers.state import chunks
from patron.errors import InvalidInputError

KEYS = s.table_of(MatchKey)
MAX_CANDIDATES = 200  # per arriving record: the ones sharing most keys (a key shared by thousands is a weak one)


@dataclass(frozen=True)
class Decision:
    customer_id: int
    outcome: str  # joined, review, created
    other_id: int | None = None  # the customer joined, or the pair's other side in review
    score: Score | None = None  # of the pair with ``other_id``

    @property
    def probability(self) -> float | None:
        return None if self.score is None else self.score.probability

    @property
    def weight(self) -> float | None:
        return None if self.score is None else self.score.weight

    @property
    def agreed(self) -> tuple[str, ...]:
        return () if self.score is None else tuple(agreed_fields(self.score.levels))


def decided(customer_id: int, match: tuple[int, Score] | None, thresholds: Thresholds) -> Decision:
    """Joined at or above the match threshold, review from the review threshold, else a new customer."""
    if match is None or match[1].probability < thresholds.review:
        return Decision(customer_id, "created")
    other, score = match
    return Decision(customer_id, "joined" if score.probability >= thresholds.match else "review", other, score)


def best_matches(
    conn: Connection, records: Sequence[dict[str, Any]], stored: StoredModel
) -> dict[int, tuple[int, Score] | None]:
    """For each record, its best-scoring stored candidate (other than itself) and the score, or None."""
    wanted = {r["customer_id"]: [keyed_digest(key) for key in blocking_keys(r)] for r in records}
    holders: dict[int, list[int]] = {}
    every = sorted({key for keys in wanted.values() for key in keys})
    for chunk in chunks(every):
        for row in conn.execute(select(KEYS.c.key, KEYS.c.customer_id).where(KEYS.c.key.in_(chunk))):
            holders.setdefault(row.key, []).append(row.customer_id)
    candidates: dict[int, list[int]] = {}
    for customer_id, keys in wanted.items():
        shared: dict[int, int] = {}
        for key in keys:
            for other in holders.get(key, []):
                if other != customer_id:
                    shared[other] = shared.get(other, 0) + 1
        ranked = sorted(shared, key=lambda other: (-shared[other], other))
        candidates[customer_id] = ranked[:MAX_CANDIDATES]
    others = {
        r["customer_id"]: r for r in person.person_records(conn, sorted({i for c in candidates.values() for i in c}))
    }
    scorer = stored.scorer
    found: dict[int, tuple[int, Score] | None] = {}
    for record in records:
        scored = [(other, scorer.score(record, others[other])) for other in candidates[record["customer_id"]]
                  if other in others]  # fmt: skip
        found[record["customer_id"]] = max(scored, key=lambda pair: (pair[1].weight, -pair[0]), default=None)
    return found


def match_arrivals(
    conn: Connection, customer_ids: Sequence[int], *, actor: str, interface: str, stored: StoredModel | None = None
) -> list[Decision]:
    """Join, send to review or keep each arriving customer, in the caller's transaction. Without a trained model
    (``patron identity train``) nothing is matched (training stores every record's keys)."""
    stored = stored or latest_model(conn)
    if stored is None:
        return [Decision(i, "created") for i in customer_ids]  # keys are stored when a model is trained
    records = [r for r in person.person_records(conn, customer_ids) if person.is_matchable(r)]
    if not records:
        return []
    best = best_matches(conn, records, stored)
    decisions = [decided(r["customer_id"], best[r["customer_id"]], stored.thresholds) for r in records]
    person.refresh_keys(conn, [r for r, d in zip(records, decisions, strict=True) if d.outcome != "joined"])
    merged = _apply(conn, decisions, actor=actor, interface=interface)
    return [d if d.outcome != "joined" or d.customer_id in merged else Decision(d.customer_id, "created")
            for d in decisions]  # fmt: skip


def _apply(conn: Connection, decisions: list[Decision], *, actor: str, interface: str) -> set[int]:
    """Merge the joined (each arrival into its match) and queue the reviews; the arrivals actually merged."""
    taken: set[int] = set()
    clusters, evidence = [], {}
    for d in decisions:
        if d.outcome != "joined" or d.other_id is None:
            continue
        if d.other_id in taken or d.customer_id in taken:
            continue  # two arrivals matching each other's partner: the batch run settles what is left
        taken |= {d.customer_id, d.other_id}
        clusters.append([d.customer_id, d.other_id])
        evidence[max(d.customer_id, d.other_id)] = Evidence(d.probability, d.weight, d.agreed, "realtime")
    merges = merge_clusters(conn, clusters, evidence, actor=actor, interface=interface)
    reviews = [
        review_row(d.customer_id, d.other_id, d.score.probability, d.score.weight, d.score.levels)
        for d in decisions
        if d.outcome == "review" and d.other_id is not None and d.score is not None
    ]
    if reviews:
        conn.execute(insert(REVIEWS), reviews)
    return {m.merged_id for m in merges} | {m.survivor_id for m in merges}


def match_record(conn: Connection, record: dict[str, Any]) -> Decision:
    """What would happen to this record if it arrived now (nothing is written): the best stored match."""
    normalised = {"customer_id": -1, **person.person(record)}
    if not person.is_matchable(normalised):
        raise InvalidInputError(
            "every field identity matching uses is empty (names, birth date, e-mail, phone, address)", field="record"
        )
    stored = latest_model(conn)
    if stored is None:
        raise InvalidInputError("no match model yet: run `patron identity train` first", field="model")
    return decided(-1, best_matches(conn, [normalised], stored)[-1], stored.thresholds)
