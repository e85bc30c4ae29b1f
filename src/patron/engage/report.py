"""Campaign results as an experiment: response rates per arm, uplift against the control group with a 95 %
confidence interval and a two-sided p-value, spend per member, and ROI when costs are given.

Uplift = rate(arm) − rate(control). Its interval is the normal (Wald) interval of a difference of two independent
proportions, ± 1.96 × sqrt(p₁(1 − p₁)/n₁ + p₀(1 − p₀)/n₀); the p-value is the two-proportion z-test's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import norm
from sqlalchemy import Connection, Engine, Subquery, func, select

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.money import minor_unit
from patron.cif.store import id_by_key
from patron.engage.schema import CampaignContact, Offer
from patron.errors import InvalidInputError
from patron.settings import get_settings

CAMPAIGNS = table_of(s.Campaign)
MEMBERS = table_of(s.CampaignMember)
RESPONSES = table_of(s.CampaignResponse)
Z_95 = float(norm.ppf(0.975))


@dataclass(frozen=True)
class ArmResult:
    arm: str
    is_control: bool
    members: int
    responders: int
    rate: float
    uplift: float | None  # against the control; None for the control itself
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    value_per_member: float  # response value (e.g. spend), major units
    roi: float | None  # (incremental margin − contact cost) / contact cost


@dataclass(frozen=True)
class CampaignReport:
    campaign: str
    kind: str
    arms: list[ArmResult]


def campaign_id_of(engine: Engine, key: str) -> int:
    return id_by_key(engine, CAMPAIGNS.c.campaign_key, key, what="campaign", field="campaign")


def _responded(campaign_id: int, kind: str) -> Subquery:
    """customer_id, value_minor: who gave a response of ``kind`` to the campaign, with its value."""
    return (
        select(RESPONSES.c.customer_id, func.sum(func.coalesce(RESPONSES.c.value_minor, 0)).label("value_minor"))
        .where(RESPONSES.c.campaign_id == campaign_id, RESPONSES.c.kind == kind)
        .group_by(RESPONSES.c.customer_id)
        .subquery()
    )


def _value_unit(conn: Connection, campaign: str, campaign_id: int, kind: str) -> int:
    """Minor units per major unit of the responses' currency; values in two currencies are never added."""
    currencies = conn.scalars(
        select(RESPONSES.c.currency).where(RESPONSES.c.campaign_id == campaign_id, RESPONSES.c.kind == kind)
        .where(RESPONSES.c.currency.is_not(None)).distinct()
    ).all()  # fmt: skip
    if len(currencies) > 1:
        raise InvalidInputError(
            f"the {kind!r} responses of {campaign!r} are valued in {', '.join(sorted(currencies))}; "
            "amounts in different currencies are never added", field="kind",
        )  # fmt: skip
    return minor_unit(currencies[0] if currencies else get_settings().default_currency)


def campaign_report(
    engine: Engine, campaign: str, kind: str, *, contact_cost: float = 0.0, margin_rate: float | None = None
) -> CampaignReport:
    """Results of ``campaign`` for one response ``kind`` (e.g. visit, conversion, opened, clicked, bought)."""
    campaign_id = campaign_id_of(engine, campaign)
    responded = _responded(campaign_id, kind)
    query = (
        select(
            MEMBERS.c.arm,
            MEMBERS.c.is_control,
            func.count().label("members"),
            func.count(responded.c.customer_id).label("responders"),
            func.coalesce(func.sum(responded.c.value_minor), 0).label("value_minor"),
        )
        .select_from(MEMBERS.outerjoin(responded, responded.c.customer_id == MEMBERS.c.customer_id))
        .where(MEMBERS.c.campaign_id == campaign_id)
        .group_by(MEMBERS.c.arm, MEMBERS.c.is_control)
        .order_by(MEMBERS.c.is_control.desc(), MEMBERS.c.arm)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        unit = _value_unit(conn, campaign, campaign_id, kind)
    margin_rate = get_settings().default_margin_rate if margin_rate is None else margin_rate
    controls = [row for row in rows if row.is_control]
    if len(controls) > 1:
        raise InvalidInputError(f"campaign {campaign!r} has {len(controls)} control arms; uplift needs one")
    # Without a control group there are rates per arm but no uplift (a bandit wave, say).
    control = controls[0] if controls else None
    p0 = control.responders / control.members if control else 0.0
    control_value = control.value_minor / unit / control.members if control else 0.0
    arms = []
    for row in rows:
        rate = row.responders / row.members
        value = row.value_minor / unit / row.members
        if row.is_control or control is None:
            arms.append(
                ArmResult(
                    row.arm, row.is_control, row.members, row.responders, rate, None, None, None, None, value, None
                )
            )
            continue
        uplift = rate - p0
        se = math.sqrt(rate * (1 - rate) / row.members + p0 * (1 - p0) / control.members)
        pooled = (row.responders + control.responders) / (row.members + control.members)
        se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / row.members + 1 / control.members))
        p_value = float(2 * norm.sf(abs(uplift) / se_pooled)) if se_pooled > 0 else 1.0
        roi = None
        if contact_cost > 0:
            gained = (value - control_value) * margin_rate * row.members
            roi = (gained - contact_cost * row.members) / (contact_cost * row.members)
        arms.append(
            ArmResult(
                row.arm, False, row.members, row.responders, rate, uplift, uplift - Z_95 * se, uplift + Z_95 * se,
                p_value, value, roi,
            )
        )  # fmt: skip
    return CampaignReport(campaign, kind, arms)


@dataclass(frozen=True)
class OfferResult:
    offer: str  # "control" for the control group, "no offer" for contacts made without one
    contacted: int
    responders: int
    rate: float
    value_per_contact: float  # response value, major units


def offer_results(engine: Engine, campaign: str, kind: str) -> list[OfferResult]:
    """The results per offer made (contacts sent), beside the control group.

    Offers chosen per customer are not randomised between customers: a difference between two offers mixes the
    offer's effect with who was chosen for it; only each offer's group against the control is a fair comparison
    when the control was drawn from the same customers.
    """
    contacts, offers = table_of(CampaignContact), table_of(Offer)
    campaign_id = campaign_id_of(engine, campaign)
    responded = _responded(campaign_id, kind)
    query = (
        select(
            offers.c.name, contacts.c.status, func.count(), func.count(responded.c.customer_id),
            func.coalesce(func.sum(responded.c.value_minor), 0),
        )
        .select_from(
            contacts.outerjoin(offers, offers.c.id == contacts.c.offer_id)
            .outerjoin(responded, responded.c.customer_id == contacts.c.customer_id)
        )
        .where(contacts.c.campaign_id == campaign_id, contacts.c.status.in_(("sent", "control")))
        .group_by(offers.c.name, contacts.c.status)
    )  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        currency = conn.scalar(
            select(func.max(RESPONSES.c.currency)).where(
                RESPONSES.c.campaign_id == campaign_id, RESPONSES.c.kind == kind
            )
        )
    unit = minor_unit(currency or get_settings().default_currency)
    results = []
    for name, status, contacted, responders, value_minor in rows:
        label = "control" if status == "control" else (name or "no offer")
        results.append(
            OfferResult(label, contacted, responders, responders / contacted, value_minor / unit / contacted)
        )
    return sorted(results, key=lambda result: (result.offer != "control", -result.rate, result.offer))
