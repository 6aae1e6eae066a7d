"""The privacy desk (pii_admin): look up a user or a mask; recover (the server fetches the
ciphertexts through the audited pii.recover and sends them to the browser, which decrypts them
with the officer's key: the key and its passphrase never reach the server); erase a user
(`logins pii forget`'s code, on the officer's connection); the audit log, newest first."""

from __future__ import annotations

import base64
import re
from typing import Any

from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loader.console.access import Access
from loader.console.config import ConsoleConfig
from loader.console.web import BadInput, visit
from loader.names import KINDS, USER_LOGINS
from loader.privacy import erasure, recovery
from loader.privacy.guards import guard, transaction

AUDIT_SHOWN = 50
MASK = re.compile(r"[0-9a-f]{64}")
MAX_USER_ID_CHARS = 128  # user_logins.user_id is varchar(128)
MAX_REASON_CHARS = 500


def _allowed(access: Access) -> bool:
    return access.privacy


def check_user_id(user_id: str) -> str:
    user_id = user_id.strip()
    if (
        len(user_id) < erasure.MIN_USER_ID_CHARS
        or len(user_id) > MAX_USER_ID_CHARS
        or not user_id.isprintable()
    ):
        raise BadInput(
            f"{user_id[:40]!r} is not a user id: give the user_id exactly as in user_logins "
            f"({erasure.MIN_USER_ID_CHARS} to {MAX_USER_ID_CHARS} characters), or a mask "
            "(64 hex digits)"
        )
    return user_id


async def desk(request: Request) -> Response:
    current = visit(request)

    def work(conn: Connection, access: Access) -> dict[str, Any]:
        return {"audit": audit_log(conn)}

    return await current.page("privacy.html", _allowed, work)


async def lookup(request: Request) -> Response:
    """A POST, so that a user id stays out of URLs and access logs."""
    current = visit(request)
    form = await current.form()
    config = current.console.config
    asked = str(form.get("q") or "").strip()

    def work(conn: Connection, access: Access) -> dict[str, Any]:
        context: dict[str, Any] = {"asked": asked, "audit": audit_log(conn)}
        try:
            context["found"] = look_up(conn, config, asked)
        except BadInput as refusal:
            context["message"] = str(refusal)
        return context

    return await current.page("privacy.html", _allowed, work)


def look_up(conn: Connection, config: ConsoleConfig, asked: str) -> dict[str, Any]:
    """The rows of a mask (either kind) or of a user id; refused when there are none."""
    marts = config.schemas.user_logins
    if not asked:
        raise BadInput("give a user id or a mask to look up")
    if MASK.fullmatch(asked):
        where = sql.SQL("masked_ip = %(q)s or masked_device_id = %(q)s")
        what = "mask"
    else:
        asked = check_user_id(asked)
        where = sql.SQL("user_id = %(q)s")
        what = "user_id"
    # user_logins is the transformer's: refused if it carries another role's code (a view
    # or policy calling its function would run that function as this officer)
    with transaction(conn), conn.cursor() as cursor:
        guard(conn, config.schemas, [(config.schemas.marts, USER_LOGINS)], write=False)
        cursor.execute(
            sql.SQL(
                "select user_id, device_type, masked_ip, masked_device_id, locale,"
                " app_version_string, create_date::text, message_id from {} where {}"
                " order by create_date, message_id"
            ).format(marts, where),
            {"q": asked},
        )
        rows = cursor.fetchall()
    if not rows:
        raise BadInput(
            f"unknown {'mask' if what == 'mask' else 'user id'}: no row of user_logins has it"
        )
    return {"what": what, "value": asked, "rows": rows}


def audit_log(conn: Connection) -> list[tuple[Any, ...]]:
    with conn.cursor() as cursor:
        cursor.execute(
            "select audit_id, at, actor, action, request, value_count from pii.audit_log"
            " order by audit_id desc limit %s",
            (AUDIT_SHOWN,),
        )
        return cursor.fetchall()


async def recover(request: Request) -> Response:
    """JSON in ({what, value, reason}), the sealed originals out, base64."""
    current = visit(request)
    current.check_csrf_header()
    try:
        asked = await request.json()
    except ValueError:
        asked = None
    if not isinstance(asked, dict):
        return JSONResponse({"error": "send what, value and reason as JSON"}, status_code=400)
    config = current.console.config

    def work(conn: Connection, access: Access) -> dict[str, Any]:
        what, value, reason = _recovery_request(asked)
        pairs = _pairs(conn, config, what, value)
        sealed = recovery.sealed_originals(conn, f"{what}={value}; reason: {reason}", pairs)
        return _as_json(sealed, len(pairs))

    try:
        return JSONResponse(await current.run(_allowed, work))
    except BadInput as refusal:
        return JSONResponse({"error": str(refusal)}, status_code=400)


def _recovery_request(asked: dict[str, Any]) -> tuple[str, str, str]:
    what = str(asked.get("what", ""))
    value = str(asked.get("value", "")).strip()
    reason = " ".join(str(asked.get("reason", "")).split())
    if not reason:
        raise BadInput("give a reason: it is recorded in the audit log with the request")
    if len(reason) > MAX_REASON_CHARS:
        raise BadInput(f"the reason is too long: at most {MAX_REASON_CHARS} characters")
    if what == "user_id":
        return what, check_user_id(value), reason
    if what not in KINDS or not MASK.fullmatch(value):
        raise BadInput("a mask is 64 hex digits, of an ip or a device_id")
    return what, value, reason


def _pairs(conn: Connection, config: ConsoleConfig, what: str, value: str) -> list[tuple[str, str]]:
    """(kind, mask) pairs to recover: the user's (as `logins pii recover --user-id` finds
    them), or the one mask, which must be in user_logins."""
    schemas = config.schemas
    if what == "user_id":
        with transaction(conn):
            guard(conn, schemas, [(schemas.marts, USER_LOGINS)], write=False)
            pairs = recovery.user_masks(conn, schemas, value)
        if not pairs:
            raise BadInput("unknown user id: no row of user_logins has it")
        return pairs
    with transaction(conn), conn.cursor() as cursor:
        guard(conn, schemas, [(schemas.marts, USER_LOGINS)], write=False)
        cursor.execute(
            sql.SQL("select exists (select from {} where {} = %s)").format(
                schemas.user_logins, sql.Identifier(KINDS[what])
            ),
            (value,),
        )
        if not cursor.fetchone()[0]:
            raise BadInput(f"unknown mask: no row of user_logins has this {what} mask")
    return [(what, value)]


def _as_json(sealed: list[tuple[str, str, bytes, int, bytes]], asked: int) -> dict[str, Any]:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return {
        "values": [
            {"kind": kind, "mask": mask, "ciphertext": b64(ciphertext), "data_key": str(key_id)}
            for kind, mask, ciphertext, key_id, _ in sealed
        ],
        "data_keys": {str(key_id): b64(wrapped) for _, _, _, key_id, wrapped in sealed},
        "missing": asked - len(sealed),
    }


async def erase(request: Request) -> Response:
    current = visit(request)
    form = await current.form()
    config = current.console.config
    user_id = str(form.get("user_id") or "").strip()
    confirmation = str(form.get("confirmation") or "").strip()

    def work(conn: Connection, access: Access) -> dict[str, Any]:
        context: dict[str, Any] = {"audit": audit_log(conn), "erase_user": user_id}
        try:
            checked = check_user_id(user_id)
            if confirmation != checked:
                raise BadInput("the confirmation differs from the user id: retype the user id")
            done = erasure.forget(conn, config.schemas, checked)
        except (BadInput, erasure.UnknownUser) as refusal:
            return {**context, "erase_message": str(refusal)}
        return {**context, "erased": done, "audit": audit_log(conn)}

    return await current.page("privacy.html", _allowed, work)


routes = [
    Route("/privacy", desk, methods=["GET"]),
    Route("/privacy/lookup", lookup, methods=["POST"]),
    Route("/privacy/recover", recover, methods=["POST"]),
    Route("/privacy/erase", erase, methods=["POST"]),
]
