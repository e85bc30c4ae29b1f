"""Running a campaign from the browser: a wizard from a segment (channel, templates, control group, arms, offer)
with the message previewed for one of its customers; created and prepared, the campaign page shows how many the
contact policy blocks and why before anything goes; then send by e-mail or text message (the configured SMTP
server or SMS gateway; letters are printed from the CLI), discard a campaign
that has contacted nobody, and a response is recorded on the campaign page (``campaign_pages``).

Every action goes through ``engage`` as the CLI does; the wizard is for the roles that run campaigns
(``manage_offers``). A form that cannot be taken comes back with each problem beside its field and what was typed.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, select

from patron.auth.access import check_campaign_within
from patron.auth.portfolio import portfolio
from patron.auth.service import Principal, authorize
from patron.cif.view import with_keys
from patron.engage.campaigns import OFFERS, create_campaign, plan_of, prepare_campaign
from patron.engage.channels import configured_channel
from patron.engage.drafting import discard_campaign, sample_message, start_send
from patron.errors import InvalidInputError, NotFoundError, PatronError
from patron.http.common import STATUS, FragmentViewer, Viewer, engine_of
from patron.segments.rules import list_segments, segment_named
from patron.settings import get_settings
from patron.web.render import fragment, page, problem_fragment

router = APIRouter(include_in_schema=False)
CampaignKey = Annotated[str, Path(max_length=64)]
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BEST_OFFER = "(each customer's best offer)"
DEFAULT_SUBJECT = "{{ first_name }}, picked for you"
DEFAULT_BODY = """Dear {{ first_name }},

{% if offer %}{{ offer.name }}: {{ offer.description or "just for you" }}.
{% endif %}{% for item in recommendations %}- {{ item.name }}
{% endfor %}
{{ manager_signature }}"""


def blank_wizard(segment: str) -> dict[str, str]:
    """The wizard's fields as first shown: a key from the segment and the day, a 10 % control group, one arm."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", segment).strip("-").lower()[:40] or "campaign"
    return {"segment": segment, "key": f"{slug}-{dt.date.today():%Y%m%d}", "name": segment, "channel": "email",
            "subject": DEFAULT_SUBJECT, "body": DEFAULT_BODY, "control": "10", "arms": "A", "offer": ""}  # fmt: skip


def _wizard(
    request: Request, principal: Principal, typed: dict[str, str], *, errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:  # fmt: skip
    engine = engine_of(request)
    segments = list_segments(engine, within=portfolio(principal))
    with engine.connect() as conn:
        offers = [str(name) for name in conn.scalars(select(OFFERS.c.name).order_by(OFFERS.c.name))]
    settings = get_settings()
    return page(request, "campaign_new.html", principal, status_code=status_code, form=typed, errors=errors or {},
                segments=segments, offers=[BEST_OFFER, *offers], sender=settings.smtp_sender,
                sms_ready=bool(settings.sms_webhook_url))  # fmt: skip


@router.get("/campaigns/new", response_model=None)
def new_campaign(request: Request, principal: Viewer, segment: Annotated[str, Query(max_length=100)] = "") -> Response:
    try:
        authorize(principal, "manage_offers")
    except PatronError as error:
        return _refusal(request, principal, error)
    return _wizard(request, principal, blank_wizard(segment))


def _refusal(request: Request, principal: Principal, error: PatronError) -> Response:
    return page(request, "message.html", principal, status_code=STATUS.get(error.code, 400), title="Not done",
                message=error.message)  # fmt: skip


def _rule_of(engine: Engine, principal: Principal, segment: str) -> str:
    found = segment_named(engine, segment, within=portfolio(principal))
    if found is None:
        raise NotFoundError("choose one of the saved segments" if not segment else f"there is no segment {segment!r}",
                            field="segment")  # fmt: skip
    return str(found["expression"])


def _share(control: str) -> float:
    try:
        percent = float(control.strip().rstrip("%"))
    except ValueError:
        raise InvalidInputError("give the control group as a percentage, e.g. 10", field="control") from None
    if not 0 <= percent < 100:
        raise InvalidInputError("the control group is at least 0 % and below 100 %", field="control")
    return percent / 100


def _offer_choice(offer: str) -> tuple[str | None, bool]:
    """(one offer for everyone, each customer's best offer)."""
    if offer == BEST_OFFER:
        return None, True
    return (offer or None), False


class WizardForm(BaseModel):
    """The wizard's fields as typed; the preview reads the segment, the templates and the offer of the same form."""

    model_config = ConfigDict(extra="ignore")
    segment: Annotated[str, Field(max_length=100)] = ""
    key: Annotated[str, Field(max_length=64)] = ""
    name: Annotated[str, Field(max_length=200)] = ""
    channel: Annotated[str, Field(max_length=16)] = "email"
    subject: Annotated[str, Field(max_length=500)] = ""
    body: Annotated[str, Field(max_length=20_000)] = ""
    control: Annotated[str, Field(max_length=16)] = "10"
    arms: Annotated[str, Field(max_length=200)] = "A"
    offer: Annotated[str, Field(max_length=200)] = ""


@router.post("/campaigns/new/preview", response_model=None)
def preview_message(request: Request, principal: FragmentViewer, form: Annotated[WizardForm, Form()]) -> Response:
    """The message as the segment's first customer would read it (HTMX fragment), nothing written."""
    engine = engine_of(request)
    try:
        authorize(principal, "manage_offers")
        one_offer, _ = _offer_choice(form.offer)
        rule = _rule_of(engine, principal, form.segment)
        sample = sample_message(engine, rule, form.subject, form.body, offer=one_offer, within=portfolio(principal))
    except PatronError as error:
        status = 200 if error.code == "invalid_input" else STATUS.get(error.code, 400)
        return problem_fragment(request, error.message, status)
    shown = with_keys(engine, [{"customer_id": sample.customer_id}])[0]["key"] if sample.customer_id else None
    return fragment(request, "_campaign_sample.html", sample=sample, key=shown, best_offer=form.offer == BEST_OFFER)


@router.post("/campaigns/new", response_model=None)
def create(request: Request, principal: Viewer, form: Annotated[WizardForm, Form()]) -> Response:
    """Create the campaign from the segment's rule and prepare it (control group drawn, contact policy applied,
    nothing sent); the campaign page then shows who would be contacted and who is blocked, and why."""
    typed = form.model_dump()
    engine = engine_of(request)
    try:
        authorize(principal, "manage_offers")
    except PatronError as error:
        return _refusal(request, principal, error)
    rule, share, errors = _checked(engine, principal, form)
    if errors:
        return _wizard(request, principal, typed, errors=errors, status_code=422)
    key = form.key.strip()
    one_offer, best = _offer_choice(form.offer)
    arms = [arm.strip() for arm in form.arms.split(",") if arm.strip()]
    try:
        create_campaign(engine, key, form.name.strip(), rule=rule, subject=form.subject, body=form.body,
                        channel=form.channel, control_share=share, arms=arms, offer=one_offer,
                        best_offer=best)  # fmt: skip
    except PatronError as error:
        field = {"control_share": "control"}.get(error.field or "", error.field or "segment")
        status = STATUS.get(error.code, 422)
        return _wizard(request, principal, typed, errors={field: error.message}, status_code=status)
    try:
        prepare_campaign(engine, key, within=portfolio(principal))  # a manager's reaches their customers only
    except PatronError as error:  # nothing half-made: the plan goes with its failed preparation
        discard_campaign(engine, key, actor=principal.username, interface="web")
        return _wizard(request, principal, typed, errors={"segment": error.message}, status_code=422)
    return RedirectResponse(f"/campaigns/{quote(key, safe='')}?done=prepared", status_code=303)


def _checked(engine: Engine, principal: Principal, form: WizardForm) -> tuple[str, float, dict[str, str]]:
    """The segment's rule and the control share, with every field's problem at once (the domain stops at one)."""
    errors: dict[str, str] = {}
    if not KEY.match(form.key.strip()):
        errors["key"] = "a key of letters, digits, '-', '_' or '.', starting with a letter or digit (at most 64)"
    if not form.name.strip():
        errors["name"] = "give the campaign a name people will recognise"
    try:
        configured_channel(form.channel)  # a campaign this installation could not send is not made
    except PatronError as error:
        errors["channel"] = error.message
    if form.channel == "email" and not form.subject.strip():
        errors["subject"] = "an e-mail needs a subject"
    rule, share = "", 0.0
    try:
        rule = _rule_of(engine, principal, form.segment)
    except PatronError as error:
        errors["segment"] = error.message
    try:
        share = _share(form.control)
    except PatronError as error:
        errors["control"] = error.message
    return rule, share, errors


def _back(key: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/campaigns/{quote(key, safe='')}?done={done}", status_code=303)


@router.post("/campaigns/{key}/send", response_model=None)
def send(request: Request, principal: Viewer, key: CampaignKey) -> Response:
    """Send the pending contacts in the background on the campaign's channel (the configured SMTP server or SMS
    gateway); the live panel follows."""
    try:
        authorize(principal, "manage_offers")
        check_campaign_within(engine_of(request), principal, key)
        channel = configured_channel(plan_of(engine_of(request), key).channel or "email")
        started = start_send(engine_of(request), key, channel)
    except PatronError as error:
        return _refusal(request, principal, error)
    return _back(key, "sending" if started else "already-sending")


@router.post("/campaigns/{key}/discard", response_model=None)
def discard(request: Request, principal: Viewer, key: CampaignKey) -> Response:
    try:
        authorize(principal, "manage_offers")
        check_campaign_within(engine_of(request), principal, key)
        discard_campaign(engine_of(request), key, actor=principal.username, interface="web")
    except PatronError as error:
        return _refusal(request, principal, error)
    return RedirectResponse(f"/campaigns?discarded={quote(key)}", status_code=303)
