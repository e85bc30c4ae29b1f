"""The web application: the REST API under /api, the pages, and the static files (Plotly from its package).

The one module that sees both edges: ``api/`` and ``web/`` each import only ``http/`` and the domain below.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import plotly
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from patron.api.auth_routes import router as auth_router
from patron.api.campaign_routes import router as campaign_router
from patron.api.case_routes import router as case_router
from patron.api.customer_routes import router as customer_router
from patron.api.engage_routes import router as engage_router
from patron.api.event_routes import router as event_router
from patron.api.identity_routes import router as identity_router
from patron.api.segment_routes import router as segment_router
from patron.api.strategy_routes import router as strategy_router
from patron.api.value_routes import router as value_router
from patron.auth.service import principal_for_token
from patron.auth.trail import flush_reads
from patron.cif.import_jobs import max_upload_bytes
from patron.cif.store import make_engine, migrate
from patron.errors import PatronError
from patron.http.browser import SecurityHeaders
from patron.http.common import SignInRequired, patron_error, problem, sign_in_required, storage_error, validation_error
from patron.http.uploads import UploadGuard
from patron.jobs.warm import Warmer
from patron.settings import get_settings
from patron.web.campaign_actions import router as campaign_actions_router
from patron.web.campaign_pages import router as campaign_pages_router
from patron.web.case_pages import router as case_pages_router
from patron.web.customer_pages import router as customer_pages_router
from patron.web.evolution_pages import router as evolution_pages_router
from patron.web.identity_pages import router as identity_pages_router
from patron.web.import_pages import router as import_pages_router
from patron.web.pages import router as pages_router
from patron.web.render import error_page
from patron.web.segment_pages import router as segment_pages_router
from patron.web.strategy_pages import router as strategy_pages_router
from patron.web.users_pages import router as users_pages_router

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
STATIC = Path(__file__).resolve().parent / "web" / "static"
HTMX_JS = STATIC / "vendor" / "htmx.min.js"  # from the npm registry, put there by `make install`
API_DOCS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Patron API</title>
<link rel="stylesheet" href="/static/vendor/swagger/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/static/vendor/swagger/swagger-ui-bundle.js"></script><script src="/static/api-docs.js"></script>
</body></html>"""


def create_app(engine: Engine | None = None) -> FastAPI:
    if engine is None:
        engine = make_engine()
        migrate(engine)
    store = engine

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        settings = get_settings()
        warmer = Warmer(store, every=settings.warm_every_seconds) if settings.warm_analyses else None
        if warmer is not None:
            warmer.start()
        yield
        if warmer is not None:
            warmer.stop()
        flush_reads(store)  # the read events still waiting for their batch

    app = FastAPI(
        lifespan=lifespan,
        docs_url=None,  # served below from the package's own Swagger UI: no CDN, no inline script
        redoc_url=None,
        title="Patron",
        version="0.1.0",
        description="One-to-one customer relationship management: the customer information file, value, segments, "
        "service. Sign in with POST /api/auth/token and send the token as a bearer token.",
    )
    app.state.engine = engine
    app.add_exception_handler(PatronError, _patron_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)
    for error in (DataError, IntegrityError, StatementError):
        app.add_exception_handler(error, storage_error)
    api = (auth_router, customer_router, event_router, segment_router, value_router, case_router, strategy_router,
           campaign_router, engage_router, identity_router)  # fmt: skip
    pages = (
        pages_router,
        customer_pages_router,
        case_pages_router,
        evolution_pages_router,
        segment_pages_router,
        strategy_pages_router,
        campaign_actions_router,
        campaign_pages_router,
        import_pages_router,
        identity_pages_router,
        users_pages_router,
    )  # fmt: skip  (the wizard's /campaigns/new before the page's /campaigns/{key})
    for router in (*api, *pages):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(API_DOCS)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="text/javascript")

    app.add_middleware(UploadGuard, max_bytes=max_upload_bytes(), who=lambda secret: principal_for_token(store, secret))
    app.add_middleware(SecurityHeaders, https=get_settings().secure_cookies)
    if proxies := get_settings().trusted_proxy_list():
        # Outermost: behind a trusted reverse proxy, the client's own address (X-Forwarded-For) is the one sign-in
        # throttling counts, never the proxy's; uvicorn's own middleware, as `uvicorn --forwarded-allow-ips` uses.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    return app


async def _patron_error(request: Request, error: Exception) -> Response:
    """A refusal: a JSON problem for the API; for a person, the app's page when the whole request was refused."""
    assert isinstance(error, PatronError)
    if not _is_api(request) and error.code == "forbidden":
        return error_page(request, 403, error.message)
    return await patron_error(request, error)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api")


async def _http_error(request: Request, error: Exception) -> Response:
    """An unknown route or method: a JSON problem for the API, the app's own page for a person."""
    assert isinstance(error, StarletteHTTPException)
    if _is_api(request):
        code = "not_found" if error.status_code == 404 else "http_error"
        return problem(error.status_code, str(error.detail), code)
    wording = "There is no such page." if error.status_code == 404 else str(error.detail)
    return error_page(request, error.status_code, wording)


async def _server_error(request: Request, error: Exception) -> Response:
    """A failure Patron did not foresee: logged with its traceback, answered without details."""
    logging.getLogger("patron").exception("unhandled error on %s %s", request.method, request.url.path)
    if _is_api(request):
        return problem(500, "the server could not answer this request", "server_error")
    return error_page(request, 500, "The page could not be shown. The error is in the server's log.")
