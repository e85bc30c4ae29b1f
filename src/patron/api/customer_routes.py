"""Customers as the caller may see them: the list, the export, the 360° view, the real-time profile, the
conversation context for a live call, the next-best offer and the recommended products."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from patron.api.schemas import (
    BestOffer,
    ConversationContext,
    Customer360,
    Page,
    Profile,
    Recommendations,
    RecommendedProduct,
    TimelineItem,
)
from patron.auth.access import customer_360, customer_profile, customers_page, export_customers
from patron.auth.portfolio import check_visible
from patron.engage.offers import OfferChoice, next_best_offer
from patron.engage.recommendations import recommendations_for
from patron.http.common import Caller, CustomerId, ManageCases, Paged, Store, on_store
from patron.service.context import conversation_context

router = APIRouter(prefix="/api")


@router.get("/customers", tags=["customers"])
def customers(
    store: Store,
    principal: Caller,
    paging: Paged,
    search: Annotated[str | None, Query(max_length=100)] = None,
) -> Page:
    """Customers the caller may see, searchable by id, e-mail, phone or name (analysts: by id only)."""
    rows, total = customers_page(store, principal, search=search, limit=paging.limit, offset=paging.offset)
    return Page(items=rows, total=total, **paging.window)


@router.get("/customers/export.csv", tags=["customers"], response_class=PlainTextResponse)
def export(store: Store, principal: Caller) -> str:
    return export_customers(store, principal)


@router.get("/customers/{customer_id}", tags=["customers"])
def customer(customer_id: CustomerId, store: Store, principal: Caller) -> Customer360:
    """The 360° view: identities, profile, attributes, orders, interactions, consents, campaigns, timeline."""
    view = customer_360(store, principal, customer_id)
    return Customer360(
        customer=view.customer, identities=view.identities, profile=view.profile, attributes=view.attributes,
        orders=view.orders[-100:], interactions=view.interactions[-100:], consents=view.consents,
        campaigns=view.campaigns, facts=view.facts,
        timeline=[TimelineItem(at=e.at, kind=e.kind, summary=e.summary) for e in view.timeline[-100:]],
    )  # fmt: skip


# The two real-time lookups are coroutines that choose where their reads run (common.on_store).
@router.get("/customers/{customer_id}/profile", tags=["customers"])
async def profile(customer_id: CustomerId, store: Store, principal: Caller) -> Profile:
    """The real-time profile: who they are, consents, orders per currency and latest value scores (no history)."""
    return Profile(**await on_store(store, lambda: customer_profile(store, principal, customer_id)))


@router.get("/customers/{customer_id}/context", tags=["service"])
def context(customer_id: CustomerId, store: Store, principal: ManageCases) -> ConversationContext:
    """For a live call: last interactions, open cases, recent purchases, consents, the next question."""
    check_visible(store, principal, customer_id)  # the same visibility rules as the 360° view
    result = conversation_context(store, customer_id)
    return ConversationContext(
        customer=result.customer, scores=result.scores, interactions=result.interactions,
        open_cases=result.open_cases, orders=result.orders, consents=result.consents,
        next_question=result.next_question,
    )  # fmt: skip


@router.get("/customers/{customer_id}/next-best-offer", tags=["offers"])
async def best_offer(
    customer_id: CustomerId, store: Store, principal: Caller, channel: Annotated[str, Query(max_length=32)] = "email"
) -> BestOffer:
    """The eligible offer with the highest P(accept) × margin that the contact policy allows, with the reason."""

    def lookup() -> OfferChoice:
        check_visible(store, principal, customer_id)  # the same visibility rules as the 360° view
        return next_best_offer(store, customer_id, channel=channel)

    choice = await on_store(store, lookup)
    return BestOffer(
        customer_id=customer_id, offer=choice.offer, expected_value=choice.expected_value, reason=choice.reason
    )


@router.get("/customers/{customer_id}/recommendations", tags=["offers"])
def recommendations(
    customer_id: CustomerId, store: Store, principal: Caller, k: Annotated[int, Query(ge=1, le=50)] = 10
) -> Recommendations:
    """The products the latest recommender chose for this customer (not yet bought), or the popular ones for a
    customer with no history, with the basis said."""
    check_visible(store, principal, customer_id)  # the same visibility rules as the 360° view
    found = recommendations_for(store, customer_id, k=k)
    return Recommendations(
        customer_id=customer_id, basis=found.basis, explanation=found.explanation, model=found.model,
        run_id=found.run_id,
        items=[
            RecommendedProduct(
                product_id=item.product_id, sku=item.sku, name=item.name, price=item.price,
                unit_price_minor=item.unit_price_minor, currency=item.currency, score=item.score,
            )
            for item in found.items
        ],
    )  # fmt: skip
