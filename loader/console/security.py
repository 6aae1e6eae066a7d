"""The console's protections: security headers on every response, the signed session cookie,
and the CSRF token every POST must carry."""

from __future__ import annotations

import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "console_session"
SIGNIN_COOKIE = "console_signin"  # the sign-in form's CSRF token, before there is a session
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# The cookie's signature ages out after this, whatever the idle timeout: a stolen old cookie
# is refused even if its session were still open.
COOKIE_MAX_AGE_SECONDS = 12 * 3600

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
}


class SecurityHeaders:
    """Adds the headers to every response; a response that set its own CSP (the dbt docs
    site) keeps it. Pages are never cached; the vendored static files may be."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "content-security-policy" not in headers:
                    headers["content-security-policy"] = CSP
                for name, value in HEADERS.items():
                    headers[name] = value
                if not static:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


class CookieSigner:
    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="logins-console")

    def sign(self, data: dict[str, str]) -> str:
        return self._serializer.dumps(data)

    def read(self, value: str | None) -> dict[str, str] | None:
        """The cookie's data, or None when it is missing, forged or too old."""
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=COOKIE_MAX_AGE_SECONDS)
        except BadSignature:  # SignatureExpired is one
            return None
        return data if isinstance(data, dict) else None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


def cookie_options(request: Request) -> dict[str, object]:
    return {
        "httponly": True,
        "samesite": "strict",
        "path": "/",
        "secure": request.url.scheme == "https",
    }
