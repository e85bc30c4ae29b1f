"""How every page is drawn: the templates with their filters, whole pages, HTMX fragments and Plotly charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from patron.auth.service import Principal
from patron.cif.money import format_amount, format_money

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
TEMPLATES.env.filters["money"] = format_money
TEMPLATES.env.filters["amount"] = format_amount


def figure_html(figure: go.Figure) -> str:
    """A figure that fills its grid cell (Plotly's own fixed 700 px would overflow it)."""
    figure.update_layout(margin={"l": 40, "r": 20, "t": 40, "b": 40}, autosize=True)
    html = figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        default_width="100%",
        default_height="320px",
        config={"responsive": True},
    )
    return str(html)


def page(
    request: Request, template: str, principal: Principal | None, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, {"user": principal, **context}, status_code=status_code)


def fragment(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A piece of a page that HTMX swaps in (a partial template rendered alone)."""
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)


def problem_fragment(request: Request, message: str, status_code: int) -> HTMLResponse:
    """A fragment that could not be drawn, saying why; the message (which may quote the request) is escaped."""
    return fragment(request, "_problem.html", status_code=status_code, message=message)
