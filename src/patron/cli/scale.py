"""``patron spark …``, ``patron worker``, ``patron scheduler``, ``patron jobs``: running Patron beyond one process."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from patron.cli.shared import console, open_store, reports_errors
from patron.errors import InvalidInputError

spark_app = typer.Typer(help="Run the batch analytics on Apache Spark.", no_args_is_help=True)
jobs_app = typer.Typer(help="Background jobs on the Redis queue.", no_args_is_help=True)

MasterOption = Annotated[
    str | None, typer.Option(help="Spark master: local[*] (default, PATRON_SPARK_MASTER) or spark://host:7077.")
]
SourceOption = Annotated[str | None, typer.Option(help="Order source (default: the largest).")]


@spark_app.command("score")
@reports_errors
def spark_score(
    master: MasterOption = None,
    source: SourceOption = None,
    model: Annotated[str, typer.Option(help="bgnbd or paretonbd.")] = "bgnbd",
    parquet: Annotated[Path | None, typer.Option(help="Read order lines from this Parquet export instead.")] = None,
) -> None:
    """Score every customer on Spark and store the run like an embedded one (`patron value runs` lists it)."""
    from patron.spark.session import spark_session  # noqa: PLC0415 - Spark starts only for Spark commands
    from patron.spark.store import spark_score_run  # noqa: PLC0415

    engine = open_store()
    spark = spark_session(master)
    transactions = spark.read.parquet(str(parquet)) if parquet else None
    result = spark_score_run(
        spark, engine, transactions=transactions, source=source, model=model, progress=console.print
    )
    console.print(f"score run {result.run_id}: {result.customers:,} customers, {result.model} on Spark {spark.version}")
    for name, value in result.excluded.items():
        console.print(f"  left out: {name.replace('_', ' ')}: {value:,}")


@spark_app.command("export")
@reports_errors
def spark_export(
    folder: Annotated[Path, typer.Argument(help="Where to write orders.parquet and features.parquet.")],
    source: SourceOption = None,
) -> None:
    """Export the order lines and the segment features to Parquet, for a Spark cluster to read."""
    from patron.cif.facts import resolve_scope  # noqa: PLC0415
    from patron.segments.features import build_features  # noqa: PLC0415
    from patron.spark.segments import export_features  # noqa: PLC0415
    from patron.spark.store import export_transactions  # noqa: PLC0415

    engine = open_store()
    lines = export_transactions(engine, resolve_scope(engine, source), folder / "orders.parquet")
    customers = export_features(build_features(engine), folder / "features.parquet")
    console.print(f"wrote {lines:,} order lines and {customers:,} customers' features to {folder}")


@spark_app.command("segment")
@reports_errors
def spark_segment(
    expression: Annotated[str, typer.Argument(help='A segment rule, e.g. tier == "A" and p_alive < 0.5.')],
    features: Annotated[Path, typer.Option(help="features.parquet written by `patron spark export`.")],
    master: MasterOption = None,
    as_of: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="The day rules like days_ago() count from.")
    ] = None,
) -> None:
    """Count the customers a rule selects, evaluated on Spark over an exported feature frame."""
    from patron.segments.features import feature_schema  # noqa: PLC0415
    from patron.segments.rules import compile_cached  # noqa: PLC0415
    from patron.spark.segments import spark_members  # noqa: PLC0415
    from patron.spark.session import spark_session  # noqa: PLC0415

    if not features.exists():
        raise InvalidInputError(f"{features} does not exist: run `patron spark export` first", field="features")
    engine = open_store()
    rule, schema = compile_cached(engine, expression)
    schema = schema or feature_schema(engine)
    spark = spark_session(master)
    day = as_of.date() if as_of else dt.date.today()
    members = spark_members(spark.read.parquet(str(features)), rule, as_of=day, schema=schema).count()
    console.print(f"{members:,} customers match {expression!r}")


@jobs_app.command("enqueue")
@reports_errors
def jobs_enqueue(
    name: Annotated[str, typer.Argument(help="score, segments or daily.")],
) -> None:
    """Put a job on the queue now (a running `patron worker` takes it)."""
    from patron.jobs.queue import enqueue  # noqa: PLC0415 - Redis only for queue commands

    job = enqueue(name)
    console.print(f"queued {name} as job {job.id}")


@jobs_app.command("run")
@reports_errors
def jobs_run(name: Annotated[str, typer.Argument(help="score, segments or daily.")]) -> None:
    """Run a job here and now, without the queue (what a worker would do)."""
    from patron.jobs.tasks import JOBS  # noqa: PLC0415

    if name not in JOBS:
        raise InvalidInputError(f"there is no job {name!r}; use one of {', '.join(JOBS)}", field="job")
    open_store()
    console.print(JOBS[name]())


def worker(burst: Annotated[bool, typer.Option(help="Stop when the queue is empty.")] = False) -> None:
    """Take jobs from the Redis queue (run several for more throughput)."""
    from patron.jobs.queue import worker as queue_worker  # noqa: PLC0415

    open_store()
    queue_worker().work(burst=burst)


def scheduler() -> None:
    """Put the periodic jobs on the queue on their cron schedules (run exactly one)."""
    from patron.jobs.queue import schedule  # noqa: PLC0415

    cron = schedule()
    for job in cron.get_jobs():
        console.print(f"scheduled {job.name} ({job.cron or f'every {job.interval} s'})")
    cron.start()  # type: ignore[no-untyped-call]  # rq's scheduler loop has no annotations
