"""Consents and offers over the API: a preference centre records grants and withdrawals; marketers list and add
offers (the next-best offer itself is a customer lookup in routes.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from patron.api.schemas import ConsentLedger, Created, OfferOut
from patron.auth.portfolio import check_visible
from patron.engage.consent import consent_ledger, record_consent
from patron.engage.offers import create_offer, list_offers
from patron.http.common import (
    Caller,
    CustomerId,
    LongText,
    ManageOffers,
    ReadCustomers,
    RecordConsent,
    ShortText,
    Store,
)

router = APIRouter(prefix="/api")
Word = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


class ConsentIn(BaseModel):
    channel: Word
    purpose: Word = "marketing"
    status: Literal["granted", "withdrawn"]
    source: Word = "api"
    wording_version: Annotated[str, Field(max_length=64, pattern=r"^[^\x00]*$")] | None = None


class OfferIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$")]
    margin: Annotated[float, Field(ge=0, le=1e9)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None  # default: the settings' currency
    description: LongText | None = None
    eligibility: ShortText | None = None
    channel: Word | None = None


@router.get("/customers/{customer_id}/consents", tags=["consents"])
def consents(customer_id: CustomerId, store: Store, principal: Caller) -> ConsentLedger:
    """The consent ledger, oldest first, and what is in force per channel and purpose (the newest record)."""
    check_visible(store, principal, customer_id)
    return ConsentLedger(**consent_ledger(store, customer_id))


@router.post("/customers/{customer_id}/consents", tags=["consents"], status_code=201)
def new_consent(customer_id: CustomerId, body: ConsentIn, store: Store, principal: RecordConsent) -> ConsentLedger:
    """Record a grant or a withdrawal; the ledger keeps every record, and a withdrawal stops sends at once."""
    check_visible(store, principal, customer_id)
    record_consent(
        store, customer_id, channel=body.channel, purpose=body.purpose, status=body.status, source=body.source,
        wording_version=body.wording_version,
    )  # fmt: skip
    return ConsentLedger(**consent_ledger(store, customer_id))


@router.get("/offers", tags=["offers"])
def offers(store: Store, principal: ReadCustomers) -> list[OfferOut]:
    """Every offer, newest first."""
    return [OfferOut(**row) for row in list_offers(store)]


@router.post("/offers", tags=["offers"], status_code=201)
def new_offer(body: OfferIn, store: Store, principal: ManageOffers) -> Created:
    """A new offer (its eligibility is a segment rule); customers' stored decisions are redone by the next
    `decide-offers` run, and lookups work live until then."""
    offer_id = create_offer(
        store, body.name, margin=body.margin, currency=body.currency, description=body.description,
        eligibility=body.eligibility, channel=body.channel,
    )  # fmt: skip
    return Created(id=offer_id, name=body.name)
