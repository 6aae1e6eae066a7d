"""The console's Starlette app: sign-in and sign-out, the pages, static files, and every
refusal or failure as a plain page (403, 404, 500), never a traceback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from pathlib import Path

import psycopg2.errors
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from loader import warehouse
from loader.console import docs, duplicates, overview, privacy, rejects
from loader.console.access import access_of
from loader.console.config import ConsoleConfig
from loader.console.security import (
    COOKIE,
    CSRF_FIELD,
    SIGNIN_COOKIE,
    CookieSigner,
    SecurityHeaders,
    cookie_options,
    new_token,
    same_token,
)
from loader.console.sessions import SessionStore
from loader.console.web import (
    BadInput,
    Console,
    CsrfRefused,
    Forbidden,
    SignedOut,
    render,
    visit,
)
from loader.errors import PipelineError
from loader.warehouse.attached_code import AttachedCode

STATIC = Path(__file__).parent / "static"
MAX_NAME_CHARS = 63  # Postgres' identifier length

log = logging.getLogger("logins.console")


async def signin_form(request: Request, message: str = "", status_code: int = 200) -> Response:
    token = new_token()
    if request.query_params.get("expired") and not message:
        message = "Your session expired or was closed: sign in again."
    response = render(
        request, "signin.html", {"csrf_token": token, "message": message}, status_code
    )
    console: Console = request.app.state.console
    response.set_cookie(
        SIGNIN_COOKIE, console.signer.sign({"csrf": token}), **cookie_options(request)
    )
    return response


async def signin(request: Request) -> Response:
    console: Console = request.app.state.console
    form = await request.form()
    expected = console.signer.read(request.cookies.get(SIGNIN_COOKIE)) or {}
    if not same_token(str(expected.get("csrf", "")), str(form.get(CSRF_FIELD) or "")):
        return await signin_form(request, "The sign-in form expired: try again.", 400)
    user = str(form.get("user") or "").strip()
    password = str(form.get("password") or "")
    if not user or len(user) > MAX_NAME_CHARS:
        return await signin_form(request, "Give a Postgres role name (at most 63 characters).", 400)
    closer = ExitStack()
    try:
        conn = await run_in_threadpool(
            closer.enter_context, warehouse.connect(console.config.credentials(user, password))
        )
    except PipelineError:
        # the reason (wrong password, unknown role, server down) is Postgres' to log, not ours
        # to tell a stranger
        log.info("sign-in refused for a role")
        return await signin_form(request, "Sign-in refused: check the role name and password.", 401)
    finally:
        del password
    session_id, session = console.store.add(user, conn, closer)
    access = await run_in_threadpool(access_of, conn, console.config)
    first = access.pages()[0][0]
    response = RedirectResponse(first, status_code=303)
    response.set_cookie(
        COOKIE,
        console.signer.sign({"sid": session_id, "csrf": session.csrf}),
        **cookie_options(request),
    )
    response.delete_cookie(SIGNIN_COOKIE, path="/")
    return response


async def signout(request: Request) -> Response:
    current = visit(request)
    await current.form()
    data = request.app.state.console.signer.read(request.cookies.get(COOKIE)) or {}
    await run_in_threadpool(request.app.state.console.store.close, str(data.get("sid", "")))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def signed_out(request: Request, error: Exception) -> Response:
    expired = isinstance(error, SignedOut) and error.expired
    if _wants_json(request) or request.method != "GET":
        return JSONResponse(
            {"error": "your session expired or was closed: sign in again"}, status_code=401
        )
    return RedirectResponse("/signin?expired=1" if expired else "/signin", status_code=303)


async def csrf_refused(request: Request, error: Exception) -> Response:
    message = "this request carried no valid CSRF token: reload the page and try again"
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=403)
    return render(request, "error.html", {"title": "Refused", "message": message}, 403)


async def forbidden(request: Request, error: Exception) -> Response:
    message = "Your role may not open this page."
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=403)
    return render(request, "error.html", {"title": "Forbidden", "message": message}, 403)


async def not_found(request: Request, error: Exception) -> Response:
    status = error.status_code if isinstance(error, HTTPException) else 404
    title = "Not found" if status == 404 else "Refused"
    return render(request, "error.html", {"title": title, "message": title + "."}, status)


async def bad_input(request: Request, error: Exception) -> Response:
    return render(request, "error.html", {"title": "Not found", "message": str(error)}, 404)


async def attached_code(request: Request, error: Exception) -> Response:
    # names the table and the code found on it, never a value: the officer can act on it
    if _wants_json(request):
        return JSONResponse({"error": str(error)}, status_code=409)
    return render(request, "error.html", {"title": "Refused", "message": str(error)}, 409)


async def server_error(request: Request, error: Exception) -> Response:
    log.error("console request failed: %s", type(error).__name__)
    message = "Something went wrong on the server. The details are not shown here."
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=500)
    return render(request, "error.html", {"title": "Error", "message": message}, 500)


def _closing(store: SessionStore) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        store.close_all()

    return lifespan


def create_app(config: ConsoleConfig, secret: str | None = None) -> Starlette:
    """The console. `secret` signs cookies: a new random one per start, so a restart signs
    everyone out (their connections are gone with the process anyway)."""
    routes = [
        Route("/signin", signin_form, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
        *overview.routes,
        *duplicates.routes,
        *rejects.routes,
        *privacy.routes,
        *docs.routes,
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    store = SessionStore(config.idle_seconds)
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            SignedOut: signed_out,
            CsrfRefused: csrf_refused,
            Forbidden: forbidden,
            BadInput: bad_input,
            psycopg2.errors.InsufficientPrivilege: forbidden,
            AttachedCode: attached_code,
            HTTPException: not_found,
            Exception: server_error,
        },
        lifespan=_closing(store),
    )
    app.state.console = Console(config, store, CookieSigner(secret or new_token()))
    return app
