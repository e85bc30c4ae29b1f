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
from patron.cif.identity.comparisons import agreed_fields, blocking_keys, level_label
from patron.cif.identity.merge import Evidence, merge_clusters
from patron.cif.identity.resolve import REVIEWS, StoredModel, latest_model
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
    probability: float | None = None
    weight: float | None = None
    agreed: tuple[str, ...] = ()


def best_matches(
    conn: Connection, records: Sequence[dict[str, Any]], stored: StoredModel
) -> dict[int, tuple[int, Any] | None]:
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
    found: dict[int, tuple[int, Any] | None] = {}
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
    decisions = []
    for record in records:
        customer_id, match = record["customer_id"], best[record["customer_id"]]
        if match is None or match[1].probability < stored.thresholds.review:
            decisions.append(Decision(customer_id, "created"))
            continue
        other, score = match
        outcome = "joined" if score.probability >= stored.thresholds.match else "review"
        decisions.append(Decision(customer_id, outcome, other, score.probability, score.weight,
                                  tuple(agreed_fields(score.levels))))  # fmt: skip
    person.refresh_keys(conn, [r for r, d in zip(records, decisions, strict=True) if d.outcome != "joined"])
    merged = _apply(conn, decisions, {r["customer_id"]: r for r in records}, stored, actor=actor, interface=interface)
    return [d if d.outcome != "joined" or d.customer_id in merged else Decision(d.customer_id, "created")
            for d in decisions]  # fmt: skip


def _apply(
    conn: Connection, decisions: list[Decision], records: dict[int, dict[str, Any]], stored: StoredModel, *,
    actor: str, interface: str,
) -> set[int]:  # fmt: skip
    """Merge the joined (each arrival into its match) and queue the reviews; the arrivals actually merged."""
    joined = [d for d in decisions if d.outcome == "joined"]
    taken: set[int] = set()
    clusters, evidence = [], {}
    for d in joined:
        assert d.other_id is not None
        if d.other_id in taken or d.customer_id in taken:
            continue  # two arrivals matching each other's partner: the batch run settles what is left
        taken |= {d.customer_id, d.other_id}
        clusters.append([d.customer_id, d.other_id])
        evidence[max(d.customer_id, d.other_id)] = Evidence(d.probability, d.weight, d.agreed, "realtime")
    merges = merge_clusters(conn, clusters, evidence, actor=actor, interface=interface)
    reviews = [d for d in decisions if d.outcome == "review"]
    if reviews:
        scorer = stored.scorer
        others = {r["customer_id"]: r for r in person.person_records(conn, [d.other_id for d in reviews if d.other_id])}
        rows = []
        for d in reviews:
            assert d.other_id is not None
            assert d.probability is not None
            assert d.weight is not None
            left, right = sorted((d.customer_id, d.other_id))
            levels = scorer.score(records[d.customer_id], others[d.other_id]).levels
            rows.append({"left_id": left, "right_id": right, "match_probability": d.probability,
                         "match_weight": d.weight, "status": "open",
                         "levels": {f: level_label(f, i) for f, i in levels.items()}})  # fmt: skip
        conn.execute(insert(REVIEWS), rows)
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
    match = best_matches(conn, [normalised], stored)[-1]
    if match is None or match[1].probability < stored.thresholds.review:
        return Decision(-1, "created")
    other, score = match
    outcome = "joined" if score.probability >= stored.thresholds.match else "review"
    return Decision(-1, outcome, other, score.probability, score.weight, tuple(agreed_fields(score.levels)))
