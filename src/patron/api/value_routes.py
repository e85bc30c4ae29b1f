"""Value: the score runs, a run's customers by rank, and the differentiation lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from patron.api.schemas import CohortRetentionOut, Page, Retention, ScoreRunOut, ValueList
from patron.auth.access import masked_names, run_scores_page
from patron.auth.portfolio import visible_frame
from patron.http.common import Caller, Limit, Paged, ReadCustomers, Store
from patron.value.base import customer_base
from patron.value.list_names import ListName
from patron.value.lists import LISTS
from patron.value.scoring import list_runs

router = APIRouter(prefix="/api")


@router.get("/value/runs", tags=["value"])
def runs(store: Store, principal: ReadCustomers, limit: Limit = 20) -> list[ScoreRunOut]:
    return [ScoreRunOut(**row) for row in list_runs(store, limit)]


@router.get("/value/runs/{run_id}/scores", tags=["value"])
def run_scores(
    run_id: Annotated[int, Path(ge=1, le=2**53)],
    *,
    store: Store,
    principal: Caller,
    tier: Annotated[str | None, Query(pattern=r"^[A-Z]$")] = None,
    paging: Paged,
) -> Page:
    """A score run's customers by rank, best first: P(alive), expected purchases, CLV, value at risk, tier."""
    rows, total = run_scores_page(store, principal, run_id, tier=tier, **paging.window)
    return Page(items=rows, total=total, **paging.window)


@router.get("/value/lists/{name}", tags=["value"])
def value_list(
    name: ListName,
    *,
    store: Store,
    principal: ReadCustomers,
    source: Annotated[str | None, Query(max_length=64)] = None,
    paging: Paged,
) -> ValueList:
    """A differentiation list with a reason per customer (names pseudonymised for analysts)."""
    frame, scope, as_of = customer_base(store, source=source)
    result = LISTS[name](frame)  # the whole base: a list's thresholds (top 25 %, bottom 20 %) are the base's
    listed = visible_frame(store, principal, result.rows)
    rows = masked_names(principal, listed.slice(paging.offset, paging.limit).to_dicts())
    return ValueList(
        title=result.title, note=result.note, source=scope.source, as_of=as_of, total=listed.height, items=rows
    )


@router.get("/value/retention", tags=["value"])
def retention(
    store: Store,
    principal: ReadCustomers,
    tenure: Annotated[str, Query(max_length=64)] = "tenure_months",
    cohort: Annotated[str, Query(max_length=64)] = "contract",
    charge: Annotated[str, Query(max_length=64)] = "monthly_charges",
) -> Retention:
    """Contract retention (shifted-beta-geometric) per cohort, from customers' tenure, status and charge attributes."""
    import math  # noqa: PLC0415

    from patron.value.retention import contract_retention  # noqa: PLC0415

    report = contract_retention(store, tenure=tenure, cohort=cohort or None, charge=charge or None)
    cohorts = []
    for item in report.cohorts:
        finite = item.note is None
        cohorts.append(
            CohortRetentionOut(
                cohort=item.cohort, customers=item.customers, churned=item.churned,
                alpha=item.alpha if finite else None, beta=item.beta if finite else None,
                retention=item.retention, survival=item.survival, note=item.note,
                mean_residual_lifetime=None if math.isnan(item.mean_residual_lifetime) else item.mean_residual_lifetime,
            )
        )  # fmt: skip
    valued = report.customers.drop_nulls("residual_value") if "residual_value" in report.customers.columns else None
    total = float(valued["residual_value"].sum()) if valued is not None and valued.height else None
    return Retention(cohorts=cohorts, residual_value=total, left_out=report.left_out)
