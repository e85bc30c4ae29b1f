"""Reading the CIF: customer lists and the 360° view of one customer, everything in time order."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    Select,
    bindparam,
    func,
    or_,
    select,
)

from patron.cif import schema as s
from patron.cif.ledger import no_such_customer
from patron.cif.money import format_money
from patron.cif.parts import PartReads
from patron.cif.schema import purchases_only
from patron.cif.sealed import encrypting
from patron.errors import NotFoundError

C = s.Customer.__table__.c
I = s.Identity.__table__.c  # noqa: E741
O = s.Order.__table__.c  # noqa: E741
L = s.OrderLine.__table__.c
P = s.table_of(s.CustomerProfile)
A = s.table_of(s.CustomerAttribute)
CONSENTS = s.table_of(s.Consent)


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str
    summary: str


@dataclass
class CustomerRecord:
    """C and the consents of one customer: what a real-time profile lookup needs, without the history."""

    customer: dict[str, Any]
    identities: list[dict[str, Any]]
    profile: dict[str, Any]
    attributes: dict[str, Any]
    consents: list[dict[str, Any]]


@dataclass
class CustomerView(CustomerRecord):
    """The record with the whole history: orders, interactions, campaigns and the merged timeline."""

    orders: list[dict[str, Any]]
    interactions: list[dict[str, Any]]
    campaigns: list[dict[str, Any]]
    timeline: list[TimelineEntry] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)  # per source and currency, from cif/facts.py

    @property
    def revenue_by_currency(self) -> dict[str, int]:
        """Revenue in minor units per currency: amounts in different currencies are never added up."""
        totals: dict[str, int] = {}
        for order in self.orders:
            totals[order["currency"]] = totals.get(order["currency"], 0) + order["revenue_minor"]
        return totals


def survivor_of(conn: Connection, customer_id: int) -> int:
    """The record a merged customer now lives in (following merges of merges); the customer itself otherwise."""
    seen = {customer_id}
    while (into := conn.scalar(select(C.merged_into_id).where(C.id == customer_id))) is not None and into not in seen:
        customer_id = int(into)
        seen.add(customer_id)
    return customer_id


def resolve_customer(engine: Engine, reference: str, *, by_email: bool = True) -> int:
    """A customer id from ``42``, ``system:external-id``, an e-mail address (unless not ``by_email``: a role that
    may not read personal data must not probe for addresses) or a bare id of one source."""
    reference = reference.strip()
    with engine.connect() as conn:
        # ASCII digits only ("²" is a digit to str.isdigit), and few enough to be a stored id.
        as_id = reference.isascii() and reference.isdigit() and len(reference) <= 18
        if as_id and conn.scalar(select(C.id).where(C.id == int(reference))) is not None:
            return survivor_of(conn, int(reference))
        found: list[int] = []
        if ":" in reference:  # system:external-id first: a source's ids may contain "@" ("crm:ann@shop")
            system, _, value = reference.partition(":")
            found = list(
                conn.scalars(select(I.customer_id).where(I.kind == "external", I.system == system, I.value == value))
            )
        if not found and by_email and "@" in reference:
            found = list(conn.scalars(select(I.customer_id).where(I.kind == "email", I.value == reference.lower())))
        if not found and ":" not in reference:  # a bare id of one source
            query = select(I.customer_id).where(I.kind == "external", I.value == reference).limit(2)
            found = list(conn.scalars(query))
        if len(set(found)) == 1:
            return survivor_of(conn, int(found[0]))
    if len(found) > 1:
        raise NotFoundError(f"{reference!r} matches customers in several sources; write it as system:id")
    raise no_customer_matches(reference)


def no_customer_matches(reference: str) -> NotFoundError:
    """The one answer for a reference that names nobody (or nobody the caller may see)."""
    return NotFoundError(f"no customer matches {reference!r}", field="customer")


def _matches(column: ColumnElement[str], search: str) -> ColumnElement[bool]:
    """Substring search, case-insensitive; encrypted names and identities match only as whole values."""
    if encrypting():
        return column.in_(sorted({search, search.lower()}))
    return func.lower(column).like(f"%{search.lower()}%")


def list_customers(
    engine: Engine,
    *,
    search: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
    within: Select[int] | None = None,
    among: Select[int] | None = None,
    search_personal_data: bool = True,
) -> tuple[list[dict[str, Any]], int]:
    """One page of customers with their order count and revenue, and the total matching.

    ``within`` limits the list to some customer ids (a manager's portfolio), ``among`` too (a segment's members);
    without ``search_personal_data`` the search looks at ids only, never at e-mail addresses, phone numbers or names.
    """
    matching = _matching(search=search, kind=kind, within=within, among=among, personal=search_personal_data)
    # The page's customers first, then the orders of those fifty only (not an aggregate of every order).
    page = matching.order_by(C.id).limit(limit).offset(offset)
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(matching.subquery())) or 0
        rows = [dict(row) for row in conn.execute(_summaries(page)).mappings()]
        keys = _source_keys(conn, [row["id"] for row in rows])
    return [{**row, "key": keys.get(row["id"], str(row["id"]))} for row in rows], total


def every_customer(
    engine: Engine, *, within: Select[int] | None = None, among: Select[int] | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Every customer (``within`` and ``among`` as for :func:`list_customers`) as the column names and one tuple per
    customer, in id order: what an export writes, read without a page's total or source keys."""
    query = _summaries(_matching(within=within, among=among))
    with engine.connect() as conn:
        result = conn.execute(query)
        return list(result.keys()), [tuple(row) for row in result]


def _matching(
    *,
    search: str | None = None,
    kind: str | None = None,
    within: Select[int] | None = None,
    among: Select[int] | None = None,
    personal: bool = True,
) -> Select[tuple[int]]:
    conditions = []
    if kind:
        conditions.append(C.kind == kind)
    for kept in (within, among):
        if kept is not None:
            conditions.append(C.id.in_(kept))
    if search:
        if personal:
            found = select(I.customer_id).where(_matches(I.value, search))
            conditions.append(or_(C.id.in_(found), _matches(C.display_name, search)))
        else:
            external = select(I.customer_id).where(I.kind == "external", _matches(I.value, search))
            conditions.append(C.id.in_(external))
    return select(C.id).where(*conditions)


def _summaries(customers: Select[tuple[int]]) -> Select[Any]:
    """The customers ``customers`` selects, in id order, each with their orders, revenue, last order and currency."""
    revenue = (
        select(
            O.customer_id,
            func.count(func.distinct(purchases_only(O.id))).label("orders"),
            func.coalesce(func.sum(L.revenue_minor), 0).label("revenue_minor"),
            func.max(purchases_only(O.ordered_at)).label("last_order"),
            func.min(O.currency).label("currency"),
            func.count(func.distinct(O.currency)).label("currencies"),
        )
        .join(s.OrderLine.__table__, L.order_id == O.id)
        .where(O.customer_id.in_(customers))
        .group_by(O.customer_id)
        .subquery()
    )
    return (
        select(
            C.id,
            C.display_name,
            C.kind,
            C.status,
            C.source,
            func.coalesce(revenue.c.orders, 0).label("orders"),
            func.coalesce(revenue.c.revenue_minor, 0).label("revenue_minor"),
            revenue.c.currency,
            revenue.c.last_order,
            func.coalesce(revenue.c.currencies, 0).label("currencies"),
            C.acquired_on,
        )
        .select_from(s.Customer.__table__.outerjoin(revenue, revenue.c.customer_id == C.id))
        .where(C.id.in_(customers))
        .order_by(C.id)
    )


def with_keys(engine: Engine, rows: list[dict[str, Any]], id_key: str = "customer_id") -> list[dict[str, Any]]:
    """Rows naming customers by id, each with the customer's ``key`` (``system:external-id``) to show and link."""
    with engine.connect() as conn:
        keys = _source_keys(conn, [int(row[id_key]) for row in rows if row.get(id_key) is not None])
    return [{**row, "key": keys.get(row[id_key], str(row[id_key]))} for row in rows]


def _source_keys(conn: Connection, ids: list[int]) -> dict[int, str]:
    """Each customer's first source record as ``system:external-id``: the key people quote (and URLs take)."""
    keys: dict[int, str] = {}
    if ids:
        rows = conn.execute(
            select(I.customer_id, I.system, I.value)
            .where(I.customer_id.in_(ids), I.kind == "external")
            .order_by(I.customer_id, I.id)
        )
        for customer, system, value in rows:
            keys.setdefault(int(customer), f"{system}:{value}")
    return keys


# Built once: constructing a statement costs several times what SQLite takes to run it, and profile lookups
# are the hot path of the API (bench/bench_api.py).
_ONE: BindParameter[int] = bindparam("customer_id", type_=BigInteger())
RECORD_READS = {
    "customer": select(s.Customer.__table__).where(C.id == _ONE),
    "identities": select(I.kind, I.system, I.value, I.verified).where(I.customer_id == _ONE).order_by(I.id),
    "profile": select(P).where(P.c.customer_id == _ONE),
    "attributes": select(A).where(A.c.customer_id == _ONE).order_by(A.c.key),
    "consents": select(CONSENTS).where(CONSENTS.c.customer_id == _ONE).order_by(CONSENTS.c.recorded_at),
}
ORDER_SUMMARY = (
    select(
        O.currency,
        func.count(func.distinct(purchases_only(O.id))).label("orders"),
        func.coalesce(func.sum(L.revenue_minor), 0).label("revenue_minor"),
        func.sum(L.margin_minor).label("margin_minor"),
        func.min(purchases_only(O.ordered_at)).label("first_order"),
        func.max(purchases_only(O.ordered_at)).label("last_order"),
    )
    .join(s.OrderLine.__table__, L.order_id == O.id)
    .where(O.customer_id == _ONE)
    .group_by(O.currency)
    .order_by(O.currency)
)  # orders, revenue and margin per currency (never added across currencies), first and last order
_RECORD = PartReads(**RECORD_READS)


def read_record(conn: Connection, customer_id: int) -> CustomerRecord:
    return record_from(_RECORD.fetch(conn, {"customer_id": customer_id}), customer_id)


def record_from(parts: dict[str, list[dict[str, Any]]], customer_id: int) -> CustomerRecord:
    """The record from the rows of ``RECORD_READS`` (read by ``PartReads``, alone or with other parts)."""
    if not parts["customer"]:
        raise no_such_customer(customer_id)
    attributes = {}
    for row in parts["attributes"]:
        attributes[row["key"]] = (
            row["value_text"]
            if row["value_type"] in ("text", "boolean")
            else (row["value_number"] if row["value_type"] == "number" else row["value_date"])
        )
    profile = parts["profile"][0] if parts["profile"] else {}
    return CustomerRecord(
        customer=parts["customer"][0],
        identities=parts["identities"],
        profile={k: v for k, v in profile.items() if v is not None and k not in ("customer_id", "updated_at")},
        attributes=attributes,
        consents=parts["consents"],
    )


def customer_view(engine: Engine, customer_id: int, *, with_facts: bool = True) -> CustomerView:
    """Everything the CIF holds about one customer: C, R and P, with a merged timeline; and, unless
    ``with_facts`` is false, their purchase facts per scope as the value lists see them (which needs Polars, a
    fifth of a second to import: a command that shows no facts skips them)."""
    with engine.connect() as conn:
        record = read_record(conn, customer_id)
        categories, products = s.Category.__table__.c, s.Product.__table__.c
        line_rows = conn.execute(
            select(
                O.id,
                O.order_key,
                O.ordered_at,
                O.channel,
                O.currency,
                L.line_no,
                L.quantity,
                L.revenue_minor,
                L.cost_minor,
                L.margin_minor,
                categories.name.label("category"),
                products.sku,
                products.name.label("product"),
            )
            .join(s.OrderLine.__table__, L.order_id == O.id)
            .outerjoin(s.Product.__table__, products.id == L.product_id)
            .outerjoin(s.Category.__table__, categories.id == func.coalesce(L.category_id, products.category_id))
            .where(O.customer_id == customer_id)
            .order_by(O.ordered_at, O.id, L.line_no)
        ).mappings()
        orders: dict[int, dict[str, Any]] = {}
        for row in line_rows:
            order = orders.setdefault(
                row["id"],
                {
                    "order_key": row["order_key"],
                    "ordered_at": row["ordered_at"],
                    "channel": row["channel"],
                    "currency": row["currency"],
                    "revenue_minor": 0,
                    "lines": [],
                },
            )
            order["revenue_minor"] += row["revenue_minor"]
            order["lines"].append(
                {
                    k: row[k]
                    for k in (
                        "line_no",
                        "quantity",
                        "revenue_minor",
                        "cost_minor",
                        "margin_minor",
                        "category",
                        "sku",
                        "product",
                    )
                }
            )
        interactions = [
            dict(r)
            for r in conn.execute(
                select(s.Interaction.__table__)
                .where(s.Interaction.customer_id == customer_id)
                .order_by(s.Interaction.occurred_at, s.Interaction.id)
            ).mappings()
        ]
        campaign = s.Campaign.__table__.c
        member = s.CampaignMember.__table__.c
        response = s.CampaignResponse.__table__.c
        campaigns = [
            dict(r)
            for r in conn.execute(
                select(
                    campaign.id,
                    campaign.name,
                    campaign.channel,
                    campaign.started_on,
                    member.arm,
                    member.is_control,
                )
                .join(s.CampaignMember.__table__, member.campaign_id == campaign.id)
                .where(member.customer_id == customer_id)
                .order_by(campaign.id)
            ).mappings()
        ]
        responses = (
            conn.execute(
                select(response.campaign_id, response.kind, response.value_minor, response.currency).where(
                    response.customer_id == customer_id
                )
            )
            .mappings()
            .all()
        )
    for entry in campaigns:
        entry["responses"] = [dict(r) for r in responses if r["campaign_id"] == entry["id"]]
    view = CustomerView(**vars(record), orders=list(orders.values()), interactions=interactions, campaigns=campaigns)
    view.timeline = _timeline(view)
    if with_facts:
        from patron.cif.facts import facts_of_customer  # noqa: PLC0415  (Polars, only when facts are shown)

        view.facts = facts_of_customer(engine, customer_id)
    return view


def _timeline(view: CustomerView) -> list[TimelineEntry]:
    entries = []
    if view.customer.get("acquired_on"):
        acquired = view.customer["acquired_on"]
        channel = view.customer.get("acquisition_channel") or "unknown channel"
        entries.append(TimelineEntry(dt.datetime.combine(acquired, dt.time()), "acquired", f"acquired via {channel}"))
    for order in view.orders:
        categories = sorted({line["category"] for line in order["lines"] if line["category"]})
        summary = f"order {order['order_key']}: {format_money(order['revenue_minor'], order['currency'])}"
        if categories:
            summary += f" ({', '.join(categories)})"
        entries.append(TimelineEntry(order["ordered_at"], "order", summary))
    for item in view.interactions:
        summary = f"{item['direction']} {item['type']} via {item['channel']}"
        if item.get("outcome"):
            summary += f": {item['outcome']}"
        entries.append(TimelineEntry(item["occurred_at"], "interaction", summary))
    for consent in view.consents:
        entries.append(
            TimelineEntry(
                consent["recorded_at"],
                "consent",
                f"{consent['status']} {consent['purpose']} by {consent['channel']}",
            )
        )
    return sorted(entries, key=lambda entry: entry.at)
