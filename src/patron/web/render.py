"""How every page is drawn: the templates with their filters, whole pages, HTMX fragments and Plotly charts."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec
from urllib.parse import quote

import numpy as np
import plotly.graph_objects as go
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import escape

from patron.auth.service import Principal
from patron.cif.formats import count, counted, figure, label, p_value, percent, quantity, when
from patron.cif.money import format_amount, format_money
from patron.cif.stamp import StillComputing, waiting_at_most
from patron.http.browser import csrf_token
from patron.http.common import SESSION_COOKIE
from patron.settings import get_settings

Params = ParamSpec("Params")

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
TEMPLATES.env.filters["money"] = format_money
TEMPLATES.env.filters["amount"] = format_amount
TEMPLATES.env.filters["url_part"] = lambda value: quote(str(value), safe=":@")  # a customer key reads as typed
TEMPLATES.env.filters.update(count=count, counted=counted, when=when, p_value=p_value, percent=percent,
                              quantity=quantity, label=label, figure=figure)  # fmt: skip


def figure_html(figure: go.Figure) -> str:
    """A figure that fills its grid cell: its JSON in a data attribute, drawn by /static/patron.js (no inline script,
    so the Content-Security-Policy can forbid them all)."""
    figure.update_layout(margin={"l": 40, "r": 20, "t": 40, "b": 40}, autosize=True)
    return f'<div class="plotly-figure" style="width:100%;height:320px" data-figure="{escape(figure.to_json())}"></div>'


def histogram_bars(values: Any, *, bins: int = 40, name: str | None = None, opacity: float = 1.0) -> go.Bar:
    """A histogram counted here and drawn as bars: the page carries 40 counts, not every customer's value (a
    Plotly histogram of 100,000 customers put 600 KB of numbers into the dashboard)."""
    counts, edges = np.histogram(np.asarray(values, dtype=np.float64), bins=bins)
    return go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), name=name, opacity=opacity)


def binned_histogram(values: Any, *, bins: int = 40) -> go.Figure:
    return go.Figure(histogram_bars(values, bins=bins)).update_layout(bargap=0)


def csrf_for(request: Request) -> str:
    """The CSRF token of the request's session (empty when signed out): forms and HTMX send it back."""
    secret = request.cookies.get(SESSION_COOKIE)
    return csrf_token(secret) if secret else ""


def page(
    request: Request, template: str, principal: Principal | None, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    values = {"user": principal, "csrf_token": csrf_for(request), **context}
    return TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)


def shows_computing(endpoint: Callable[Params, Response]) -> Callable[Params, Response]:
    """A page route that does not keep its reader waiting for an analysis the data's change made stale: after the
    configured wait it answers with a page saying what is being computed, which looks again every second and shows
    the page once the result is there (the route takes ``request`` and ``principal`` by name)."""

    @functools.wraps(endpoint)
    def answer(*args: Params.args, **kwargs: Params.kwargs) -> Response:
        try:
            with waiting_at_most(get_settings().page_wait_seconds):
                return endpoint(*args, **kwargs)
        except StillComputing as computing:
            request, principal = kwargs["request"], kwargs["principal"]
            assert isinstance(request, Request)
            assert principal is None or isinstance(principal, Principal)
            return page(request, "computing.html", principal, what=computing.what)

    return answer


def fragment(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A piece of a page that HTMX swaps in (a partial template rendered alone)."""
    return TEMPLATES.TemplateResponse(request, template, {"csrf_token": csrf_for(request), **context},
                                      status_code=status_code)  # fmt: skip


def problem_fragment(request: Request, message: str, status_code: int) -> HTMLResponse:
    """A fragment that could not be drawn, saying why; the message (which may quote the request) is escaped."""
    return fragment(request, "_problem.html", status_code=status_code, message=message)


ERROR_TITLES = {403: "Not allowed", 404: "Page not found", 405: "Not allowed here", 500: "Something went wrong"}


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    """A page for a route that does not exist or failed: the app's own page, never a raw JSON or a traceback."""
    title = ERROR_TITLES.get(status_code, "Something went wrong")
    return page(request, "message.html", None, status_code=status_code, title=title, message=message)
