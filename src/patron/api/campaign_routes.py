"""Campaigns over the API: the list, live progress, and results with uplift against the control."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path, Query

from patron.api.schemas import CampaignLive, CampaignOut, CampaignReport, MessagePreviewOut
from patron.auth.access import campaign_previews
from patron.engage.overview import list_campaigns, live_counts
from patron.engage.report import campaign_report
from patron.http.common import ManageOffers, ReadCustomers, Store

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])
Key = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("")
def campaigns(store: Store, principal: ReadCustomers) -> list[CampaignOut]:
    """Every campaign, newest first, with its members and responses per kind."""
    return [CampaignOut(**row) for row in list_campaigns(store)]


@router.get("/{key}/live")
def live(key: Key, store: Store, principal: ReadCustomers) -> CampaignLive:
    """Contacts by status and responses by kind, for live monitoring."""
    return CampaignLive(**live_counts(store, key))


@router.get("/{key}/report")
def report(
    key: Key,
    store: Store,
    principal: ReadCustomers,
    kind: Annotated[str, Query(min_length=1, max_length=32)],
    contact_cost: Annotated[float, Query(ge=0, le=1e6)] = 0.0,
) -> CampaignReport:
    """Per arm: members, responders, rate, uplift against the control with its 95 % interval, p-value, ROI."""
    return CampaignReport(**asdict(campaign_report(store, key, kind, contact_cost=contact_cost)))


@router.get("/{key}/preview")
def preview(
    key: Key, store: Store, principal: ManageOffers, sample: Annotated[int, Query(ge=1, le=20)] = 3
) -> list[MessagePreviewOut]:
    """A prepared campaign's messages as its first customers would get them: their own offer and products."""
    return [MessagePreviewOut(**asdict(found)) for found in campaign_previews(store, principal, key, sample=sample)]
