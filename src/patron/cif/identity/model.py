"""The Fellegi-Sunter match model, trained and applied with Splink on its embedded DuckDB backend.

Training (``train``): the prior probability that two records match is estimated from a strict deterministic rule,
the u probabilities (how often a level occurs among non-matches) from random pairs with a fixed seed, and the m
probabilities (how often among matches) by expectation maximisation in two blocked sessions, so every field is
trained in one of them; reviewed pairs (``match_reviews``) add m estimates from labels. ``predict`` scores every
pair sharing a blocking key; ``clusters`` joins pairs above a threshold into connected components.

A stored model (``match_models``) is Splink's JSON; ``Scorer`` reads its m and u per level and scores a pair in
Python with the same levels (``comparisons.levels_of``), which is how a single arriving record is matched fast.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from patron.cif.identity.comparisons import BLOCKING_KEYS, NULL_LEVEL, levels_of, splink_comparisons
from patron.errors import InvalidInputError

MIN_RECORDS = 50  # fewer records than this cannot show what a non-match looks like
SEED = 42
# Splink's m from labels replaces the EM estimate: only worth it with enough confirmed matches to see every level.
MIN_LABELLED_MATCHES = 100


def _settings() -> dict[str, Any]:
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "customer_id",
        "comparisons": splink_comparisons(),
        "blocking_rules_to_generate_predictions": [f'l."{key}" = r."{key}"' for key in BLOCKING_KEYS],
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": False,
        "additional_columns_to_retain": [],
    }


def _linker(frame: pl.DataFrame, settings: dict[str, Any]) -> Any:
    from splink import DuckDBAPI, Linker  # noqa: PLC0415 - Splink and DuckDB load only when matching runs

    logging.getLogger("splink").setLevel(logging.ERROR)  # a field never filled in is reported in the model's notes
    api = DuckDBAPI()
    table = api.register(frame.to_arrow())
    return Linker(table, settings, log_level=None)


def train(frame: pl.DataFrame, *, labels: pl.DataFrame | None = None, seed: int = SEED) -> dict[str, Any]:
    """A trained model (Splink's JSON) from person records (``records.record_frame``), optionally labelled pairs
    (``customer_id_l``, ``customer_id_r``, ``clerical_match_score``)."""
    if frame.height < MIN_RECORDS:
        raise InvalidInputError(
            f"{frame.height} records to learn from; the match model needs at least {MIN_RECORDS}", field="records"
        )

    try:
        return _trained(frame, labels, seed)
    except (ValueError, ZeroDivisionError) as error:  # EM found no pairs that look alike: prior and m undefined
        raise InvalidInputError(
            f"the match model could not be trained on these {frame.height:,} records ({error}): they hold too few "
            "records of one person for expectation maximisation to tell matches from non-matches",
            field="records",
        ) from error


def _trained(frame: pl.DataFrame, labels: pl.DataFrame | None, seed: int) -> dict[str, Any]:
    from splink import block_on  # noqa: PLC0415

    linker = _linker(frame, _settings())
    training = linker.training
    training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "birth_date")], recall=0.5
    )
    training.estimate_u_using_random_sampling(max_pairs=2e6, seed=seed)
    training.estimate_parameters_using_expectation_maximisation(
        block_on("first_name", "last_name"), fix_u_probabilities=True
    )
    training.estimate_parameters_using_expectation_maximisation(
        block_on("birth_date", "postal_code"), fix_u_probabilities=True
    )
    if labels is not None and int(labels["clerical_match_score"].sum()) >= MIN_LABELLED_MATCHES:
        table = linker._db_api.register(labels.to_arrow())
        training.estimate_m_from_pairwise_labels(table)
    model: dict[str, Any] = linker.misc.save_model_to_json()
    return model


def predict(frame: pl.DataFrame, model: Mapping[str, Any], *, threshold: float) -> pl.DataFrame:
    """Every pair sharing a blocking key with P(match) >= threshold: the two ids, the probability and weight."""
    if frame.height < 2:
        return _no_pairs()
    kept = {k: v for k, v in _settings().items() if k != "comparisons"}
    settings = {**model, **kept}
    linker = _linker(frame, settings)
    table = linker.inference.predict(threshold_match_probability=threshold)
    found = pl.from_arrow(table.as_pyarrow_table())
    assert isinstance(found, pl.DataFrame)
    if found.is_empty():
        return _no_pairs()
    keep = ["customer_id_l", "customer_id_r", "match_probability", "match_weight"]
    return found.select(keep).sort("customer_id_l", "customer_id_r")


def _no_pairs() -> pl.DataFrame:
    schema = {"customer_id_l": pl.Int64, "customer_id_r": pl.Int64, "match_probability": pl.Float64,
              "match_weight": pl.Float64}  # fmt: skip
    return pl.DataFrame(schema=schema)


def clusters(pairs: pl.DataFrame, *, threshold: float) -> list[list[int]]:
    """Records joined by pairs at or above ``threshold`` (connected components), each sorted, two or more."""
    from scipy.sparse import coo_matrix  # noqa: PLC0415
    from scipy.sparse.csgraph import connected_components  # noqa: PLC0415

    linked = pairs.filter(pl.col("match_probability") >= threshold)
    if linked.is_empty():
        return []
    ids = np.unique(np.concatenate([linked["customer_id_l"].to_numpy(), linked["customer_id_r"].to_numpy()]))
    left = np.searchsorted(ids, linked["customer_id_l"].to_numpy())
    right = np.searchsorted(ids, linked["customer_id_r"].to_numpy())
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(len(ids), len(ids)))
    _, labels = connected_components(graph, directed=False)
    groups = pl.DataFrame({"id": ids, "group": labels}).group_by("group").agg(pl.col("id").sort())
    return sorted(group for group in groups["id"].to_list() if len(group) > 1)


@dataclass(frozen=True)
class Score:
    probability: float
    weight: float
    levels: dict[str, int]


class Scorer:
    """A stored model's weights, applied to one pair in Python (the real-time path).

    The m and u of each level are read through Splink's own settings object, so a level the training never saw
    gets the default Splink predicts with (the JSON leaves it out) and the weights are Splink's to the last bit.
    """

    def __init__(self, model: Mapping[str, Any]) -> None:
        from splink.internals.settings_creator import SettingsCreator  # noqa: PLC0415 - loaded once per model

        settings = SettingsCreator.from_path_or_dict(dict(model)).get_settings("duckdb")
        prior = float(settings._probability_two_random_records_match)
        self.prior_weight = math.log2(prior / (1 - prior))
        self.weights: dict[str, list[float]] = {}
        for comparison in settings.comparisons:
            levels = [level for level in comparison.comparison_levels if not level.is_null_level]
            self.weights[comparison.output_column_name] = [_bits(level.m_probability, level.u_probability)
                                                           for level in levels]  # fmt: skip

    def score(self, left: Mapping[str, Any], right: Mapping[str, Any]) -> Score:
        levels = levels_of(left, right)
        weight = self.prior_weight + sum(
            self.weights[field][index] for field, index in levels.items() if index != NULL_LEVEL
        )
        return Score(probability=_probability(weight), weight=weight, levels=levels)


def _bits(m: float | None, u: float | None) -> float:
    assert m is not None, "Splink gives every level of a comparison a default m"
    assert u is not None, "Splink gives every level of a comparison a default u"
    return math.log2(m / u)


def _probability(weight: float) -> float:
    odds = 2.0 ** max(min(weight, 1000.0), -1000.0)
    return float(odds / (1 + odds))
