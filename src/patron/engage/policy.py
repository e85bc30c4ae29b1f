"""The contact policy, checked before anything is sent; every refusal comes with its reason.

In order: the customer is contactable at all (not churned, anonymised or merged); the plan does not suppress their
tier; they granted consent for this channel and purpose (the newest consent record counts, so a withdrawal takes
effect at once); they have not had as many contacts on this channel in the last 30 days as they asked for at most;
and the firm's own frequency cap across campaigns is not reached.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from sqlalchemy import BindParameter, Engine, bindparam, func, select

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.parts import PartReads
from patron.cif.store import read_once_more
from patron.value.latest import SCORES, latest_scores_statement

CUSTOMERS = table_of(s.Customer)
CONSENTS = table_of(s.Consent)
PREFERENCES = table_of(s.ContactPreference)
INTERACTIONS = table_of(s.Interaction)
FREQUENCY_CAP = 4  # outbound marketing contacts per customer per 30 days, across campaigns and channels
UNCONTACTABLE = ("churned", "anonymised", "merged")


# Built once with expanding parameters: a real-time next-best-offer lookup checks one customer per request.
_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
_STATUS = select(CUSTOMERS.c.id, CUSTOMERS.c.status).where(CUSTOMERS.c.id.in_(_IDS))
_CONSENTS = (
    select(CONSENTS.c.customer_id, CONSENTS.c.status)
    .where(
        CONSENTS.c.customer_id.in_(_IDS),
        CONSENTS.c.channel == bindparam("channel"),
        CONSENTS.c.purpose == bindparam("purpose"),
    )
    .order_by(CONSENTS.c.recorded_at, CONSENTS.c.id)
)
_ASKED = select(PREFERENCES.c.customer_id, PREFERENCES.c.max_per_month).where(
    PREFERENCES.c.customer_id.in_(_IDS), PREFERENCES.c.channel == bindparam("channel")
)
_RECENT = (
    select(INTERACTIONS.c.customer_id, INTERACTIONS.c.channel, func.count().label("contacts"))
    .where(
        INTERACTIONS.c.customer_id.in_(_IDS),
        INTERACTIONS.c.direction == "outbound",
        INTERACTIONS.c.type == "campaign_contact",
        INTERACTIONS.c.occurred_at > bindparam("since"),
    )
    .group_by(INTERACTIONS.c.customer_id, INTERACTIONS.c.channel)
)
_TIERS = latest_scores_statement(SCORES.customer_id.in_(_IDS))


_READS = PartReads(status=_STATUS, consents=_CONSENTS, asked=_ASKED, recent=_RECENT)
_WITH_TIERS = PartReads(**_READS.statements, tiers=_TIERS)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def check_contacts(
    engine: Engine,
    customer_ids: Iterable[int],
    *,
    channel: str,
    purpose: str = "marketing",
    suppress_tiers: Iterable[str] = (),
    now: dt.datetime | None = None,
    frequency_cap: int = FREQUENCY_CAP,
) -> dict[int, Decision]:
    ids = list(customer_ids)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    month_ago = now - dt.timedelta(days=30)
    suppressed = set(suppress_tiers)
    decisions: dict[int, Decision] = {}
    reads = _WITH_TIERS if suppressed else _READS
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        given = {"ids": chunk, "channel": channel, "purpose": purpose, "since": month_ago}
        found = read_once_more(engine, partial(reads.fetch, parameters=given))  # one round trip on PostgreSQL
        status = {row["id"]: row["status"] for row in found["status"]}
        # ordered oldest first: the last one seen is in force
        consent: dict[int, str] = {row["customer_id"]: row["status"] for row in found["consents"]}
        asked = {row["customer_id"]: row["max_per_month"] for row in found["asked"]}
        on_channel: dict[int, int] = {}
        overall: dict[int, int] = {}
        for row in found["recent"]:
            customer, count = row["customer_id"], int(row["contacts"])
            overall[customer] = overall.get(customer, 0) + count
            if row["channel"] == channel:
                on_channel[customer] = count
        tiers = {row["customer_id"]: row["tier"] for row in found.get("tiers", [])}
        for customer in chunk:
            decisions[customer] = _decide(
                status.get(customer), tiers.get(customer), suppressed, consent.get(customer), asked.get(customer),
                on_channel.get(customer, 0), overall.get(customer, 0), channel, purpose, frequency_cap,
            )  # fmt: skip
    return decisions


def _decide(  # noqa: PLR0917
    status: str | None,
    tier: str | None,
    suppressed: set[str],
    consent: str | None,
    max_per_month: int | None,
    on_channel: int,
    overall: int,
    channel: str,
    purpose: str,
    cap: int,
) -> Decision:
    if status is None:
        return Decision(False, "unknown customer")
    if status in UNCONTACTABLE:
        return Decision(False, f"customer is {status}")
    if tier is not None and tier in suppressed:
        return Decision(False, f"tier {tier} is suppressed by the plan")
    if consent != "granted":
        state = "withdrawn" if consent else "not given"
        return Decision(False, f"{channel} consent for {purpose} {state}")
    if max_per_month is not None and on_channel >= max_per_month:
        return Decision(False, f"asked for at most {max_per_month} {channel} contacts a month")
    if overall >= cap:
        return Decision(False, f"frequency cap: {overall} contacts in the last 30 days")
    return Decision(True, "allowed")
