"""Rule segments: the list, a new segment, a rule's live count, and a segment's members."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from patron.api.schemas import Count, Created, Deleted, IdPage, SegmentOut
from patron.auth.portfolio import portfolio
from patron.http.common import LongText, ManageSegments, Paged, ReadCustomers, ShortText, Store
from patron.segments.rules import (
    create_segment,
    delete_segment,
    evaluate_segments,
    list_segments,
    preview,
    segment_members,
    segment_named,
    update_segment,
)

router = APIRouter(prefix="/api")


class SegmentIn(BaseModel):
    name: ShortText
    rule: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]
    description: LongText | None = None


class RuleIn(BaseModel):
    rule: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]


@router.get("/segments", tags=["segments"])
def segments(store: Store, principal: ReadCustomers) -> list[SegmentOut]:
    return [SegmentOut(**row) for row in list_segments(store, within=portfolio(principal))]


@router.post("/segments", tags=["segments"], status_code=201)
def new_segment(body: SegmentIn, store: Store, principal: ManageSegments) -> Created:
    return Created(id=create_segment(store, body.name, body.rule, body.description), name=body.name)


@router.put("/segments/{name}", tags=["segments"])
def edit_segment(
    name: Annotated[str, Path(max_length=100)], body: RuleIn, store: Store, principal: ManageSegments
) -> SegmentOut:
    """Change a segment's rule; its members are counted again at once."""
    update_segment(store, name, body.rule, actor=principal.username, interface="api")
    evaluate_segments(store, names=[name])
    edited = segment_named(store, name, within=portfolio(principal))
    assert edited is not None  # update_segment refused an unknown name
    return SegmentOut(**edited)


@router.delete("/segments/{name}", tags=["segments"])
def remove_segment(name: Annotated[str, Path(max_length=100)], store: Store, principal: ManageSegments) -> Deleted:
    """Delete a segment and its members (campaigns planned from it keep their copy of the rule)."""
    delete_segment(store, name, actor=principal.username, interface="api")
    return Deleted(name=name)


@router.post("/segments/preview", tags=["segments"])
def preview_segment(body: RuleIn, store: Store, principal: ReadCustomers) -> Count:
    """The live count of a rule (the segment builder calls this as you type)."""
    result = preview(store, body.rule, sample=0, within=portfolio(principal))
    return Count(count=result.count, customers=result.customers)


@router.get("/segments/{name}/members", tags=["segments"])
def members(
    name: Annotated[str, Path(max_length=100)],
    store: Store,
    principal: ReadCustomers,
    paging: Paged,
) -> IdPage:
    ids, total = segment_members(store, name, **paging.window, within=portfolio(principal))
    return IdPage(items=ids, total=total, **paging.window)
