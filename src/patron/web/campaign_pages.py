"""Campaign pages: the list, and one campaign with its plan, the contact policy's verdict before sending, live
progress, its results against the control, and a response recorded by hand. The wizard and the send are in
``campaign_actions``."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

import plotly.graph_objects as go
from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine

from patron.auth.access import campaign_previews
from patron.auth.portfolio import customer_resolver
from patron.auth.service import Principal, authorize
from patron.cif.view import with_keys
from patron.engage.campaigns import plan_of, targeting_in
from patron.engage.drafting import blocked_reasons, is_sending, send_stopped_because
from patron.engage.overview import list_campaigns, live_counts
from patron.engage.report import CampaignReport, OfferResult, campaign_report, offer_results
from patron.engage.sending import MessagePreview, record_response
from patron.errors import NotFoundError, PatronError
from patron.http.common import STATUS, FragmentViewer, Viewer, engine_of
from patron.web.render import figure_html, fragment, page, problem_fragment

router = APIRouter(include_in_schema=False)


@router.get("/campaigns", response_model=None)
def campaigns(
    request: Request, principal: Viewer, discarded: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    notice = f"Campaign {discarded!r} discarded: nobody was contacted." if discarded else None
    return page(request, "campaigns.html", principal, campaigns=list_campaigns(engine_of(request)), notice=notice)


DONE = {
    "prepared": "Prepared: the control group is drawn and the contact policy applied. Nothing is sent yet: check "
    "the numbers and the messages below, then send.",
    "sending": "Sending: the live panel below counts the e-mails as they go.",
    "already-sending": "This campaign is already being sent: the live panel below counts the e-mails as they go.",
    "response": "Response recorded: it counts in the live panel and the results.",
}


@router.get("/campaigns/{key}", response_model=None)
def campaign(
    request: Request,
    principal: Viewer,
    key: Annotated[str, Path(max_length=64)],
    kind: Annotated[str | None, Query(max_length=32)] = None,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    return campaign_page(request, principal, key, kind=kind, notice=DONE.get(done or ""))


def campaign_page(
    request: Request, principal: Principal, key: str, *, kind: str | None = None, status_code: int = 200,
    **extra: Any,
) -> Response:  # fmt: skip
    engine = engine_of(request)
    try:
        live = live_counts(engine, key)
    except PatronError as error:
        return page(request, "campaign.html", principal, status_code=404, key=key, problem=error.message, live=None)
    kinds = sorted(live["responses"])
    chosen = kind if kind in kinds else (kinds[0] if kinds else None)
    report = chart = None
    by_offer: list[OfferResult] = []
    if chosen:
        report = campaign_report(engine, key, chosen)
        chart = figure_html(_uplift_figure(report))
        by_offer = [row for row in offer_results(engine, key, chosen) if row.offer not in ("control", "no offer")]
    previews = _previews(engine, principal, key) if principal.can("manage_offers") else []
    try:
        plan = plan_of(engine, key)
    except NotFoundError:
        plan = None  # a campaign planned outside Patron (imported): results only
    values = {"notice": None, "response_form": {"customer": "", "kind": "bought", "value": ""}, "response_errors": {},
              **extra}  # fmt: skip
    return page(
        request, "campaign.html", principal, status_code=status_code, key=key, problem=None, live=live, kinds=kinds,
        kind=chosen, report=report, chart=chart, by_offer=by_offer, previews=previews,
        targeting=targeting_in(plan) if plan else None, plan=plan, blocked=blocked_reasons(engine, key) if plan else {},
        sending=is_sending(key), stopped=send_stopped_because(engine, key) if plan else None,
        **_words(plan.channel if plan else None), **values,
    )  # fmt: skip


def _words(channel: str | None) -> dict[str, str]:
    """What one contact of the campaign's channel is called, and what delivers it."""
    word, carrier = {"sms": ("text message", "SMS gateway"), "mail": ("letter", "print run")}.get(
        channel or "email", ("e-mail", "mail server")
    )
    return {"word": word, "carrier": carrier}


@router.post("/campaigns/{key}/responses", response_model=None)
def respond(
    request: Request,
    principal: Viewer,
    key: Annotated[str, Path(max_length=64)],
    *,
    customer: Annotated[str, Form(max_length=200)] = "",
    kind: Annotated[str, Form(max_length=32)] = "",
    value: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """A response a member gave (opened, clicked, bought …), as told on the phone or read from a report; each kind
    counts once per customer, so a reload records nothing more."""
    typed = {"customer": customer, "kind": kind, "value": value}
    engine = engine_of(request)
    try:
        authorize(principal, "manage_offers")
    except PatronError as error:
        return page(request, "message.html", principal, status_code=STATUS.get(error.code, 400), title="Not done",
                    message=error.message)  # fmt: skip
    errors: dict[str, str] = {}
    if not re.fullmatch(r"[a-z][a-z_]{0,31}", kind.strip()):
        errors["kind"] = "a response kind in lower-case words, e.g. opened, clicked, bought"
    amount = None
    if value.strip():
        try:
            amount = float(value)
        except ValueError:
            errors["value"] = "a value is a number (in the campaign's currency), or leave it empty"
    if not customer.strip():
        errors["customer"] = "which customer responded: their id, system:id or e-mail address"
    if not errors:
        try:
            found = customer_resolver(engine, principal)(customer.strip())
            record_response(engine, key, found, kind.strip(), value=amount)
        except PatronError as error:
            errors[{"customer_id": "customer"}.get(error.field or "", error.field or "customer")] = error.message
    if errors:
        return campaign_page(request, principal, key, status_code=422, response_form=typed, response_errors=errors)
    return RedirectResponse(f"/campaigns/{quote(key, safe='')}?done=response", status_code=303)


def _previews(engine: Engine, principal: Principal, key: str) -> list[dict[str, Any]]:
    try:
        shown: list[MessagePreview] = campaign_previews(engine, principal, key, sample=3)
    except PatronError:  # a draft (nothing decided yet), or a campaign planned outside Patron
        return []
    return with_keys(engine, [vars(preview) for preview in shown])


@router.get("/campaigns/{key}/live", response_model=None)
def campaign_live(request: Request, principal: FragmentViewer, key: str) -> Response:
    """The live counts panel alone: the campaign page polls it every five seconds."""
    try:
        live = live_counts(engine_of(request), key)
    except PatronError as error:
        return problem_fragment(request, error.message, 404)
    return fragment(request, "_campaign_live.html", key=key, live=live)


def _uplift_figure(report: CampaignReport) -> go.Figure:
    arms = report.arms
    figure = go.Figure()
    figure.add_bar(
        x=[arm.arm for arm in arms], y=[arm.rate for arm in arms], name=f"{report.kind} rate",
        marker_color=["#999" if arm.is_control else "#2b6cb0" for arm in arms],
        error_y={"type": "data", "symmetric": False,
                 "array": [(arm.ci_high - arm.uplift) if arm.uplift is not None and arm.ci_high is not None else 0
                           for arm in arms],
                 "arrayminus": [(arm.uplift - arm.ci_low) if arm.uplift is not None and arm.ci_low is not None else 0
                                for arm in arms]},
    )  # fmt: skip
    return figure.update_layout(
        title=f"{report.kind} rate per arm (bars: the uplift's 95 % interval against the control)",
        yaxis_tickformat=".1%",
    )
