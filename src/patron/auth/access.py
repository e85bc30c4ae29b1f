"""Customer data as each role may see it: portfolios for managers, pseudonymised rows for analysts.

The API, the pages and the CLI read customers through these functions, never around them.
"""

from __future__ import annotations

import csv
import hashlib
import io
from typing import Any

from sqlalchemy import Engine, Select, func, select

from patron.auth.portfolio import check_visible, portfolio, visible_rows
from patron.auth.service import ForbiddenError, Principal, authorize
from patron.auth.trail import trail_for
from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.formats import safe_row
from patron.cif.ledger import audit
from patron.cif.parts import PartReads
from patron.cif.store import read_once_more
from patron.cif.view import (
    ORDER_SUMMARY,
    RECORD_READS,
    CustomerRecord,
    CustomerView,
    customer_view,
    every_customer,
    list_customers,
    record_from,
)
from patron.engage.sending import MessagePreview, preview_messages
from patron.errors import NotFoundError
from patron.value.latest import LATEST_SCORE
from patron.value.scoring import scores_page


def _marked_personal(model: type[s.Base]) -> frozenset[str]:
    """The columns the schema marks ``info={"pii": True}``: masking follows the marks, never a list kept here."""
    return frozenset(column.name for column in table_of(model).columns if column.info.get("pii"))


PERSONAL = {
    "customer": _marked_personal(s.Customer),
    "profile": _marked_personal(s.CustomerProfile),
    "interaction": _marked_personal(s.Interaction),
}


def _masked(row: dict[str, Any], personal: frozenset[str]) -> dict[str, Any]:
    return {key: (None if key in personal else value) for key, value in row.items()}


def pseudonym_of(customer_id: int) -> str:
    return "customer-" + hashlib.sha256(f"patron:{customer_id}".encode()).hexdigest()[:10]


def _record(engine: Engine, principal: Principal, action: str, customer_id: int | None, interface: str) -> None:
    audit(engine, actor=principal.username, interface=interface, action=action, entity="customer",
          entity_id=customer_id)  # fmt: skip


def customers_page(
    engine: Engine,
    principal: Principal,
    *,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
    among: Select[int] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the customers the principal may see (``among`` some ids: a segment's members), names masked."""
    authorize(principal, "read_customers")
    rows, total = list_customers(
        engine,
        search=search,
        limit=limit,
        offset=offset,
        within=portfolio(principal),
        among=among,
        search_personal_data=principal.sees_pii,
    )
    return masked_names(principal, rows, id_key="id", name_key="display_name"), total


def masked_names(
    principal: Principal, rows: list[dict[str, Any]], *, id_key: str = "customer_id", name_key: str = "name"
) -> list[dict[str, Any]]:
    """Rows naming customers, as the principal may see them: the one masking rule of lists, pages and the API.

    A role that may not read personal data sees each name replaced by the customer's stable pseudonym (the same
    in every list and export, so an analyst can follow a customer without knowing who they are).
    """
    if principal.sees_pii:
        return rows
    return [{**row, name_key: pseudonym_of(row[id_key])} for row in rows]


def duplicate_candidates_for(engine: Engine, principal: Principal, candidates: list[dict[str, Any]]) -> list[Any]:
    """Possible duplicates compare names and addresses side by side: only for roles that read personal data, and
    for a manager only groups within their portfolio."""
    if not principal.sees_pii:
        return []
    return visible_rows(engine, principal, candidates, keys=("first_id", "last_id"))


def run_scores_page(
    engine: Engine, principal: Principal, run_id: int, *, tier: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A score run's customers as the principal may see them (a manager: their portfolio's)."""
    authorize(principal, "read_customers")
    return scores_page(engine, run_id, tier=tier, within=portfolio(principal), limit=limit, offset=offset)


def _mask_record(record: CustomerRecord, customer_id: int) -> None:
    record.customer = {**_masked(record.customer, PERSONAL["customer"]), "display_name": pseudonym_of(customer_id)}
    # Source-system ids stay: they are how an analyst joins back to their own systems, never contact data.
    record.identities = [identity for identity in record.identities if identity["kind"] == "external"]
    record.profile = {k: v for k, v in record.profile.items() if k not in PERSONAL["profile"]}


def customer_360(engine: Engine, principal: Principal, customer_id: int, *, interface: str = "api") -> CustomerView:
    """The 360° view, if the principal may see this customer (else not found), masked for their role."""
    check_visible(engine, principal, customer_id)
    view = customer_view(engine, customer_id)
    if principal.sees_pii:
        trail_for(engine).record(principal.username, interface, customer_id)
        return view
    _mask_record(view, customer_id)
    view.interactions = [_masked(row, PERSONAL["interaction"]) for row in view.interactions]
    view.timeline = [entry for entry in view.timeline if "@" not in entry.summary]
    return view


_PROFILE = PartReads(**RECORD_READS, orders=ORDER_SUMMARY, value=LATEST_SCORE)  # one round trip on PostgreSQL


def customer_profile(
    engine: Engine, principal: Principal, customer_id: int, *, interface: str = "api"
) -> dict[str, Any]:
    """The real-time profile: C, consents, an order summary per currency and the latest value scores.

    A handful of indexed reads (no order or interaction history), so personalisation can call it per page view.
    """
    check_visible(engine, principal, customer_id)
    parts = read_once_more(engine, lambda conn: _PROFILE.fetch(conn, {"customer_id": customer_id}))
    record = record_from(parts, customer_id)
    if principal.sees_pii:
        trail_for(engine).record(principal.username, interface, customer_id)
    else:
        _mask_record(record, customer_id)
    value = parts["value"][0] if parts["value"] else None
    return {**vars(record), "orders": parts["orders"], "value": value}


EXPORTED = ["id", "display_name", "kind", "status", "source", "orders", "revenue_minor", "currency"]  # id first


def export_customers(
    engine: Engine, principal: Principal, *, interface: str = "api", among: Select[int] | None = None
) -> str:
    """All visible customers (``among`` some ids: a segment's members) as CSV; analysts get pseudonyms. Agents may
    not export."""
    authorize(principal, "export")
    names, rows = every_customer(engine, within=portfolio(principal), among=among)
    kept = [names.index(column) for column in EXPORTED]
    name_at = None if principal.sees_pii else EXPORTED.index("display_name")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORTED)
    for row in rows:
        values = [row[at] for at in kept]
        if name_at is not None:
            values[name_at] = pseudonym_of(values[0])
        writer.writerow(safe_row(values))
    _record(engine, principal, "export", None, interface)
    return buffer.getvalue()


def campaign_previews(engine: Engine, principal: Principal, key: str, *, sample: int = 3) -> list[MessagePreview]:
    """The messages a prepared campaign would send, for those who run campaigns (``manage_offers``); they hold names
    and offers, so a manager sees only the customers of their portfolio."""
    authorize(principal, "manage_offers")
    visible = []
    for preview in preview_messages(engine, key, sample=sample * 10):
        try:
            check_visible(engine, principal, preview.customer_id)
        except NotFoundError:
            continue
        visible.append(preview)
        if len(visible) == sample:
            break
    return visible


def check_campaign_within(engine: Engine, principal: Principal, key: str) -> None:
    """A manager sends or discards only a campaign all of whose members are their customers: one prepared by
    someone else over the whole base is not theirs to send."""
    scope = portfolio(principal)
    if scope is None:
        return
    members = table_of(s.CampaignMember)
    with engine.connect() as conn:
        outside = conn.scalar(
            select(func.count())
            .select_from(members)
            .join(s.Campaign.__table__, s.Campaign.__table__.c.id == members.c.campaign_id)
            .where(s.Campaign.__table__.c.campaign_key == key, members.c.customer_id.not_in(scope))
        )
    if outside:
        raise ForbiddenError(f"campaign {key!r} reaches customers outside your portfolio: an admin sends it")
