"""Needs-based segments over time: the newest segmentation run's segments, who moved between two runs (Sankey),
each segment's value share run by run, and a clustering run started from the page (for the roles that run models),
followed while it runs in a thread of the server (``jobs/background``).

The run is ``segments.clustering.segment_customers``, as ``patron segments cluster`` runs it; a form that cannot be
run comes back with the reason beside its field and what was typed.
"""

from __future__ import annotations

from typing import Annotated

import plotly.graph_objects as go
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from patron.auth.service import Principal, authorize
from patron.errors import PatronError
from patron.http.common import STATUS, FragmentViewer, Viewer, engine_of
from patron.jobs.background import start, state, work_on
from patron.segments.clustering import MAX_SEGMENTS, METHODS, check_clustering, segment_customers
from patron.segments.evolution import latest_segmentation, migration, sankey, value_share_over_time
from patron.web.render import figure_html, fragment, page

router = APIRouter(include_in_schema=False)
CLUSTER_FORM = {"population": "orders > 0", "method": "gmm", "max_segments": "8"}


@router.get("/segments/evolution", response_model=None)
def evolution(
    request: Request,
    principal: Viewer,
    earlier: Annotated[int | None, Query(ge=1)] = None,
    later: Annotated[int | None, Query(ge=1)] = None,
    clustering: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    return _evolution_page(request, principal, earlier, later, following=bool(clustering))


def _evolution_page(
    request: Request, principal: Principal, earlier: int | None, later: int | None, *, following: bool = False,
    status_code: int = 200, form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    engine = engine_of(request)
    history = value_share_over_time(engine)
    runs = sorted(set(history["run"].to_list()))
    chart = share_chart = None
    problem = None
    if len(runs) >= 2:
        earlier = earlier or runs[-2]
        later = later or runs[-1]
        try:
            chart = figure_html(sankey(migration(engine, earlier, later), earlier, later).update_layout(height=480))
        except PatronError as error:
            problem = error.message
        figure = go.Figure()
        for segment in sorted(set(history["segment"].to_list())):
            picked = history.filter(history["segment"] == segment)
            figure.add_scatter(
                x=picked["run"].to_list(),
                y=picked["value_share"].to_list(),
                name=f"segment {segment}",
                mode="lines+markers",
            )
        share_chart = figure_html(
            figure.update_layout(title="Value share per segment, run by run")
            .update_yaxes(tickformat=".0%")
            .update_xaxes(type="category", title="segmentation run")
        )
    return page(
        request, "evolution.html", principal, status_code=status_code, runs=runs, earlier=earlier, later=later,
        chart=chart, share_chart=share_chart, problem=problem, latest=latest_segmentation(engine), methods=METHODS,
        max_segments=MAX_SEGMENTS, form=form or CLUSTER_FORM, errors=errors or {},
        clustering=state(work_on(engine, "clustering")) if following else None,
    )  # fmt: skip


@router.post("/segments/evolution/cluster", response_model=None)
def cluster_now(
    request: Request,
    principal: Viewer,
    population: Annotated[str, Form(max_length=2000)] = "",
    method: Annotated[str, Form(max_length=16)] = "gmm",
    max_segments: Annotated[str, Form(max_length=8)] = "8",
) -> Response:
    """A needs-based clustering run started from the page; the page follows it and shows its segments when done."""
    engine = engine_of(request)
    form = {"population": population, "method": method, "max_segments": max_segments}
    try:
        authorize(principal, "run_models")
        if not max_segments.strip().isdigit():
            return _refused(request, principal, form, "max_segments", "the number of segments is a whole number")
        most = int(max_segments)
        check_clustering(engine, population=population, method=method, max_segments=most)
    except PatronError as error:
        return _refused(request, principal, form, error.field or "population", error.message,
                        status_code=STATUS.get(error.code, 400))  # fmt: skip

    def work() -> str:
        run = segment_customers(engine, population=population.strip() or None, method=method,  # type: ignore[arg-type]
                                k_range=range(2, most + 1))  # fmt: skip
        return f"Run {run.run_id}: {run.segments} segments, chosen by the {run.criterion['name']}."

    start(work_on(engine, "clustering"), work)
    return RedirectResponse("/segments/evolution?clustering=1", status_code=303)


def _refused(
    request: Request, principal: Principal, form: dict[str, str], field: str, message: str, *, status_code: int = 422
) -> Response:
    if status_code == 403:
        return page(request, "message.html", principal, status_code=403, title="Not allowed", message=message)
    known = field if field in CLUSTER_FORM else "population"
    return _evolution_page(request, principal, None, None, status_code=status_code, form=form,
                           errors={known: message})  # fmt: skip


@router.get("/segments/evolution/cluster", response_model=None)
def cluster_panel(request: Request, principal: FragmentViewer) -> Response:
    """The running clustering's state: the page asks every second until it is done or failed."""
    return fragment(request, "_cluster_job.html", clustering=state(work_on(engine_of(request), "clustering")))
