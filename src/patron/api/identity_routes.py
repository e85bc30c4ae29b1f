"""Identity resolution over the API: a customer record arriving (matched in the same call), what a record would
match, the review queue and its decisions, a customer's merges and their undoing (docs/IDENTITY.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from patron.api.schemas import ArrivalOut, MatchOut, MergeOut, ReviewOut, ReviewsOut
from patron.auth.portfolio import check_visible
from patron.cif.identity import actions
from patron.cif.identity.arrivals import receive_customer
from patron.cif.identity.review import ReviewPair
from patron.http.common import CustomerId, ImportData, Paged, ReadCustomers, ResolveIdentities, Store

router = APIRouter(prefix="/api")
Text = Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")]
Id = Annotated[int, Path(ge=1, le=2**53)]


class PersonIn(BaseModel):
    """The fields identity matching compares (all optional; at least one must be given to match)."""

    first_name: Text | None = None
    last_name: Text | None = None
    email: Text | None = None
    phone: Text | None = None
    birth_date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    street: Text | None = None
    postal_code: Text | None = None
    city: Text | None = None


class CustomerIn(PersonIn):
    system: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    external_id: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00\r\n]*$")]
    display_name: Text | None = None
    region: Text | None = None
    country: Text | None = None


class DecisionIn(BaseModel):
    decision: Literal["accept", "reject"]


@router.post("/customers", tags=["identity"], status_code=201)
def receive(body: CustomerIn, store: Store, principal: ImportData) -> ArrivalOut:
    """Create or update a customer; a new one is matched against the file at once and joined to its match
    (``joined``), queued for review (``review``) or kept (``created``)."""
    fields = body.model_dump(exclude={"system", "external_id"}, exclude_none=True)
    arrival = receive_customer(store, system=body.system, external_id=body.external_id, fields=fields,
                               actor=principal.username)  # fmt: skip
    return ArrivalOut(customer_id=arrival.customer_id, outcome=arrival.outcome, problems=arrival.problems)


@router.post("/identity/match", tags=["identity"])
def match(body: PersonIn, store: Store, principal: ResolveIdentities) -> MatchOut:
    """Which stored customer this record would join (nothing is written)."""
    decision = actions.match(store, body.model_dump(exclude_none=True))
    return MatchOut(outcome=decision.outcome, customer_id=decision.other_id, probability=decision.probability,
                    weight=decision.weight, agreed=list(decision.agreed))  # fmt: skip


def _review(pair: ReviewPair) -> ReviewOut:
    fields: list[dict[str, Any]] = [
        {"field": name, "left": left, "right": right, "comparison": level} for name, left, right, level in pair.fields
    ]
    return ReviewOut(id=pair.id, left_id=pair.left_id, right_id=pair.right_id, probability=pair.probability,
                     weight=pair.weight, status=pair.status, fields=fields)  # fmt: skip


@router.get("/identity/reviews", tags=["identity"])
def reviews(store: Store, principal: ResolveIdentities, paging: Paged) -> ReviewsOut:
    """The open pairs of the review band, likeliest first, both records field by field."""
    found = actions.overview(store, limit=paging.limit, offset=paging.offset)
    return ReviewsOut(open=found.open_reviews, items=[_review(pair) for pair in found.pairs])


@router.post("/identity/reviews/{review_id}", tags=["identity"])
def decide(review_id: Id, body: DecisionIn, store: Store, principal: ResolveIdentities) -> ReviewOut:
    """Accept (merge the two records) or reject (keep them apart); the decision trains the next model."""
    pair = actions.decide_review(store, review_id, body.decision, actor=principal.username, interface="api")
    return _review(pair)


@router.get("/customers/{customer_id}/merges", tags=["identity"])
def merges(customer_id: CustomerId, store: Store, principal: ReadCustomers) -> list[MergeOut]:
    """The merges the customer took part in (as survivor or as the merged record), oldest first."""
    check_visible(store, principal, customer_id)
    return [MergeOut(**row) for row in actions.history(store, customer_id)]


@router.post("/identity/merges/{merge_id}/split", tags=["identity"])
def split(merge_id: Id, store: Store, principal: ResolveIdentities) -> MergeOut:
    """Undo a merge exactly: the merged record gets back every row it had."""
    undone = actions.split_merge(store, merge_id=merge_id, actor=principal.username, interface="api")
    (row,) = [m for m in actions.history(store, undone.merged_id) if m["id"] == undone.merge_id]
    return MergeOut(**row)
