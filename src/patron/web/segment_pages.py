"""Segment pages: the builder with its live count, the saved segments with size and trend, one segment's members
(paged, searchable, exported as CSV by the roles allowed to export), its rule edited or the segment deleted, and
the way into a campaign (segment evolution and the clustering runs: ``evolution_pages``).

Each action goes through ``segments.rules`` as the API and CLI do; a form that cannot be taken comes back with the
reason beside its field and what was typed, nothing written.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from patron.auth.access import customers_page, export_customers
from patron.auth.portfolio import portfolio
from patron.auth.service import Principal, authorize
from patron.cif.facts import main_scope
from patron.cif.stamp import StillComputing, waiting_at_most
from patron.errors import PatronError
from patron.http.common import STATUS, FragmentViewer, Viewer, engine_of
from patron.segments.rules import (
    create_segment,
    delete_segment,
    evaluate_segments,
    list_segments,
    members_query,
    preview,
    segment_id,
    segment_named,
    size_history,
    update_segment,
)
from patron.settings import get_settings
from patron.web.render import fragment, page

router = APIRouter(include_in_schema=False)
SegmentName = Annotated[str, Path(max_length=100)]
PAGE_SIZE = 50


@router.get("/segments", response_model=None)
def segments(
    request: Request,
    principal: Viewer,
    saved: Annotated[str | None, Query(max_length=100)] = None,
    deleted: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    notice = f"Segment {saved!r} saved." if saved else (f"Segment {deleted!r} deleted." if deleted else None)
    return _segments_page(request, principal, notice=notice)


def _segments_page(request: Request, principal: Principal, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    values = {"notice": None, "problem": None, "problem_field": None, "rule": "", "name": "", "count": None,
              "count_problem": None}  # fmt: skip
    engine = engine_of(request)
    scope, as_of = main_scope(engine)  # what a rule's money and recency fields mean: named on the page
    saved = list_segments(engine, within=portfolio(principal))
    history = size_history(engine, [segment["id"] for segment in saved])
    rows = [{**segment, "trend": trend_of(history.get(segment["id"], []))} for segment in saved]
    return page(request, "segments.html", principal, status_code=status_code, segments=rows, scope=scope,
                as_of=as_of, **{**values, **context})  # fmt: skip


def trend_of(counts: list[int]) -> dict[str, Any] | None:
    """The change since the evaluation before, and a sparkline's points (an inline SVG of 80 × 20) over the last
    evaluations; None before a segment's second evaluation."""
    if len(counts) < 2:
        return None
    low, high = min(counts), max(counts)
    span = (high - low) or 1
    step = 80 / (len(counts) - 1)
    points = " ".join(f"{index * step:.1f},{18 - 16 * (count - low) / span:.1f}" for index, count in enumerate(counts))
    return {"change": counts[-1] - counts[-2], "points": points, "evaluations": len(counts)}


@router.post("/segments", response_model=None)
def save_segment(
    request: Request,
    principal: Viewer,
    rule: Annotated[str, Form(max_length=2000)],
    name: Annotated[str, Form(max_length=100)],
) -> Response:
    """Save the rule being built as a segment and count its members at once."""
    engine = engine_of(request)
    try:
        authorize(principal, "manage_segments")
        create_segment(engine, name, rule)
        evaluate_segments(engine, names=[name.strip()])
    except PatronError as error:
        status = STATUS.get(error.code, 400)
        return _segments_page(request, principal, status_code=status, problem=error.message,
                              problem_field=error.field, rule=rule, name=name)  # fmt: skip
    return RedirectResponse(f"/segments?saved={quote(name.strip())}", status_code=303)


@router.post("/segments/count", response_model=None)
def segment_count(
    request: Request, principal: FragmentViewer, rule: Annotated[str, Form(max_length=2000)] = ""
) -> Response:
    """The segment builder's live count, as the fragment HTMX swaps in while the rule is typed."""
    context: dict[str, Any] = {"count": None, "customers": None, "count_problem": None}
    typed = bool(rule.strip())  # nothing typed: the empty state says what to type
    if typed and not principal.can("read_customers"):
        context["count_problem"] = "Your role cannot count customers."
    elif typed:
        try:
            with waiting_at_most(get_settings().page_wait_seconds):
                result = preview(engine_of(request), rule, sample=0, within=portfolio(principal))
            context.update(count=result.count, customers=result.customers)
        except PatronError as error:
            context["count_problem"] = error.message
        except StillComputing:  # the data changed: the count follows once every customer's figures are ready
            context["preparing"] = True
    return fragment(request, "_live_count.html", **context)


@router.get("/segments/{name}", response_model=None)
def segment(
    request: Request,
    principal: Viewer,
    name: SegmentName,
    *,
    search: Annotated[str | None, Query(max_length=100)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    notice = "Rule changed; members counted again." if done == "edited" else None
    return _segment_page(request, principal, name, search=search, offset=offset, notice=notice)


def _segment_page(
    request: Request,
    principal: Principal,
    name: str,
    *,
    search: str | None = None,
    offset: int = 0,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """One segment: its rule, size and trend, one page of its members (names masked for roles without personal
    data; a manager sees the members in their portfolio), and the forms the role may use."""
    engine = engine_of(request)
    found = segment_named(engine, name, within=portfolio(principal))
    if found is None:
        return page(request, "message.html", principal, status_code=404, title="Segment not found",
                    message=f"There is no segment called {name!r}.")  # fmt: skip
    rows, total = customers_page(engine, principal, search=search, limit=PAGE_SIZE, offset=offset,
                                 among=members_query(found["id"]))  # fmt: skip
    trend = trend_of(size_history(engine, [found["id"]]).get(found["id"], []))
    values = {"rule": found["expression"], "problem": None, "notice": None, **context}
    return page(request, "segment.html", principal, status_code=status_code, segment=found, trend=trend, rows=rows,
                total=total, search=search or "", offset=offset, page_size=PAGE_SIZE, **values)  # fmt: skip


@router.post("/segments/{name}", response_model=None)
def edit_segment(
    request: Request, principal: Viewer, name: SegmentName, rule: Annotated[str, Form(max_length=2000)]
) -> Response:
    """A new rule for the segment, checked first; its members are counted again at once."""
    engine = engine_of(request)
    try:
        authorize(principal, "manage_segments")
        update_segment(engine, name, rule, actor=principal.username, interface="web")
        evaluate_segments(engine, names=[name])
    except PatronError as error:
        if error.code == "not_found":
            return _segment_page(request, principal, name)
        return _segment_page(request, principal, name, status_code=STATUS.get(error.code, 400),
                             problem=error.message, rule=rule)  # fmt: skip
    return RedirectResponse(f"/segments/{quote(name, safe='')}?done=edited", status_code=303)


@router.post("/segments/{name}/delete", response_model=None)
def remove_segment(
    request: Request, principal: Viewer, name: SegmentName, confirm: Annotated[str, Form(max_length=8)] = ""
) -> Response:
    """Delete the segment once the box saying so is ticked (campaigns keep their own copy of its rule)."""
    engine = engine_of(request)
    try:
        authorize(principal, "manage_segments")
        if confirm != "yes":
            return _segment_page(request, principal, name, status_code=422,
                                 delete_problem="Tick the box to say you mean to delete this segment.")  # fmt: skip
        delete_segment(engine, name, actor=principal.username, interface="web")
    except PatronError as error:
        if error.code == "not_found":
            return _segment_page(request, principal, name)
        return page(request, "message.html", principal, status_code=STATUS.get(error.code, 400), title="Not done",
                    message=error.message)  # fmt: skip
    return RedirectResponse(f"/segments?deleted={quote(name)}", status_code=303)


@router.get("/segments/{name}/members.csv", response_model=None)
def members_csv(request: Request, principal: Viewer, name: SegmentName) -> Response:
    """The segment's members as CSV (pseudonyms for analysts; agents may not export); the export is audited."""
    engine = engine_of(request)
    try:
        text = export_customers(engine, principal, interface="web", among=members_query(segment_id(engine, name)))
    except PatronError as error:
        return page(request, "message.html", principal, status_code=STATUS.get(error.code, 400),
                    title="No export", message=error.message)  # fmt: skip
    filename = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name) or "segment"
    return PlainTextResponse(text, media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})  # fmt: skip
