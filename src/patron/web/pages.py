"""Server-rendered pages (Jinja2): sign-in, dashboard, customers, service desk, data quality.

Pages read through the same guarded services as the API; a page for someone not signed in sends them to sign in.
"""

from __future__ import annotations

from typing import Annotated, Any

import plotly.graph_objects as go
import polars as pl
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from patron.auth.access import customers_page, duplicate_candidates_for, masked_names
from patron.auth.accounts import end_session
from patron.auth.portfolio import portfolio, visible_frame
from patron.auth.service import ThrottledError, UnauthorizedError, authenticate, authorize, issue_token
from patron.cif.columns import utcnow
from patron.cif.facts import resolve_scope, scope_choices
from patron.cif.quality import quality_report
from patron.cif.store import store_counts
from patron.cif.view import with_keys
from patron.engage.workflows import score_and_follow_up
from patron.errors import PatronError
from patron.http.common import SESSION_COOKIE, STATUS, FragmentViewer, Viewer, engine_of
from patron.jobs.background import start, state, work_on
from patron.service.cases import QUEUE_VIEWS, due_state, work_queue
from patron.service.metrics import daily_service_metrics, service_figure
from patron.settings import get_settings
from patron.value.base import customer_base
from patron.value.lists import pareto_curve, value_at_risk
from patron.value.scoring import latest_run
from patron.web.render import TEMPLATES, binned_histogram, figure_html, fragment, page, shows_computing

router = APIRouter(include_in_schema=False)


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, "login.html", {"error": None, "user": None})


@router.post("/login", response_model=None)
def login(
    request: Request, username: Annotated[str, Form(max_length=64)], password: Annotated[str, Form(max_length=200)]
) -> Response:
    engine = engine_of(request)
    address = request.client.host if request.client else None
    try:
        principal = authenticate(engine, username, password, address=address)
    except (UnauthorizedError, ThrottledError) as error:
        status = 429 if isinstance(error, ThrottledError) else 401
        return TEMPLATES.TemplateResponse(
            request, "login.html", {"error": error.message, "user": None}, status_code=status
        )
    response = RedirectResponse("/", status_code=303)
    token = issue_token(engine, principal, name="browser session", kind="session")
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="lax", max_age=settings.session_hours * 3600,
        secure=settings.secure_cookies or request.url.scheme == "https",
    )  # fmt: skip
    return response


@router.get("/logout")
def logout(request: Request) -> RedirectResponse:
    """Sign out: the session ends on the server too, so a copied cookie no longer works."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        end_session(engine_of(request), secret)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", response_model=None)
@shows_computing
def dashboard(
    request: Request,
    principal: Viewer,
    source: Annotated[str | None, Query(max_length=64)] = None,
    scoring: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    engine = engine_of(request)
    counts = store_counts(engine)
    context: dict[str, Any] = {"counts": counts, "charts": {}, "at_risk": [], "scope": None, "pareto": None,
                               "scoring": state(work_on(engine, "score run")) if scoring else None}  # fmt: skip
    if counts["orders"]:
        sources, picked = scope_choices(engine, source)
        assert picked is not None  # there are orders
        frame, scope, as_of = customer_base(engine, source=picked.source, currency=picked.currency)
        context["scope"], context["as_of"], context["sources"] = scope, as_of, sources
        context["buyers"], context["run"] = frame.height, latest_run(engine, scope)
        curve = pareto_curve(frame)
        context["pareto"] = curve.statement(0.2)
        step = max(1, curve.points.height // 1000)  # a thousand points are enough for the eye, not 100,000
        points = pl.concat([curve.points.gather_every(step), curve.points.tail(1)]) if step > 1 else curve.points
        context["charts"]["pareto"] = figure_html(
            go.Figure(go.Scatter(x=points["customer_share"], y=points["value_share"], mode="lines"))
            .update_layout(
                title="Pareto curve of revenue", xaxis_title="share of customers", yaxis_title="share of revenue"
            )
            .update_xaxes(tickformat=".0%")
            .update_yaxes(tickformat=".0%")
        )
        context["revenue"] = float(frame["revenue"].sum())
        if frame["clv"].null_count() < frame.height:
            what = "Past margin" if _is_rfm(context["run"]) else "CLV"  # an RFM run's value is no forecast
            tiers = frame.group_by("tier").len().drop_nulls().sort("tier")
            context["charts"]["tiers"] = figure_html(
                go.Figure(go.Bar(x=tiers["tier"], y=tiers["len"])).update_layout(title="Customers per tier")
            )
            context["charts"]["clv"] = figure_html(
                binned_histogram(frame["clv"].drop_nulls().clip(upper_bound=frame["clv"].quantile(0.99)), bins=40)
                .update_layout(title=f"{what} distribution (up to the 99th percentile)")
            )  # fmt: skip
            if frame["value_at_risk"].null_count() < frame.height:  # an RFM run forecasts no value at risk
                at_risk = visible_frame(engine, principal, value_at_risk(frame).rows).head(10).to_dicts()
                context["at_risk"] = with_keys(engine, masked_names(principal, at_risk))  # the portfolio's already
    return page(request, "dashboard.html", principal, **context)


@router.post("/value/score", response_model=None)
def score_now(request: Request, principal: Viewer, source: Annotated[str, Form(max_length=64)] = "") -> Response:
    """A score run (fit, score, store, then the triggers, offers and recommender that follow one) started from the
    dashboard; the dashboard follows it and says when the tiers are there."""
    engine = engine_of(request)
    try:
        authorize(principal, "run_models")
        scope = resolve_scope(engine, source or None)  # refused now, not in the background: no orders, no source
    except PatronError as error:
        return page(request, "message.html", principal, status_code=STATUS.get(error.code, 400), title="Not done",
                    message=error.message)  # fmt: skip

    def work() -> str:
        result, _ = score_and_follow_up(engine, source=scope.source)
        return f"Scored {result.customers:,} customers of {result.scope.source} with the {result.model} model."

    start(work_on(engine, "score run"), work)
    return RedirectResponse("/?scoring=1", status_code=303)


@router.get("/value/score/panel", response_model=None)
def score_panel(request: Request, principal: FragmentViewer) -> Response:
    """The running score run's state: the dashboard asks every second until it is done or failed."""
    return fragment(request, "_score_job.html", scoring=state(work_on(engine_of(request), "score run")))


def _is_rfm(run: dict[str, Any] | None) -> bool:
    return run is not None and run["model"] == "rfm"


@router.get("/customers", response_model=None)
def customers(
    request: Request,
    principal: Viewer,
    search: Annotated[str | None, Query(max_length=100)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    rows, total = customers_page(engine_of(request), principal, search=search, limit=50, offset=offset)
    return page(request, "customers.html", principal, rows=rows, total=total, search=search or "", offset=offset)


@router.get("/service", response_model=None)
def service(request: Request, principal: Viewer, only: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    engine = engine_of(request)
    only = only if only in QUEUE_VIEWS else None  # an unknown filter shows the whole queue
    chart = None
    try:
        chart = figure_html(service_figure(daily_service_metrics(engine)))
    except PatronError:
        chart = None
    queue = (
        work_queue(engine, limit=50, within=portfolio(principal), only=only, me=principal.username)
        if principal.can("manage_cases")
        else []
    )
    now = utcnow()
    queue = with_keys(engine, [{**case, "due": due_state(case, now)} for case in queue])
    return page(request, "service.html", principal, queue=queue, chart=chart, only=only, views=QUEUE_VIEWS)


@router.get("/quality", response_model=None)
def quality(request: Request, principal: Viewer) -> Response:
    report = quality_report(engine_of(request))
    chart = None
    if report.completeness:
        rows = [row for row in report.completeness if row["missing"]]
        figure = go.Figure()
        for field in sorted({row["field"] for row in rows}):
            picked = [row for row in rows if row["field"] == field]
            figure.add_bar(name=field, x=[row["source"] for row in picked], y=[row["missing_pct"] for row in picked])
        chart = figure_html(figure.update_layout(title="Missing fields per source (% of customers)", barmode="group"))
    duplicates = duplicate_candidates_for(engine_of(request), principal, report.duplicate_candidates)
    return page(request, "quality.html", principal, report=report, chart=chart, duplicates=duplicates)
