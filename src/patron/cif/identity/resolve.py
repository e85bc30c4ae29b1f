"""The batch run: train (or reuse) the model, score the pairs, merge the clusters, queue the review band."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, func, insert, select

from patron.cif import schema as s
from patron.cif.identity import model as fs
from patron.cif.identity import records as person
from patron.cif.identity.comparisons import FIELDS, agreed_fields, level_label
from patron.cif.identity.merge import Evidence, Merge, merge_clusters
from patron.cif.identity.schema import MatchModel, MatchReview
from patron.errors import InvalidInputError
from patron.settings import get_settings

MODELS = s.table_of(MatchModel)
C = s.table_of(s.Customer)
REVIEWS = s.table_of(MatchReview)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Thresholds:
    match: float
    review: float

    @classmethod
    def chosen(cls, match: float | None = None, review: float | None = None) -> Thresholds:
        settings = get_settings()
        found = cls(settings.match_threshold if match is None else match,
                    settings.review_threshold if review is None else review)  # fmt: skip
        if not 0 < found.review <= found.match < 1:
            raise InvalidInputError(
                f"thresholds must satisfy 0 < review ({found.review}) <= match ({found.match}) < 1", field="threshold"
            )
        return found


@dataclass(frozen=True)
class StoredModel:
    id: int
    splink: dict[str, Any]
    thresholds: Thresholds
    notes: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def scorer(self) -> fs.Scorer:
        return fs.Scorer(self.splink)


@dataclass
class LinkResult:
    records: int
    pairs: int
    clusters: int
    merged: int
    reviews: int
    model_id: int
    thresholds: Thresholds
    trained: bool
    merges: list[int] = field(default_factory=list)


_MODELS_READ: dict[tuple[str, int, Any], StoredModel] = {}


def latest_model(conn: Connection) -> StoredModel | None:
    """The newest model; its weights are read once per store and model (every arriving record asks for them)."""
    newest = conn.execute(select(MODELS.c.id, MODELS.c.trained_at).order_by(MODELS.c.id.desc()).limit(1)).first()
    if newest is None:
        return None
    key = (conn.engine.url.render_as_string(), int(newest.id), newest.trained_at)  # a process may open several stores
    if key not in _MODELS_READ:
        row = conn.execute(select(MODELS).where(MODELS.c.id == newest.id)).mappings().one()
        thresholds = Thresholds(row["match_threshold"], row["review_threshold"])
        if len(_MODELS_READ) >= 8:
            _MODELS_READ.clear()
        _MODELS_READ[key] = StoredModel(int(row["id"]), row["splink_model"], thresholds, row["notes"])
    return _MODELS_READ[key]


def _labels(conn: Connection) -> pl.DataFrame:
    decided = conn.execute(
        select(REVIEWS.c.left_id, REVIEWS.c.right_id, REVIEWS.c.status).where(REVIEWS.c.status != "open")
    ).all()
    return pl.DataFrame(
        {"customer_id_l": [r.left_id for r in decided], "customer_id_r": [r.right_id for r in decided],
         "clerical_match_score": [1.0 if r.status == "accepted" else 0.0 for r in decided]},
        schema={"customer_id_l": pl.Int64, "customer_id_r": pl.Int64, "clerical_match_score": pl.Float64},
    )  # fmt: skip


def train_model(
    engine: Engine, thresholds: Thresholds, *, seed: int = fs.SEED, keys: bool = True,
    open_records: pl.DataFrame | None = None,
) -> StoredModel:  # fmt: skip
    """Train on every record but the erased (the merged ones show what duplicates look like) and the review
    decisions taken so far; store the model and (unless ``keys`` is False) every open record's blocking keys.
    ``open_records``: the open records, where the caller has read them already."""
    with engine.connect() as conn:
        labels = _labels(conn)
        merged = conn.scalar(select(func.count()).select_from(C).where(C.c.status == "merged"))
        records = person.matchable(person.person_frame(conn)) if open_records is None else open_records
        everyone = person.matchable(person.person_frame(conn, with_merged=True)) if merged else records
    frame = person.record_frame(everyone)
    splink = fs.train(frame, labels=labels, seed=seed)
    confirmed = int(labels["clerical_match_score"].sum())
    notes = {
        "seed": seed, "records": frame.height, "labelled_pairs": labels.height, "confirmed_matches": confirmed,
        "labels_used": confirmed >= fs.MIN_LABELLED_MATCHES,
        "fields_without_data": [f for f in FIELDS if frame.height and frame[f].null_count() == frame.height],
    }  # fmt: skip
    with engine.begin() as conn:
        if keys:
            person.rebuild_keys(conn, records)
        model_id = conn.execute(insert(MODELS).values(
            records=frame.height, match_threshold=thresholds.match, review_threshold=thresholds.review,
            splink_model=splink, notes=notes,
        ).returning(MODELS.c.id)).scalar_one()  # fmt: skip
    return StoredModel(int(model_id), splink, thresholds, notes)


def link(
    engine: Engine, *, thresholds: Thresholds | None = None, retrain: bool = False, actor: str, interface: str = "cli",
    progress: Progress | None = None,
) -> LinkResult:  # fmt: skip
    """De-duplicate the whole file: pairs at or above the match threshold merge, the review band is queued."""
    say = progress or (lambda _: None)
    chosen = thresholds or Thresholds.chosen()
    say("reading the records")
    with engine.connect() as conn:
        stored = None if retrain else latest_model(conn)
        records = person.matchable(person.person_frame(conn))
    trained = stored is None
    if stored is None:
        say("training the match model")
        stored = train_model(engine, chosen, keys=False, open_records=records)  # keys: once, after the merges
    frame = person.record_frame(records)
    say(f"scoring the pairs of {frame.height:,} records")
    pairs = fs.predict(frame, stored.splink, threshold=chosen.review)
    groups = fs.clusters(pairs, threshold=chosen.match)
    evidence = _evidence(pairs, groups, records, stored.scorer)
    say(f"merging {len(groups):,} clusters")
    with engine.begin() as conn:
        merges = merge_clusters(conn, groups, evidence, actor=actor, interface=interface, keys=not trained)
        reviews = queue_reviews(conn, pairs, groups, stored=stored, thresholds=chosen)
        say("storing the blocking keys")
        if trained:
            person.rebuild_keys(conn, _after_merges(conn, records, merges))
        else:
            person.refresh_missing_keys(conn, person.person_frame(conn))
    return LinkResult(
        records=frame.height, pairs=pairs.height, clusters=len(groups), merged=len(merges), reviews=reviews,
        model_id=stored.id, thresholds=chosen, trained=trained, merges=[m.merge_id for m in merges],
    )  # fmt: skip


def _after_merges(conn: Connection, records: pl.DataFrame, merges: list[Merge]) -> pl.DataFrame:
    """The open records once merged: the merged ones gone, the survivors read again (their profile may be filled)."""
    survivors = sorted({m.survivor_id for m in merges})
    gone = pl.Series([*survivors, *(m.merged_id for m in merges)], dtype=pl.Int64)
    kept = records.filter(~pl.col("customer_id").is_in(gone))
    return pl.concat([kept, person.person_frame(conn, survivors)]).sort("customer_id")


def _evidence(
    pairs: pl.DataFrame, groups: list[list[int]], frame: pl.DataFrame, scorer: fs.Scorer
) -> dict[int, Evidence]:
    """Per merged record, its strongest pair inside its cluster: the match weight and the fields that agreed."""
    cluster_of = {i: n for n, group in enumerate(groups) for i in group}
    wanted = pl.Series(list(cluster_of), dtype=pl.Int64)
    records = {r["customer_id"]: r for r in frame.filter(pl.col("customer_id").is_in(wanted)).to_dicts()}
    found: dict[int, Evidence] = {}
    for row in pairs.sort("match_weight", descending=True).iter_rows(named=True):
        left, right = row["customer_id_l"], row["customer_id_r"]
        if left not in cluster_of or cluster_of[left] != cluster_of.get(right):
            continue
        for side, other in ((left, right), (right, left)):
            if side != min(groups[cluster_of[side]]) and side not in found:
                score = scorer.score(records[side], records[other])
                found[side] = Evidence(row["match_probability"], row["match_weight"],
                                       tuple(agreed_fields(score.levels)), "batch")  # fmt: skip
    return found


def review_row(first: int, second: int, probability: float, weight: float, levels: dict[str, int]) -> dict[str, Any]:
    """An open review of a pair (the lower id on the left), with each field's comparison level by name."""
    left, right = sorted((first, second))
    return {"left_id": left, "right_id": right, "match_probability": probability, "match_weight": weight,
            "status": "open", "levels": {f: level_label(f, i) for f, i in levels.items()}}  # fmt: skip


def queue_reviews(
    conn: Connection, pairs: pl.DataFrame, groups: list[list[int]], *, stored: StoredModel, thresholds: Thresholds,
) -> int:  # fmt: skip
    """Pairs in the review band whose records did not end up in one cluster, as the records that stay open (a
    merged record by its survivor), the likeliest pair first; a pair already queued stays as it is."""
    survivor = {i: min(group) for group in groups for i in group}  # a merged record is reviewed as its survivor
    band = pairs.filter(pl.col("match_probability") < thresholds.match).sort("match_probability", descending=True)
    in_band = {survivor.get(i, i) for i in band["customer_id_l"].to_list() + band["customer_id_r"].to_list()}
    by_id = {r["customer_id"]: r for r in person.person_records(conn, sorted(in_band))}
    scorer = stored.scorer
    queued = {(r.left_id, r.right_id) for r in conn.execute(select(REVIEWS.c.left_id, REVIEWS.c.right_id))}
    rows = []
    for row in band.iter_rows(named=True):
        left, right = sorted((survivor.get(row["customer_id_l"], row["customer_id_l"]),
                              survivor.get(row["customer_id_r"], row["customer_id_r"])))  # fmt: skip
        if left == right or (left, right) in queued:
            continue
        queued.add((left, right))
        levels = scorer.score(by_id[left], by_id[right]).levels
        rows.append(review_row(left, right, row["match_probability"], row["match_weight"], levels))
    if rows:
        conn.execute(insert(REVIEWS), rows)
    return len(rows)
