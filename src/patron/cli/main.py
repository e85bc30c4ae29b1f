"""The ``patron`` command: a thin Typer layer over the CIF services; domain errors become clear messages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from patron.cli.campaigns import campaigns_app
from patron.cli.identity import identity_app
from patron.cli.privacy import privacy_app
from patron.cli.scale import jobs_app, scheduler, spark_app, worker
from patron.cli.segments import models_app, segments_app
from patron.cli.service import cases_app, kb_app
from patron.cli.service import context as service_context
from patron.cli.shared import console, open_store, print_rows, progress_bar, reports_errors
from patron.cli.strategy import strategy_app
from patron.cli.value import value_app
from patron.demo.sets import DEMO_SETS, EXAMPLE_SETS
from patron.errors import PatronError

if TYPE_CHECKING:
    from patron.cif.importer import ImportResult

app = typer.Typer(help="Patron: one-to-one customer relationship management.", no_args_is_help=True)
customers_app = typer.Typer(help="Browse the customer information file.", no_args_is_help=True)
retention_app = typer.Typer(help="Preview and apply data-retention rules.", no_args_is_help=True)
users_app = typer.Typer(help="Users who sign in to the web app and the API.", no_args_is_help=True)
for name, group in {
    "customers": customers_app, "retention": retention_app, "value": value_app, "segments": segments_app,
    "models": models_app, "cases": cases_app, "campaigns": campaigns_app, "users": users_app, "kb": kb_app,
    "strategy": strategy_app, "privacy": privacy_app, "identity": identity_app, "spark": spark_app, "jobs": jobs_app,
}.items():  # fmt: skip
    app.add_typer(group, name=name)
app.command("worker")(reports_errors(worker))
app.command("scheduler")(reports_errors(scheduler))
app.command("context")(reports_errors(service_context))


def print_result(result: ImportResult) -> None:
    console.print(result.summary_line())
    for name, count in result.counts.items():
        console.print(f"  {name}: {count:,}")
    if result.rejects_path is not None:
        console.print(f"  rejected rows and dropped fields with line, column and reason: {result.rejects_path}")
        for reject in result.rejects[:5]:
            where = f"line {reject.line}: {reject.column or '(row)'} {reject.value!r}"
            console.print(f"    {where}: {reject.reason} ({reject.outcome})", markup=False)
        if len(result.rejects) > 5:
            console.print(f"    ... and {len(result.rejects) - 5:,} more in the rejects file")


@app.command()
@reports_errors
def init() -> None:
    """Create (or upgrade) the store."""
    engine = open_store()
    console.print(f"store ready at {engine.url.render_as_string(hide_password=True)}")


@app.command("import")
@reports_errors
def import_command(  # noqa: PLR0917  (typer passes every option by position)
    file: Annotated[Path, typer.Argument(help="CSV, whitespace-separated text or Parquet file")],
    mapping: Annotated[
        Path | None, typer.Option("--mapping", "-m", help="TOML mapping file (with --suggest: where to write it)")
    ] = None,
    batch_rows: Annotated[int, typer.Option(help="rows written per transaction")] = 50_000,
    rejects_dir: Annotated[Path | None, typer.Option(help="where the rejects file goes")] = None,
    suggest: Annotated[
        bool, typer.Option("--suggest", help="write a starting mapping from the file's header and sample instead")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate and count everything, write nothing")] = False,
    bulk: Annotated[
        bool,
        typer.Option(
            "--bulk",
            help="a first load of a large file into PostgreSQL: one transaction, references checked once at the "
            "end, the tables locked for others until it is done (on SQLite: a batched import)",
        ),
    ] = False,
) -> None:
    """Import one file through a mapping; bad rows are reported with line and reason, the rest kept."""
    from patron.cif.importer import import_file  # noqa: PLC0415
    from patron.cif.mapping import load_mapping  # noqa: PLC0415
    from patron.settings import get_settings  # noqa: PLC0415

    if suggest:
        write_suggestion(file, mapping)
        return
    if mapping is None:
        raise typer.BadParameter("name the mapping with --mapping (or write a first one with --suggest)")
    spec = load_mapping(mapping)
    engine = open_store()
    with progress_bar() as bar:
        result = import_file(
            engine,
            file,
            spec,
            batch_rows=batch_rows,
            rejects_dir=rejects_dir or get_settings().data_dir / "rejects",
            progress=bar(file.name),
            dry_run=dry_run,
            bulk=bulk,
        )
    print_result(result)


def write_suggestion(file: Path, out: Path | None) -> None:
    """Print a suggested mapping, or write it to ``out`` (never over an existing file)."""
    from patron.cif.suggest import suggest_mapping  # noqa: PLC0415

    text = suggest_mapping(file)
    if out is None:
        console.print(text, markup=False, highlight=False)
        return
    if out.exists():
        raise typer.BadParameter(f"{out} exists; choose another file for the suggested mapping")
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote a suggested mapping to {out}; check it, then: patron import {file} -m {out} --dry-run")


@app.command()
@reports_errors
def demo(
    data_dir: Annotated[Path | None, typer.Option(help="the shared data folder (default ../shared/data)")] = None,
    only: Annotated[
        list[str] | None, typer.Option(help=f"load only these sets: {', '.join(DEMO_SETS + EXAMPLE_SETS)}")
    ] = None,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="do nothing when the store has customers")] = False,
) -> None:
    """Load the demo data sets (CDNOW, telco churn, Hillstrom, ...) into the store."""
    from patron.cif.store import store_counts  # noqa: PLC0415
    from patron.demo import load_demo  # noqa: PLC0415
    from patron.settings import get_settings  # noqa: PLC0415
    from patron.strategy.network import synthetic_demo_links  # noqa: PLC0415

    engine = open_store()
    if if_empty and store_counts(engine)["customers"] > 0:
        console.print("store already holds customers; demo data not loaded again")
        summary()
        return
    names = tuple(only) if only else DEMO_SETS
    settings = get_settings()
    with progress_bar() as bar:
        results = load_demo(
            engine,
            data_dir or settings.shared_data_dir,
            names=names,
            rejects_dir=settings.data_dir / "rejects",
            progress_for=bar,
        )
    for result in results:
        print_result(result)
    if "cdnow" in names:
        created, _ = synthetic_demo_links(engine, source="cdnow")
        console.print(f"{created:,} SYNTHETIC referral links among CDNOW customers for the network page (demo only)")
    summary()


@app.command()
@reports_errors
def backup(
    to: Annotated[
        Path | None, typer.Argument(help="The backup file (default: a dated one in the data folder's backups/).")
    ] = None,
) -> None:
    """Back the embedded store up while it keeps running (SQLite's online backup). Dated backups in the data
    folder are kept for PATRON_BACKUP_RETENTION_DAYS, then deleted."""
    import datetime as dt  # noqa: PLC0415

    from patron.cif.backup import backup_store, prune_backups  # noqa: PLC0415
    from patron.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    folder = settings.data_dir / "backups"
    target = to or folder / f"patron-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}.bak"
    path = backup_store(open_store(), target)
    console.print(f"backed up to {path} ({path.stat().st_size:,} bytes, integrity checked)")
    if to is None:
        pruned = prune_backups(folder, keep_days=settings.backup_retention_days)
        if pruned:
            console.print(f"deleted {len(pruned)} backup(s) older than {settings.backup_retention_days} days")


@app.command()
@reports_errors
def restore(
    file: Annotated[Path, typer.Argument(help="A backup written by `patron backup`.")],
    yes: Annotated[bool, typer.Option("--yes", help="Really replace the store (stop `patron serve` first).")] = False,
) -> None:
    """Replace the embedded store with a backup, after checking it; everyone erased since is erased again."""
    from patron.cif.store import make_engine  # noqa: PLC0415
    from patron.privacy.restore import restore as restore_backup  # noqa: PLC0415
    from patron.settings import get_settings  # noqa: PLC0415

    if not yes:
        console.print("this replaces the whole store; stop the server, then run again with --yes")
        raise typer.Exit(1)
    restored = restore_backup(make_engine(), file, data_dir=get_settings().data_dir)
    console.print(f"restored {file} into {restored.path}")
    if restored.re_erased:
        console.print(f"{len(restored.re_erased)} person(s) erased since this backup was taken were erased again")
    summary()


@app.command()
@reports_errors
def summary() -> None:
    """Headline counts of the store."""
    from patron.cif.store import is_initialised, make_engine, store_counts  # noqa: PLC0415

    engine = make_engine()
    if not is_initialised(engine):
        console.print("the store is empty: run `patron init`, then `patron demo` or `patron import`")
        return
    counts = store_counts(engine)
    console.print(
        f"store {engine.url.render_as_string(hide_password=True)}: {counts['customers']:,} customers, "
        f"{counts['orders']:,} orders, {counts['order_lines']:,} order lines"
    )


@customers_app.command("list")
@reports_errors
def customers_list(
    search: Annotated[str | None, typer.Option(help="part of an id, e-mail, phone or name")] = None,
    kind: Annotated[str | None, typer.Option(help="customer or prospect")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    page: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """List customers with their orders and revenue."""
    from patron.cif.view import list_customers  # noqa: PLC0415

    rows, total = list_customers(open_store(), search=search, kind=kind, limit=limit, offset=(page - 1) * limit)
    if not rows:
        console.print("no customers match; load data with `patron demo` or `patron import`")
        return
    table = Table(title=f"customers {(page - 1) * limit + 1}-{(page - 1) * limit + len(rows)} of {total:,}")
    for column in ("id", "kind", "status", "source", "orders", "revenue", "last order"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["kind"],
            row["status"],
            row["source"],
            str(row["orders"]),
            _revenue_cell(row),
            str(row["last_order"] or ""),
        )
    console.print(table)


def _revenue_cell(row: dict[str, Any]) -> str:
    from patron.cif.money import format_money  # noqa: PLC0415

    if not row["orders"]:
        return ""
    if row["currencies"] > 1:
        return "mixed currencies"
    return format_money(row["revenue_minor"], row["currency"])


@customers_app.command("show")
@reports_errors
def customers_show(
    reference: Annotated[str, typer.Argument(help="id, system:external-id or e-mail")],
) -> None:
    """The 360° view of one customer: identities, attributes, orders, interactions, consents, in time order."""
    from patron.cif.money import format_money  # noqa: PLC0415
    from patron.cif.view import customer_view, resolve_customer  # noqa: PLC0415

    engine = open_store()
    view = customer_view(engine, resolve_customer(engine, reference), with_facts=False)
    customer = view.customer
    console.rule(f"customer {customer['id']} ({customer['kind']}, {customer['status']}, from {customer['source']})")
    for identity in view.identities:
        console.print(f"  {identity['kind']:<9} {identity['system'] or '-':<12} {identity['value']}")
    for name, value in {**view.profile, **view.attributes}.items():
        console.print(f"  {name}: {value}")
    revenue = ", ".join(format_money(minor, code) for code, minor in view.revenue_by_currency.items()) or "none"
    console.print(f"  orders: {len(view.orders)}, revenue {revenue}")
    for entry in view.campaigns:
        responses = ", ".join(item["kind"] for item in entry["responses"]) or "no response"
        console.print(f"  campaign {entry['name']} ({entry['arm']}): {responses}")
    console.rule("timeline")
    if not view.timeline:
        console.print("  nothing recorded yet")
    for item in view.timeline:
        console.print(f"  {item.at:%Y-%m-%d}  {item.kind:<11} {item.summary}")


@app.command()
@reports_errors
def quality() -> None:
    """Missing fields per source, rows rejected on import, and duplicate candidates."""
    from patron.cif.quality import quality_report  # noqa: PLC0415

    report = quality_report(open_store())
    table = Table(title="completeness (missing per source)")
    for column in ("source", "field", "customers", "missing", "%"):
        table.add_column(column)
    for row in report.completeness:
        table.add_row(
            row["source"],
            row["field"],
            f"{row['customers']:,}",
            f"{row['missing']:,}",
            f"{row['missing_pct']}",
        )
    console.print(table)
    if report.rejected:
        rejected = Table(title="rows rejected by the latest import of each file")
        for column in ("source", "column", "rows", "rejects file"):
            rejected.add_column(column)
        for row in report.rejected:
            rejected.add_row(row["source"], row["column"], str(row["rows"]), str(row["rejects_file"]))
        console.print(rejected)
    else:
        console.print("no rows were rejected by the latest imports")
    console.print(f"duplicate candidates (same name and postal code or birth year): {len(report.duplicate_candidates)}")
    for group in report.duplicate_candidates[:20]:
        console.print(f"  {group['customers']} × {group['name']!r} / {group['postal_or_birth_year']}")


@retention_app.command("preview")
@reports_errors
def retention_preview(
    months: Annotated[int, typer.Option(min=1, help="no contact for this many months")] = 24,
) -> None:
    """List the prospects a retention rule would anonymise or delete."""
    from patron.cif.retention import stale_prospects  # noqa: PLC0415

    stale = stale_prospects(open_store(), months)
    console.print(f"{len(stale):,} prospects with no order and no contact in {months} months")
    for item in stale[:20]:
        console.print(f"  {item.customer_id} ({item.source}) last contact {item.last_contact:%Y-%m-%d}")


@retention_app.command("apply")
@reports_errors
def retention_apply(
    months: Annotated[int, typer.Option(min=1)] = 24,
    mode: Annotated[str, typer.Option(help="anonymise or delete")] = "anonymise",
    yes: Annotated[bool, typer.Option("--yes", help="confirm")] = False,
) -> None:
    """Anonymise (default) or delete the stale prospects; needs --yes."""
    from patron.cif.retention import apply_retention  # noqa: PLC0415

    if mode not in ("anonymise", "delete"):
        raise PatronError("mode must be 'anonymise' or 'delete'", field="mode", code="invalid_option")
    if not yes:
        raise PatronError("retention changes data irreversibly: preview it, then add --yes", code="confirm")
    count = apply_retention(open_store(), months, mode=mode)  # type: ignore[arg-type]
    console.print(f"{mode}d {count:,} prospects")


@app.command()
@reports_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes (on SQLite they share the file: WAL, one writer).")
    ] = 1,
) -> None:
    """Serve the web app and the REST API (OpenAPI at /openapi.json)."""
    import uvicorn  # noqa: PLC0415  (only this command needs the server)

    from patron.app import HTMX_JS, create_app  # noqa: PLC0415
    from patron.auth.service import FIRST_ADMIN_PASSWORD, ensure_first_admin  # noqa: PLC0415

    engine = open_store()
    created = ensure_first_admin(engine)
    console.print(f"Patron is at http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    if not HTMX_JS.exists():
        console.print(f"[yellow]{HTMX_JS} is missing: the pages' live parts will not work; run `make install`[/yellow]")
    if created:
        console.print(f"sign in as [bold]admin[/bold] with password [bold]{FIRST_ADMIN_PASSWORD}[/bold]")
    if workers > 1:
        # Each process builds its own app and connection pool from the same settings.
        uvicorn.run("patron.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="warning")
        return
    uvicorn.run(create_app(engine), host=host, port=port, log_level="warning")


@users_app.command("add")
@reports_errors
def users_add(username: str, role: str, password: Annotated[str, typer.Option(prompt=True, hide_input=True)]) -> None:
    """Add a user with a role: admin, manager, agent or analyst."""
    from patron.auth.service import create_user  # noqa: PLC0415

    create_user(open_store(), username, password, role)
    console.print(f"user {username} ({role}) added")


@users_app.command("disable")
@reports_errors
def users_disable(username: str) -> None:
    """The user can no longer sign in; every session and token they hold ends now."""
    from patron.auth.accounts import disable_user  # noqa: PLC0415

    revoked = disable_user(open_store(), username)
    console.print(f"user {username} disabled; {revoked} session(s) and token(s) ended")


@users_app.command("enable")
@reports_errors
def users_enable(username: str) -> None:
    """Let a disabled user sign in again (their old tokens stay ended)."""
    from patron.auth.accounts import enable_user  # noqa: PLC0415

    enable_user(open_store(), username)
    console.print(f"user {username} enabled")


@users_app.command("unlock")
@reports_errors
def users_unlock(username: str) -> None:
    """Lift the lockout after too many failed sign-ins."""
    from patron.auth.accounts import unlock_user  # noqa: PLC0415

    unlock_user(open_store(), username)
    console.print(f"user {username} may sign in again")


@users_app.command("password")
@reports_errors
def users_password(
    username: str, password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)]
) -> None:
    """Set a new password; every session and token of the user ends."""
    from patron.auth.accounts import change_password  # noqa: PLC0415

    revoked = change_password(open_store(), username, password)
    console.print(f"password of {username} changed; {revoked} session(s) and token(s) ended")


@users_app.command("tokens")
@reports_errors
def users_tokens(username: str) -> None:
    """The user's sessions and API tokens: when made, when they expire, last used, revoked."""
    from dataclasses import asdict  # noqa: PLC0415

    from patron.auth.accounts import list_tokens  # noqa: PLC0415

    def when(moment: object) -> str:
        return f"{moment:%Y-%m-%d %H:%M}" if moment is not None else "–"

    print_rows(
        [asdict(token) for token in list_tokens(open_store(), username)],
        ("id", "name", "kind", "made", "expires", "last used", "revoked"),
        lambda t: (str(t["id"]), t["name"], t["kind"], when(t["created_at"]), when(t["expires_at"]),
                   when(t["last_used_at"]), when(t["revoked_at"])),
        empty=f"{username} holds no tokens.",
    )  # fmt: skip


@users_app.command("revoke")
@reports_errors
def users_revoke(token: int) -> None:
    """End one session or API token (by the id `patron users tokens` shows)."""
    from patron.auth.accounts import revoke_token  # noqa: PLC0415

    revoke_token(open_store(), token)
    console.print(f"token {token} revoked")


def main() -> None:  # pragma: no cover - console entry point
    app()
