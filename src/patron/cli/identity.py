"""``patron identity``: find the records of one person, merge them, undo a merge, review the unsure pairs."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from patron.cli.shared import console, open_store, reports_errors

identity_app = typer.Typer(help="Identity resolution: one person, one record (docs/IDENTITY.md).", no_args_is_help=True)
ACTOR = "operator"
MatchThreshold = Annotated[float | None, typer.Option(help="P(match) to merge at (default PATRON_MATCH_THRESHOLD).")]
ReviewThreshold = Annotated[
    float | None, typer.Option(help="P(match) from which a pair goes to review (default PATRON_REVIEW_THRESHOLD).")
]


@identity_app.command("train")
@reports_errors
def train(match_threshold: MatchThreshold = None, review_threshold: ReviewThreshold = None) -> None:
    """Train the match model on every open record (and the review decisions so far) and store it."""
    from patron.cif.identity.model import MIN_LABELLED_MATCHES  # noqa: PLC0415
    from patron.cif.identity.resolve import Thresholds, train_model  # noqa: PLC0415

    with console.status("training the match model (Splink, expectation maximisation)"):
        stored = train_model(open_store(), Thresholds.chosen(match_threshold, review_threshold))
    console.print(f"match model {stored.id} trained: merge at P(match) >= {stored.thresholds.match}, "
                  f"review from {stored.thresholds.review}")  # fmt: skip
    notes = stored.notes
    labels = "used" if notes["labels_used"] else f"not used (fewer than {MIN_LABELLED_MATCHES} confirmed matches)"
    console.print(f"{notes['records']:,} records; {notes['labelled_pairs']:,} review decisions, "
                  f"{notes['confirmed_matches']:,} of them matches: labels {labels}")  # fmt: skip
    if notes["fields_without_data"]:
        console.print(f"never filled in, so no evidence either way: {', '.join(notes['fields_without_data'])}")
    _print_weights(stored.splink)


def _print_weights(splink: dict[str, Any]) -> None:
    from patron.cif.identity.model import Scorer  # noqa: PLC0415

    weights = Scorer(splink).weights
    table = Table("field", "level", "m", "u", "weight (bits)")
    for comparison in splink["comparisons"]:
        field = comparison["output_column_name"]
        levels = [level for level in comparison["comparison_levels"] if not level.get("is_null_level")]
        for level, weight in zip(levels, weights[field], strict=True):
            m, u = level.get("m_probability"), level.get("u_probability")
            table.add_row(field, level["label_for_charts"], "default" if m is None else f"{m:.3f}",
                          "default" if u is None else f"{u:.4f}", f"{weight:+.1f}")  # fmt: skip
    console.print(table)


@identity_app.command("link")
@reports_errors
def link(
    match_threshold: MatchThreshold = None,
    review_threshold: ReviewThreshold = None,
    retrain: Annotated[bool, typer.Option("--retrain", help="Train a new model first (else the newest).")] = False,
) -> None:
    """De-duplicate the whole file: merge the clusters of one person, queue the unsure pairs for review."""
    from patron.cif.identity.resolve import Thresholds, link  # noqa: PLC0415

    with console.status("linking") as status:
        result = link(
            open_store(), thresholds=Thresholds.chosen(match_threshold, review_threshold), retrain=retrain,
            actor=ACTOR, progress=status.update,
        )  # fmt: skip
    console.print(
        f"{result.records:,} records, {result.pairs:,} pairs scored at P(match) >= {result.thresholds.review}: "
        f"{result.clusters:,} clusters, {result.merged:,} records merged at >= {result.thresholds.match}, "
        f"{result.reviews:,} pairs sent to review (model {result.model_id}{', trained now' if result.trained else ''})"
    )


@identity_app.command("merge")
@reports_errors
def merge_records(
    customers: Annotated[list[str], typer.Argument(help="Two or more customers (id, system:id, e-mail).")],
) -> None:
    """Merge records you know are one person into the oldest of them."""
    from patron.cif.identity.actions import merge  # noqa: PLC0415
    from patron.cif.view import resolve_customer  # noqa: PLC0415

    engine = open_store()
    merges = merge(engine, [resolve_customer(engine, reference) for reference in customers], actor=ACTOR,
                   interface="cli")  # fmt: skip
    for m in merges:
        console.print(f"merge {m.merge_id}: customer {m.merged_id} into {m.survivor_id} ({_moved(m.moved)})")


def _moved(moved: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {table}" for table, count in sorted(moved.items())) or "no rows moved"


@identity_app.command("split")
@reports_errors
def split(
    customer: Annotated[str | None, typer.Argument(help="The merged record (its id) to take out again.")] = None,
    merge: Annotated[int | None, typer.Option(help="The merge to undo, by its number.")] = None,
) -> None:
    """Undo a merge exactly: the merged record gets back every row it had."""
    from patron.cif.identity.actions import split_merge  # noqa: PLC0415
    from patron.errors import InvalidInputError  # noqa: PLC0415

    if (customer is None) == (merge is None):
        raise InvalidInputError("name either the merged customer or --merge", field="customer")
    merged_id = None if customer is None else _customer_id(customer)
    undone = split_merge(open_store(), merge_id=merge, merged_id=merged_id, actor=ACTOR, interface="cli")
    console.print(f"merge {undone.merge_id} undone: customer {undone.merged_id} is separate from "
                  f"{undone.survivor_id} again ({_moved(undone.moved)} moved back)")  # fmt: skip


def _customer_id(reference: str | None) -> int:
    from patron.errors import InvalidInputError  # noqa: PLC0415

    if reference is None or not reference.isdigit():
        raise InvalidInputError("a merged record is named by its customer id (its other ids lead to the survivor)",
                                field="customer")  # fmt: skip
    return int(reference)


@identity_app.command("history")
@reports_errors
def history(customer: Annotated[str, typer.Argument(help="Customer id, system:id or e-mail.")]) -> None:
    """The merges a customer took part in: when, why (match weight, agreeing fields) and whether split."""
    from patron.cif.identity.actions import history as merges_of  # noqa: PLC0415
    from patron.cif.view import resolve_customer  # noqa: PLC0415

    engine = open_store()
    rows = merges_of(engine, resolve_customer(engine, customer))
    if not rows:
        console.print("no merges")
        return
    table = Table("merge", "merged", "into", "how", "P(match)", "weight", "agreed", "when", "split")
    for row in rows:
        probability = "-" if row["match_probability"] is None else f"{row['match_probability']:.4f}"
        weight = "-" if row["match_weight"] is None else f"{row['match_weight']:+.1f}"
        table.add_row(str(row["id"]), str(row["merged_id"]), str(row["survivor_id"]), row["how"], probability, weight,
                      ", ".join(row["agreed"]), f"{row['merged_at']:%Y-%m-%d %H:%M}",
                      f"{row['split_at']:%Y-%m-%d %H:%M}" if row["split_at"] else "")  # fmt: skip
    console.print(table)


@identity_app.command("review")
@reports_errors
def review(
    decision: Annotated[str | None, typer.Argument(help="accept or reject (omit to list the open pairs).")] = None,
    review_id: Annotated[int | None, typer.Argument(help="The pair's number.")] = None,
    limit: Annotated[int, typer.Option(help="Pairs to list.")] = 20,
) -> None:
    """List the pairs in the review band side by side, or accept (merge) / reject (keep apart) one."""
    from patron.cif.identity.actions import decide_review, overview  # noqa: PLC0415
    from patron.errors import InvalidInputError  # noqa: PLC0415

    engine = open_store()
    if decision is None:
        found = overview(engine, limit=limit)
        pairs, total = found.pairs, found.open_reviews
        if not pairs:
            console.print("no pairs to review: run `patron identity link` to find them")
        for pair in pairs:
            title = f"review {pair.id}: P(match) {pair.probability:.3f}, weight {pair.weight:+.1f}"
            table = Table("field", str(pair.left_id), str(pair.right_id), "comparison", title=title)
            for name, left, right, level in pair.fields:
                table.add_row(name, str(left or ""), str(right or ""), level)
            console.print(table)
        console.print(f"{total:,} open; decide with `patron identity review accept|reject N`")
        return
    if review_id is None:
        raise InvalidInputError("name the review: patron identity review accept N", field="review")
    pair = decide_review(engine, review_id, decision, actor=ACTOR, interface="cli")
    console.print(f"review {pair.id} {pair.status}")


@identity_app.command("match")
@reports_errors
def match(record: Annotated[str, typer.Argument(help='The record as JSON, e.g. {"first_name": "Ann", ...}.')]) -> None:
    """What would happen to a record arriving now: joined to a customer, sent to review, or created (read only)."""
    from patron.cif.identity.actions import match as match_record  # noqa: PLC0415
    from patron.errors import InvalidInputError  # noqa: PLC0415

    try:
        fields = json.loads(record)
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"the record is not JSON: {error.msg}", field="record") from error
    if not isinstance(fields, dict):
        raise InvalidInputError("the record is a JSON object of fields", field="record")
    decision = match_record(open_store(), fields)
    if decision.outcome == "created":
        console.print("no stored record matches: it would be a new customer")
        return
    console.print(f"{decision.outcome}: customer {decision.other_id}, P(match) {decision.probability:.4f}, "
                  f"weight {decision.weight:+.1f}, agreed on {', '.join(decision.agreed) or 'nothing'}")  # fmt: skip
