"""``patron segments`` and ``patron models``: rule segments, needs-based segmentation, predictive models."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from patron.cli.shared import console, open_store, print_rows, reports_errors

segments_app = typer.Typer(help="Rule segments and needs-based segmentation.", no_args_is_help=True)
models_app = typer.Typer(help="Predictive models: churn, response, best prospects.", no_args_is_help=True)

AsOf = Annotated[
    dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Evaluate as of this day (default today).")
]


def _day(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value else None


@segments_app.command("create")
@reports_errors
def create(
    name: str,
    rule: Annotated[str, typer.Argument(help='e.g. tier == "A" and p_alive < 0.5 and bought("tents", months=12)')],
    description: str | None = None,
) -> None:
    """Save a rule segment (the rule is checked now; `segments evaluate` computes its members)."""
    from patron.segments.rules import create_segment  # noqa: PLC0415

    create_segment(open_store(), name, rule, description)
    console.print(f"saved segment {name!r}; run `patron segments evaluate` to compute its members")


@segments_app.command("edit")
@reports_errors
def edit(name: str, rule: str) -> None:
    """Change a segment's rule (checked first) and count its members again."""
    from patron.segments.rules import evaluate_segments, update_segment  # noqa: PLC0415

    engine = open_store()
    update_segment(engine, name, rule)
    console.print(f"{name}: {evaluate_segments(engine, names=[name])[name]:,} members with the new rule")


@segments_app.command("delete")
@reports_errors
def delete(name: str) -> None:
    """Delete a segment and its members (campaigns planned from it keep their copy of the rule)."""
    from patron.segments.rules import delete_segment  # noqa: PLC0415

    delete_segment(open_store(), name)
    console.print(f"deleted segment {name!r}")


@segments_app.command("preview")
@reports_errors
def preview_command(rule: str, as_of: AsOf = None) -> None:
    """How many customers a rule selects, with a few of them."""
    from patron.segments.rules import preview  # noqa: PLC0415

    result = preview(open_store(), rule, as_of=_day(as_of), sample=5)
    console.print(f"{result.count:,} of {result.customers:,} customers match")
    if result.count:
        console.print(result.sample.select("customer_id", "kind", "status", "orders", "revenue", "tier"))


@segments_app.command("list")
@reports_errors
def list_command() -> None:
    """Saved segments with their rule and last member count."""
    from patron.segments.rules import list_segments  # noqa: PLC0415

    print_rows(
        list_segments(open_store()), ("segment", "rule", "members", "evaluated"),
        lambda row: (
            row["name"], row["expression"], "" if row["member_count"] is None else f"{row['member_count']:,}",
            str(row["evaluated_at"] or "never"),
        ),
        empty="no segments yet: `patron segments create NAME 'tier == \"A\"'`",
    )  # fmt: skip


@segments_app.command("evaluate")
@reports_errors
def evaluate(as_of: AsOf = None) -> None:
    """Recompute the members of every segment (only joiners and leavers are written)."""
    from patron.segments.rules import evaluate_segments  # noqa: PLC0415

    for name, count in evaluate_segments(open_store(), as_of=_day(as_of)).items():
        console.print(f"{name}: {count:,} members")


@segments_app.command("members")
@reports_errors
def members(name: str, limit: int = 20, offset: int = 0) -> None:
    """Member customer ids of a segment, as last evaluated."""
    from patron.segments.rules import segment_members  # noqa: PLC0415

    ids, total = segment_members(open_store(), name, limit=limit, offset=offset)
    console.print(f"{name}: {total:,} members; showing {len(ids)} from {offset + 1}")
    console.print(", ".join(map(str, ids)))


@segments_app.command("cluster")
@reports_errors
def cluster(
    population: Annotated[str, typer.Option(help="Rule for who is segmented.")] = "orders > 0",
    method: Annotated[str, typer.Option(help="gmm (k by BIC) or kmeans (k by silhouette).")] = "gmm",
    max_segments: int = 8,
    as_of: AsOf = None,
    note: str | None = None,
) -> None:
    """Needs-based segmentation on value and behaviour; stored as a run."""
    from patron.segments.clustering import segment_customers  # noqa: PLC0415

    result = segment_customers(
        open_store(), population=population, method=method, k_range=range(2, max_segments + 1),  # type: ignore[arg-type]
        as_of=_day(as_of), note=note,
    )  # fmt: skip
    console.print(f"run {result.run_id}: {result.segments} segments, chosen by {result.criterion['name']}")
    table = Table("segment", "customers", "share", "value share", "what sets it apart")
    for d in result.descriptions:
        table.add_row(
            str(d["segment"]),
            f"{d['size']:,}",
            f"{d['share_of_customers']:.1%}",
            f"{d['value_share']:.1%}",
            d["summary"],
        )
    console.print(table)


@segments_app.command("evolution")
@reports_errors
def evolution(
    earlier: int, later: int, html: Annotated[Path | None, typer.Option(help="Write the Sankey diagram here.")] = None
) -> None:
    """Who moved between the segments of two runs (rows: earlier run; "new"/"gone": in one run only)."""
    from patron.segments.evolution import migration, sankey  # noqa: PLC0415

    moved = migration(open_store(), earlier, later)
    pivot = moved.matrix.pivot(on="to", index="from", values="customers").fill_null(0)
    console.print(pivot)
    if moved.new_segments:
        console.print(f"new segments in run {later}: {', '.join(map(str, moved.new_segments))}")
    if moved.vanished_segments:
        console.print(f"segments of run {earlier} that vanished: {', '.join(map(str, moved.vanished_segments))}")
    if html is not None:
        sankey(moved, earlier, later).write_html(html, include_plotlyjs=True)
        console.print(f"wrote the Sankey diagram to {html}")


@models_app.command("train")
@reports_errors
def train(
    name: str,
    target: Annotated[str, typer.Option(help='The rule to predict, e.g. attributes.churned or status == "churned".')],
    population: Annotated[str | None, typer.Option(help="The rule for who the model learns from.")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Fields that must not be features (leaks).")] = None,
    seed: int = 0,
) -> None:
    """Train a propensity model (logistic baseline and calibrated gradient boosting); store card and scores."""
    from patron.predict.models import train_model  # noqa: PLC0415

    result = train_model(open_store(), name, target=target, population=population, exclude=exclude or [], seed=seed)
    card = result.card
    console.print(f"model run {result.run_id}: {card.chosen} chosen")
    for learner, metrics in card.metrics.items():
        console.print(f"  {learner}: holdout AUC {metrics['auc']:.3f}, Brier {metrics['brier']:.3f}")
    console.print("  top drivers: " + ", ".join(str(d["feature"]) for d in card.top_drivers[:5]))
    console.print(f"  lift in the top decile: {card.lift[0]['lift']:.2f}×; {result.scores.height:,} customers scored")


@models_app.command("uplift")
@reports_errors
def uplift(
    name: str,
    campaign: Annotated[str, typer.Option(help="A past campaign with a randomised control group.")],
    kind: Annotated[str, typer.Option(help="The response it should cause, e.g. visit, conversion, bought.")],
    arm: Annotated[str | None, typer.Option(help="Only this arm against the control (default: every arm).")] = None,
    seed: int = 0,
) -> None:
    """Train an uplift model (two-model and X-learner, judged by Qini on a held-out 30 %); score every customer."""
    from patron.predict.campaign_uplift import train_uplift  # noqa: PLC0415

    result = train_uplift(open_store(), name, campaign=campaign, kind=kind, arm=arm, seed=seed)
    console.print(f"model run {result.run_id}: {result.chosen} chosen ({result.train_rows:,} to learn, "
                  f"{result.holdout_rows:,} held out)")  # fmt: skip
    for learner, judged in result.evaluations.items():
        console.print(
            f"  {learner}: Qini {judged.qini:.5f} (95 % {judged.qini_low:.5f} … {judged.qini_high:.5f}); uplift in "
            f"the top {judged.top_share:.0%} {judged.top_uplift:+.4f} against {judged.overall_uplift:+.4f} for everyone"
        )
    console.print(
        f"  {result.scored:,} customers scored; target with `patron campaigns create … --uplift-model {name}`"
    )


@models_app.command("list")
@reports_errors
def models_list() -> None:
    """Stored model runs, newest first."""
    from patron.predict.models import list_models  # noqa: PLC0415

    table = Table("run", "name", "created", "model", "holdout", "target")
    for row in list_models(open_store()):
        judged = f"AUC {row['auc']:.3f}" if row["auc"] is not None else f"Qini {row['qini']:.5f}"
        table.add_row(
            str(row["id"]), row["name"], f"{row['created_at']:%Y-%m-%d %H:%M}", row["chosen"], judged, row["target"]
        )
    console.print(table)


@models_app.command("card")
@reports_errors
def card(run: int) -> None:
    """The model card: target, population, features, holdout metrics, calibration, lift, drivers."""
    from patron.predict.models import model_card  # noqa: PLC0415

    console.print_json(json.dumps(model_card(open_store(), run), default=str))


@models_app.command("explain")
@reports_errors
def explain_command(run: int, customer: str, top: int = 5) -> None:
    """Why a customer scores as they do: the fields that move their score most."""
    from patron.cif.view import resolve_customer  # noqa: PLC0415
    from patron.predict.models import explain  # noqa: PLC0415

    engine = open_store()
    for name, effect in explain(engine, run, resolve_customer(engine, customer), top=top):
        console.print(f"  {name}: {effect:+.3f}")
