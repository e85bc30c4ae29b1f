"""``patron cases``, ``patron kb`` and ``patron context``: the service desk from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from patron.cli.shared import console, open_store, print_rows, reports_errors

cases_app = typer.Typer(
    help="Service cases: open, assign, update, resolve, reopen; the work queue and metrics.", no_args_is_help=True
)
kb_app = typer.Typer(help="Knowledge base: add and search articles, suggestions for a case.", no_args_is_help=True)


@cases_app.command("open")
@reports_errors
def open_command(
    customer: str,
    subject: str,
    *,
    kind: Annotated[str, typer.Option(help="complaint, request or question")] = "request",
    description: str | None = None,
    category: str | None = None,
    priority: str = "normal",
    channel: str = "phone",
    agent: str | None = None,
) -> None:
    """Open a case for a customer (id, system:id or e-mail)."""
    from patron.cif.view import resolve_customer  # noqa: PLC0415
    from patron.service.cases import open_case  # noqa: PLC0415

    engine = open_store()
    opened = open_case(
        engine, resolve_customer(engine, customer), subject=subject, kind=kind, description=description,
        category=category, priority=priority, channel=channel, agent=agent,
    )  # fmt: skip
    console.print(f"case {opened.id} opened; due {opened.sla_due_at:%Y-%m-%d %H:%M}")
    if opened.escalated:
        console.print(f"[bold]escalated[/bold]: {opened.escalation_reason}; owner {opened.assigned_to or 'unassigned'}")


@cases_app.command("queue")
@reports_errors
def queue(agent: str | None = None, limit: int = 20) -> None:
    """Open cases: escalated first, then by due time."""
    from patron.service.cases import work_queue  # noqa: PLC0415

    print_rows(
        work_queue(open_store(), agent=agent, limit=limit),
        ("case", "customer", "kind", "subject", "priority", "due", "agent", "escalated"),
        lambda row: (
            str(row["id"]), str(row["customer_id"]), row["kind"], row["subject"], row["priority"],
            f"{row['sla_due_at']:%Y-%m-%d %H:%M}", row["agent"] or "", "yes" if row["escalated"] else "",
        ),
        empty="the queue is empty",
    )  # fmt: skip


@cases_app.command("show")
@reports_errors
def show(case: int) -> None:
    """One case with its suggested knowledge-base articles."""
    from patron.service.cases import get_case  # noqa: PLC0415
    from patron.service.knowledge import suggest_for_case  # noqa: PLC0415

    engine = open_store()
    for key, value in get_case(engine, case).items():
        console.print(f"  {key}: {value}")
    for article in suggest_for_case(engine, case):
        console.print(f"  suggested article {article['id']}: {article['title']}")


@cases_app.command("assign")
@reports_errors
def assign(case: int, agent: str) -> None:
    from patron.service.cases import assign_case  # noqa: PLC0415

    assign_case(open_store(), case, agent)
    console.print(f"case {case} assigned to {agent}")


@cases_app.command("note")
@reports_errors
def note(
    case: int, text: str, contact: Annotated[bool, typer.Option(help="This was a contact with the customer.")] = False
) -> None:
    from patron.service.cases import update_case  # noqa: PLC0415

    update_case(open_store(), case, note=text, customer_contact=contact)
    console.print(f"case {case} updated")


@cases_app.command("resolve")
@reports_errors
def resolve(case: int, resolution: str) -> None:
    from patron.service.cases import resolve_case  # noqa: PLC0415

    resolve_case(open_store(), case, resolution)
    console.print(f"case {case} resolved")


@cases_app.command("reopen")
@reports_errors
def reopen(case: int, reason: str) -> None:
    from patron.service.cases import reopen_case  # noqa: PLC0415

    reopen_case(open_store(), case, reason)
    console.print(f"case {case} reopened")


@cases_app.command("agent")
@reports_errors
def agent(username: str, name: str, role: str = "agent") -> None:
    """Add an agent (role agent or manager)."""
    from patron.service.cases import create_agent  # noqa: PLC0415

    create_agent(open_store(), username, name, role)
    console.print(f"agent {username} added")


@cases_app.command("from-complaints")
@reports_errors
def from_complaints(source: str = "cfpb") -> None:
    """Open a case for every imported complaint interaction that has none."""
    from patron.service.complaints import cases_from_complaints  # noqa: PLC0415

    console.print(f"{cases_from_complaints(open_store(), source=source):,} cases opened")


@cases_app.command("metrics")
@reports_errors
def metrics(html: Annotated[Path | None, typer.Option(help="Write the plot to this HTML file.")] = None) -> None:
    """Complaints per day, first-contact resolution, cycle time and backlog."""
    from patron.service.metrics import daily_service_metrics, service_figure  # noqa: PLC0415

    frame = daily_service_metrics(open_store())
    console.print(frame)
    if html is not None:
        service_figure(frame).write_html(html, include_plotlyjs=True)
        console.print(f"wrote the plot to {html}")


@kb_app.command("add")
@reports_errors
def kb_add(title: str, body: str, category: str | None = None, segment: str | None = None) -> None:
    from patron.service.knowledge import add_article  # noqa: PLC0415

    console.print(f"article {add_article(open_store(), title, body, category=category, segment=segment)} added")


@kb_app.command("search")
@reports_errors
def kb_search(query: str, limit: int = 5) -> None:
    from patron.service.knowledge import search_articles  # noqa: PLC0415

    found = search_articles(open_store(), query, limit=limit)
    if not found:
        console.print("no article matches every word; try fewer words")
    for article in found:
        console.print(f"{article['id']}: {article['title']}")


def context(customer: str) -> None:
    """Everything for a live call: recent interactions, open cases, purchases, consents, the next question."""
    from patron.cif.money import format_money  # noqa: PLC0415
    from patron.cif.view import resolve_customer  # noqa: PLC0415
    from patron.service.context import conversation_context  # noqa: PLC0415

    engine = open_store()
    result = conversation_context(engine, resolve_customer(engine, customer))
    name = result.customer["display_name"] or f"customer {result.customer['id']}"
    console.print(f"[bold]{name}[/bold] ({result.customer['status']}); scores: {result.scores or 'none yet'}")
    console.print(f"[bold]ask[/bold]: {result.next_question}")
    for case in result.open_cases:
        console.print(
            f"  open case {case['id']}: {case['subject']} ({case['priority']}, due {case['sla_due_at']:%Y-%m-%d})"
        )
    for row in result.interactions[:10]:
        when = f"{row['occurred_at']:%Y-%m-%d %H:%M}"
        console.print(f"  {when} {row['channel']} {row['direction']} {row['type']} {row['outcome'] or ''}")
    for order in result.orders:
        console.print(
            f"  order {order['ordered_at']:%Y-%m-%d}: {format_money(order['revenue_minor'], order['currency'])}"
        )
    console.print(f"  ({result.milliseconds:.1f} ms)")
