"""What every page shares: the signed-in session and its access, the CSRF check of a POST,
rendering, and the refusals (403, signed out) as exceptions the app turns into pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import Environment, FileSystemLoader
from psycopg2.extensions import connection as Connection
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from loader.console.access import Access, access_of
from loader.console.config import ConsoleConfig
from loader.console.security import COOKIE, CSRF_FIELD, CSRF_HEADER, CookieSigner, same_token
from loader.console.sessions import Session, SessionStore, using

# autoescape on for every template: a value from the database is always text in the page
TEMPLATES = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
    )
)
T = TypeVar("T")


class Forbidden(Exception):
    """This role may not open the page."""


class SignedOut(Exception):
    """No live session: never signed in, signed out, idle too long, or a refused cookie."""

    def __init__(self, expired: bool) -> None:
        super().__init__("signed out")
        self.expired = expired


class BadInput(Exception):
    """A form's value is refused; the message says why and what to give instead."""


@dataclass
class Console:
    config: ConsoleConfig
    store: SessionStore
    signer: CookieSigner


@dataclass
class Visit:
    """A request of a signed-in person."""

    request: Request
    session: Session

    @property
    def console(self) -> Console:
        return self.request.app.state.console

    async def run(self, allowed: Callable[[Access], bool], work: Callable[..., T]) -> T:
        """`work(conn, access)` on the session's connection, in a worker thread, after the
        role's access allows it (else 403)."""

        def guarded() -> T:
            with using(self.session) as conn:
                access = access_of(conn, self.console.config)
                if not allowed(access):
                    raise Forbidden
                return work(conn, access)

        return await run_in_threadpool(guarded)

    async def page(
        self,
        template: str,
        allowed: Callable[[Access], bool],
        work: Callable[[Connection, Access], dict[str, Any]],
        status_code: int = 200,
    ) -> HTMLResponse:
        def with_access(conn: Connection, access: Access) -> dict[str, Any]:
            return {**work(conn, access), "access": access}

        context = await self.run(allowed, with_access)
        return self.render(template, context, status_code)

    def render(
        self, template: str, context: dict[str, Any], status_code: int = 200
    ) -> HTMLResponse:
        return render(self.request, template, {"session": self.session, **context}, status_code)

    async def form(self) -> FormData:
        """The POST's form, after its CSRF token is checked (refused: signed out)."""
        form = await self.request.form()
        given = form.get(CSRF_FIELD) or self.request.headers.get(CSRF_HEADER)
        if not same_token(self.session.csrf, str(given) if given else None):
            raise CsrfRefused
        return form

    def check_csrf_header(self) -> None:
        if not same_token(self.session.csrf, self.request.headers.get(CSRF_HEADER)):
            raise CsrfRefused


class CsrfRefused(Exception):
    """A POST without this session's CSRF token."""


def visit(request: Request) -> Visit:
    console: Console = request.app.state.console
    cookie = request.cookies.get(COOKIE)
    data = console.signer.read(cookie)
    if data is None:
        raise SignedOut(expired=cookie is not None)
    session_id = str(data.get("sid", ""))
    session = console.store.get(session_id)
    if session is None or not same_token(session.csrf, data.get("csrf")):
        raise SignedOut(expired=True)
    if session.conn.closed:  # Postgres ended it (restart, terminated): sign in again
        console.store.close(session_id)
        raise SignedOut(expired=True)
    return Visit(request, session)


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
