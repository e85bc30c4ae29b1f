"""What the API answers: one pydantic model per response body, so ``/openapi.json`` documents each of them.

Rows whose columns follow the store (a customer, a score, a list entry) are objects keyed by column name
(``Row``); the envelopes around them, and every answer built here, are spelled out field by field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel

Row = dict[str, Any]


class TokenOut(BaseModel):
    token: str
    role: str


class Me(BaseModel):
    username: str
    role: str


class Page(BaseModel):
    """One page of a longer list: ``total`` items match, ``limit`` from ``offset`` are here."""

    items: list[Row]
    total: int
    limit: int
    offset: int


class IdPage(BaseModel):
    items: list[int]
    total: int
    limit: int
    offset: int


class TimelineItem(BaseModel):
    at: dt.datetime
    kind: str
    summary: str


class Customer360(BaseModel):
    customer: Row
    identities: list[Row]
    profile: Row
    attributes: Row
    orders: list[Row]
    interactions: list[Row]
    consents: list[Row]
    campaigns: list[Row]
    timeline: list[TimelineItem]
    facts: list[Row]  # orders, revenue and recency per source and currency (cif/facts.py)


class Profile(BaseModel):
    customer: Row
    identities: list[Row]
    profile: Row
    attributes: Row
    consents: list[Row]
    orders: list[Row]  # per currency
    value: Row | None  # the latest scores, or none before the first score run


class ConversationContext(BaseModel):
    customer: Row
    scores: Row
    interactions: list[Row]
    open_cases: list[Row]
    orders: list[Row]
    consents: list[Row]
    next_question: str


class BestOffer(BaseModel):
    customer_id: int
    offer: str | None
    expected_value: float
    reason: str


class RecommendedProduct(BaseModel):
    product_id: int
    sku: str
    name: str
    price: str  # formatted in its currency
    unit_price_minor: int
    currency: str
    score: float


class Recommendations(BaseModel):
    customer_id: int
    basis: str  # personal | popular (no history: cold start) | none (no recommender trained yet)
    explanation: str
    model: str | None
    run_id: int | None
    items: list[RecommendedProduct]


class MessagePreviewOut(BaseModel):
    customer_id: int
    offer: str | None
    offer_reason: str | None
    subject: str
    body: str


class Ingested(BaseModel):
    created: int
    duplicates: int
    rejected: list[Row]
    triggers_fired: list[str]


class Created(BaseModel):
    id: int
    name: str


class Deleted(BaseModel):
    name: str


class Count(BaseModel):
    count: int
    customers: int


class ValueList(BaseModel):
    title: str
    note: str
    source: str | None
    as_of: dt.date
    total: int
    items: list[Row]


class CaseOpened(BaseModel):
    id: int
    sla_due_at: dt.datetime | None
    escalated: bool
    reason: str | None


class Status(BaseModel):
    status: str


class ConsentLedger(BaseModel):
    customer_id: int
    in_force: list[Row]
    records: list[Row]


class CampaignLive(BaseModel):
    campaign: str
    status: str
    contacts: dict[str, int]
    responses: dict[str, int]


class CampaignReport(BaseModel):
    campaign: str
    kind: str
    arms: list[Row]


class BudgetPlan(BaseModel):
    currency: str
    inputs: Row
    assumed_curves: bool
    best: Row
    equity_maximising: Row
    what_if: list[Row]
    retain_first: list[Row]


class PortfolioPlan(BaseModel):
    months: int
    segments: list[Row]
    frontier: list[Row]
    chosen: Row | None
    managers: list[Row]


class Pricing(BaseModel):
    segments: list[Row]
    most_deal_prone: list[Row]


class Network(BaseModel):
    customers: int
    links: int
    sources: dict[str, int]
    communities: int
    modularity: float | None
    assortativity: float | None
    assortativity_note: str
    influencers: list[Row]
    clusters: list[Row]


class LinksAdded(BaseModel):
    created: int
    duplicates: int
    rejected: list[Row]


class SegmentOut(BaseModel):
    id: int
    name: str
    expression: str
    description: str | None
    fields: list[str]
    member_count: int | None
    evaluated_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ScoreRunOut(BaseModel):
    id: int
    created_at: dt.datetime
    as_of: dt.date
    source: str
    model: str
    period: str
    currency: str
    horizon_months: int
    annual_discount_rate: float
    default_margin_rate: float
    parameters: dict[str, Any]
    log_likelihood: float | None
    customers: int
    excluded: dict[str, Any]
    tier_cuts: list[float]
    note: str | None
    fit_notes: list[str] | None = None  # the model choice, boundary estimates answered by a limit, fallbacks


class CohortRetentionOut(BaseModel):
    cohort: str
    customers: int
    churned: int
    alpha: float | None  # None in the geometric limit (one cancellation probability for all)
    beta: float | None
    retention: list[float]
    survival: list[float]
    mean_residual_lifetime: float | None
    note: str | None


class Retention(BaseModel):
    cohorts: list[CohortRetentionOut]
    residual_value: float | None  # Σ DERL × charge × margin over the active customers
    left_out: dict[str, int]


class SegmentElasticityOut(BaseModel):
    segment: str
    elasticity: float
    low: float
    high: float
    lines: int
    products: int
    customers: int


class Elasticity(BaseModel):
    source: str | None
    currency: str
    segments: list[SegmentElasticityOut]


class QueuedCase(BaseModel):
    id: int
    customer_id: int
    kind: str
    category: str | None
    subject: str
    priority: str
    channel: str
    status: str
    agent: str | None  # assigned to
    opened_at: dt.datetime
    sla_due_at: dt.datetime
    contacts: int
    reopened: int
    escalated: bool
    escalation_reason: str | None


class CampaignOut(BaseModel):
    key: str
    name: str
    channel: str | None
    source: str
    started_on: dt.date | None
    members: int
    status: str
    responses: dict[str, int]


class OfferOut(BaseModel):
    id: int
    name: str
    description: str | None
    margin: float  # in major units of the offer's currency
    margin_minor: int
    currency: str
    channel: str | None
    eligibility: str | None
    valid_from: dt.date | None
    valid_to: dt.date | None
    created_at: dt.datetime


class MatchOut(BaseModel):
    """What identity matching decided for a record: ``joined`` an existing customer, ``review``, or ``created``."""

    outcome: str
    customer_id: int | None
    probability: float | None
    weight: float | None
    agreed: list[str]


class ArrivalOut(BaseModel):
    customer_id: int
    outcome: str  # created, joined, review, updated, unchanged
    problems: list[str]


class ReviewOut(BaseModel):
    id: int
    left_id: int
    right_id: int
    probability: float
    weight: float
    status: str
    fields: list[Row]  # field, left, right, comparison


class ReviewsOut(BaseModel):
    open: int
    items: list[ReviewOut]


class MergeOut(BaseModel):
    id: int
    survivor_id: int
    merged_id: int
    how: str
    match_probability: float | None
    match_weight: float | None
    agreed: list[str]
    rule: str
    merged_at: dt.datetime
    split_at: dt.datetime | None
