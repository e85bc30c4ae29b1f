"""``patron privacy``: answer a subject access request, erase a person."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from patron.cli.shared import console, open_store, reports_errors

privacy_app = typer.Typer(help="Subject access requests and erasure.", no_args_is_help=True)


@privacy_app.command("export")
@reports_errors
def export(
    customer: Annotated[str, typer.Argument(help="Customer id, system:external-id or e-mail address.")],
    to: Annotated[Path, typer.Option(help="Folder for the JSON file and one CSV per table.")] = Path("subject-access"),
) -> None:
    """Everything held about a person: every table that refers to them, as JSON and CSV."""
    from patron.cif.view import resolve_customer  # noqa: PLC0415
    from patron.privacy.subject import write_subject_access  # noqa: PLC0415

    engine = open_store()
    written = write_subject_access(engine, resolve_customer(engine, customer), to)
    console.print(f"wrote {len(written)} files to {to}")


@privacy_app.command("erase")
@reports_errors
def erase(
    customer: Annotated[str, typer.Argument(help="Customer id, system:external-id or e-mail address.")],
    yes: Annotated[bool, typer.Option("--yes", help="Really erase (it cannot be undone).")] = False,
    requested_by: Annotated[str, typer.Option(help="Who asked, for the erasure record.")] = "operator",
) -> None:
    """Erase a person's personal data everywhere Patron keeps it; orders and statistics stay."""
    from patron.cif.view import resolve_customer  # noqa: PLC0415
    from patron.privacy.subject import erase_customer  # noqa: PLC0415
    from patron.settings import get_settings  # noqa: PLC0415

    engine = open_store()
    customer_id = resolve_customer(engine, customer)
    if not yes:
        console.print(f"customer {customer_id} would be erased; run again with --yes to do it (it cannot be undone)")
        raise typer.Exit(1)
    result = erase_customer(engine, customer_id, requested_by=requested_by, data_dir=get_settings().data_dir)
    console.print(
        f"customer {customer_id} erased (erasure record {result.erasure_id}): "
        f"{sum(result.rows.values())} rows in {len(result.rows)} tables, {len(result.files)} files redacted"
    )


@privacy_app.command("audit")
@reports_errors
def audit_export(
    to: Annotated[Path, typer.Option(help="CSV file to write.")] = Path("audit.csv"),
) -> None:
    """Export the audit log (who read or changed whose data, when, how) to CSV."""
    from patron.privacy.audit import export_audit  # noqa: PLC0415

    console.print(f"wrote {export_audit(open_store(), to):,} audit events to {to}")


@privacy_app.command("new-key")
def new_encryption_key() -> None:
    """Print a new key for PATRON_ENCRYPTION_KEY (keep it outside the data folder; without it, sealed text is lost)."""
    from patron.cif.sealed import new_key  # noqa: PLC0415

    console.print(new_key())


@privacy_app.command("seal")
@reports_errors
def seal() -> None:
    """Encrypt the personal free text written before PATRON_ENCRYPTION_KEY was set."""
    from patron.cif.sealed import seal_existing  # noqa: PLC0415

    sealed = seal_existing(open_store())
    console.print(f"sealed {sum(sealed.values()):,} values" + (f": {sealed}" if sealed else ""))
