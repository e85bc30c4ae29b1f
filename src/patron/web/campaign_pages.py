"""Campaign pages: the list, and one campaign with live progress and its results against the control."""

from __future__ import annotations

from typing import Annotated

import plotly.graph_objects as go
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import Engine

from patron.auth.access import campaign_previews
from patron.auth.service import Principal
from patron.engage.campaigns import targeting_of
from patron.engage.overview import list_campaigns, live_counts
from patron.engage.report import CampaignReport, OfferResult, campaign_report, offer_results
from patron.engage.sending import MessagePreview
from patron.errors import PatronError
from patron.http.common import FragmentViewer, Viewer, engine_of
from patron.web.render import figure_html, fragment, page, problem_fragment

router = APIRouter(include_in_schema=False)


@router.get("/campaigns", response_model=None)
def campaigns(request: Request, principal: Viewer) -> Response:
    return page(request, "campaigns.html", principal, campaigns=list_campaigns(engine_of(request)))


@router.get("/campaigns/{key}", response_model=None)
def campaign(
    request: Request, principal: Viewer, key: str, kind: Annotated[str | None, Query(max_length=32)] = None
) -> Response:
    engine = engine_of(request)
    try:
        live = live_counts(engine, key)
    except PatronError as error:
        return page(request, "campaign.html", principal, key=key, problem=error.message, live=None)
    kinds = sorted(live["responses"])
    chosen = kind if kind in kinds else (kinds[0] if kinds else None)
    report = chart = None
    by_offer: list[OfferResult] = []
    if chosen:
        report = campaign_report(engine, key, chosen)
        chart = figure_html(_uplift_figure(report))
        by_offer = [row for row in offer_results(engine, key, chosen) if row.offer not in ("control", "no offer")]
    previews = _previews(engine, principal, key) if principal.can("manage_offers") else []
    return page(
        request, "campaign.html", principal, key=key, problem=None, live=live, kinds=kinds, kind=chosen,
        report=report, chart=chart, by_offer=by_offer, previews=previews, targeting=targeting_of(engine, key),
    )  # fmt: skip


def _previews(engine: Engine, principal: Principal, key: str) -> list[MessagePreview]:
    try:
        return campaign_previews(engine, principal, key, sample=3)
    except PatronError:  # a draft (nothing decided yet), or a campaign planned outside Patron
        return []


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
