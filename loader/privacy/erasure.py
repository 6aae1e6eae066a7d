"""Erasure: `forget` a user (exactly their messages, everywhere the pipeline keeps them)
and `purge-raw` (processed bodies past retention); both leave an audit row and vacuum."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

import base64
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from loader import warehouse
from loader.errors import ConfigurationError, PipelineError
from loader.names import DLT_LOADS, KINDS, RAW_TABLE, REJECTS, STAGING, USER_LOGINS, Schemas
from loader.privacy.guards import guard, transaction
from loader.privacy.recovery import user_masks

# A body erased by `forget` or `purge-raw` is the empty string: raw.body is NOT NULL (dlt's
# schema) and SQS never delivers an empty body, so '' cannot be confused with a real message.
ERASED_BODY = ""


MIN_USER_ID_CHARS = 8


# id characters around a token: a non-JSON body names the user only where the id stands alone
_ID_CHARACTER = r"[\w-]"


@dataclass
class Erasure:
    shredded: int = 0
    shared_kept: list[tuple[str, str]] = field(default_factory=list)
    raw_bodies: int = 0  # JSON bodies whose user_id is theirs, however it is spelled
    unparsed_bodies: int = 0  # bodies that are not JSON but name them as a whole token
    reject_bodies: int = 0
    masks_replaced: int = 0
    not_vacuumed: list[str] = field(default_factory=list)


def check_user_id(user_id: str) -> None:
    if len(user_id.strip()) < MIN_USER_ID_CHARS:
        raise ConfigurationError(
            f"--user-id {user_id!r} is too short to name one user (at least "
            f"{MIN_USER_ID_CHARS} characters): give the user_id exactly as in user_logins"
        )


def forget(
    source: PostgresCredentials | Connection,
    schemas: Schemas,
    user_id: str,
    rewrite: bool = False,
) -> Erasure:
    """Erase a user: crypto-shred the originals of their values, erase every body and
    attribute of their messages, and replace their rows' masks in user_logins with random
    tokens, so no mask links to a value (a brute force of the mask finds none of them).

    Their messages are those whose body parses to their user_id (JSON escapes decoded), and
    those whose body is not JSON but holds their id as a whole token; nobody else's. A value
    another user also has (a shared NAT address, a shared device) is that user's data too: its
    encrypted original is kept, and reported. Rows stay (with their user_id), so every message
    is still counted. The rewritten tables are vacuumed, so no dead row keeps a value; with
    `rewrite`, rewritten whole (VACUUM FULL), so no erased byte stays in their pages' free space.
    `source`: credentials, or the console's signed-in connection (autocommit, left open).
    """
    check_user_id(user_id)
    erasure = Erasure()
    with transaction(source) as conn:
        tables = [t for t in schemas.pipeline_tables if warehouse.table_exists(conn, *t)]
        guard(conn, schemas, tables, write=True)
        present = set(tables)
        json_ids, unparsed_ids = _their_messages(conn, schemas, user_id, present)
        message_ids = sorted(json_ids | unparsed_ids)
        masks = user_masks(conn, schemas, user_id, message_ids)
        # every user_logins row of theirs gives a pair here, so no pair and no message: unknown
        if not message_ids and not masks:
            raise UnknownUser(
                f"no message of user_id {user_id!r} was found: nothing was erased (check the id)"
            )
        erasure.shared_kept = _shared_with_others(conn, schemas, user_id, masks)
        unshared = [pair for pair in masks if pair not in erasure.shared_kept]
        with conn.cursor() as cursor:
            cursor.execute(
                "select pii.shred(%s, %s, %s)",
                (f"user_id={user_id}", [k for k, _ in unshared], [m for _, m in unshared]),
            )
            erasure.shredded = cursor.fetchone()[0]
        raw_erased = _erase_raw(conn, schemas, message_ids)
        erasure.raw_bodies = len(raw_erased & json_ids)
        erasure.unparsed_bodies = len(raw_erased & unparsed_ids)
        if (schemas.staging, REJECTS) in present:
            erasure.reject_bodies = _erase_rejects(conn, schemas, message_ids)
        _erase_staging(
            conn,
            schemas,
            sql.SQL("(user_id = %(user)s or message_id = any(%(ids)s))"),
            {"user": user_id, "ids": message_ids},
        )
        if (schemas.marts, USER_LOGINS) in present:
            erasure.masks_replaced = _replace_masks(conn, schemas, user_id, message_ids)
        record_erasure(
            conn,
            "forget_plaintext",
            f"user_id={user_id}",
            erasure.raw_bodies + erasure.unparsed_bodies + erasure.reject_bodies,
        )
        erased_by = erasing_transaction_id(conn)
    erasure.not_vacuumed = vacuum(source, sorted(present), full=rewrite, after=erased_by)
    return erasure


class UnknownUser(PipelineError):
    exit_code = 1


def _their_messages(
    conn: Connection, schemas: Schemas, user_id: str, present: set[tuple[str, str]]
) -> tuple[set[str], set[str]]:
    """Message ids whose body is theirs: (JSON bodies naming them as user_id, bodies that are
    not JSON and hold their id as a token). A JSON body that spells the id differently holds a
    backslash, so only bodies with the id or a backslash are parsed."""
    json_ids: set[str] = set()
    unparsed: dict[str, str] = {}
    with conn.cursor() as cursor:
        for table in [(schemas.raw, RAW_TABLE), (schemas.staging, REJECTS)]:
            if table not in present:
                continue
            cursor.execute(
                sql.SQL(
                    "select message_id, pipeline_lib.json_user_id(body) = %(user)s,"
                    " case when not pipeline_lib.is_json(body) then body end"
                    " from {} where body != %(erased)s"
                    " and (strpos(body, %(user)s) > 0 or strpos(body, %(backslash)s) > 0)"
                ).format(schemas.relation(*table)),
                {"user": user_id, "erased": ERASED_BODY, "backslash": "\\"},
            )
            for message_id, is_theirs, unparsed_body in cursor.fetchall():
                if is_theirs:
                    json_ids.add(message_id)
                elif unparsed_body is not None:
                    unparsed[message_id] = unparsed_body
        if (schemas.staging, STAGING) in present:
            cursor.execute(
                sql.SQL("select message_id from {} where user_id = %s").format(
                    schemas.staging_events
                ),
                (user_id,),
            )
            json_ids.update(message_id for (message_id,) in cursor.fetchall())
        for message_id, body in _encoded_bodies(conn, schemas, present):
            try:
                doc = json.loads(body)
            except ValueError:
                unparsed[message_id] = body
                continue
            if isinstance(doc, dict) and doc.get("user_id") == user_id:
                json_ids.add(message_id)
    token = re.compile(f"(?<!{_ID_CHARACTER}){re.escape(user_id)}(?!{_ID_CHARACTER})")
    unparsed_ids = {m for m, body in unparsed.items() if token.search(body) and m not in json_ids}
    return json_ids, unparsed_ids


def _encoded_bodies(
    conn: Connection, schemas: Schemas, present: set[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Bodies Postgres could not store as text (a NUL), kept base64 (loader/source.py), decoded
    here: (message_id, body)."""
    queries = []
    if (schemas.raw, RAW_TABLE) in present and warehouse.column_exists(
        conn, schemas.raw, RAW_TABLE, "body_encoding"
    ):
        queries.append(
            sql.SQL(
                "select message_id, body from {} where body_encoding = 'base64' and body != ''"
            ).format(schemas.raw_messages)
        )
    if (schemas.staging, REJECTS) in present:
        queries.append(
            sql.SQL(
                "select message_id, body from {} where reject_code = 'unstorable_body'"
                " and body != ''"
            ).format(schemas.rejects)
        )
    decoded = []
    with conn.cursor() as cursor:
        for query in queries:
            cursor.execute(query)
            for message_id, body in cursor.fetchall():
                try:
                    text = base64.b64decode(body).decode("utf-8", "surrogatepass")
                except ValueError:
                    continue
                decoded.append((message_id, text))
    return decoded


def _erase_raw(conn: Connection, schemas: Schemas, message_ids: list[str]) -> set[str]:
    """Blank the bodies and message attributes of these messages (every delivery); the rows
    stay, so every message id is still accounted for. Returns the ids it changed."""
    with conn.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "update {} set body = %(erased)s, message_attributes = null"
                " where message_id = any(%(ids)s)"
                " and (body != %(erased)s or message_attributes is not null)"
                " returning message_id"
            ).format(schemas.raw_messages),
            {"erased": ERASED_BODY, "ids": message_ids},
        )
        return {message_id for (message_id,) in cursor.fetchall()}


def _erase_rejects(conn: Connection, schemas: Schemas, message_ids: list[str]) -> int:
    with conn.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "update {} set body = %(erased)s where message_id = any(%(ids)s)"
                " and body != %(erased)s"
            ).format(schemas.rejects),
            {"erased": ERASED_BODY, "ids": message_ids},
        )
        return int(cursor.rowcount)


def _replace_masks(conn: Connection, schemas: Schemas, user_id: str, message_ids: list[str]) -> int:
    """Their rows' masks become random tokens (64 hex characters, like a mask): no HMAC of
    any value matches them. Their rows no longer count as duplicates of any other row."""
    token = sql.SQL("replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')")
    with conn.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "update {logins} set masked_ip = {token}, masked_device_id = {token}"
                " where user_id = %(user)s or message_id = any(%(ids)s)"
            ).format(logins=schemas.user_logins, token=token),
            {"user": user_id, "ids": message_ids},
        )
        return int(cursor.rowcount)


def _shared_with_others(
    conn: Connection, schemas: Schemas, user_id: str, masks: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    shared = []
    with conn.cursor() as cursor:
        for kind, mask in masks:
            cursor.execute(
                sql.SQL("select exists (select from {} where {} = %s and user_id != %s)").format(
                    schemas.user_logins, sql.Identifier(KINDS[kind])
                ),
                (mask, user_id),
            )
            if cursor.fetchone()[0]:
                shared.append((kind, mask))
    return shared


def _erase_staging(
    conn: Connection, schemas: Schemas, condition: sql.Composable, params: dict[str, object]
) -> None:
    """Staging is a table (parsed once per body): its copy of the plaintext goes too. The rows
    stay, with their reason and codes, so the marts and the conservation test still count."""
    if not warehouse.table_exists(conn, schemas.staging, STAGING):
        return
    with conn.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                # valid logins keep no body in staging (null), only their fields
                "update {staging} as events"
                " set body = case when body is not null then %(erased)s end,"
                " ip = null, device_id = null"
                " where {condition}"
                " and (body != %(erased)s or ip is not null or device_id is not null)"
            ).format(staging=schemas.staging_events, condition=condition),
            {"erased": ERASED_BODY, **params},
        )


def erasing_transaction_id(conn: Connection) -> str:
    """The id of the erasing transaction: VACUUM can remove the versions it replaced only once
    no transaction that started before it commits is left."""
    with conn.cursor() as cursor:
        cursor.execute("select pg_catalog.pg_current_xact_id()::xid::text")
        return str(cursor.fetchone()[0])


def vacuum(
    source: PostgresCredentials | Connection,
    tables: Sequence[tuple[str, str]],
    full: bool = False,
    after: str | None = None,
) -> list[str]:
    """VACUUM what an erasure rewrote, so no dead row version keeps an erased value. Only a
    table's owner may: the admin becomes the owner for that one command (VACUUM runs any code
    of the table as its owner, in a mode that cannot change role back). VACUUM frees dead rows'
    space without overwriting it; `full` rewrites each table into new files instead (an
    exclusive lock for as long as that takes), so no erased byte is left in its pages. With
    `after` (the erasing transaction's id), it first waits a while for the transactions that
    can still see the old versions (any older snapshot in this database, autovacuum's included)
    to end. Returns what it could not vacuum, with why."""
    skipped = []
    command = sql.SQL("vacuum (full) {}" if full else "vacuum {}")
    with warehouse.opened(source) as conn, conn.cursor() as cursor:
        holders = _wait_for_older_snapshots(cursor, after) if after else []
        if holders:
            skipped.append(
                "transactions older than the erasure still run (pids "
                f"{', '.join(map(str, holders))}): the old row versions stay until they end; "
                "VACUUM the tables again then"
            )
        for schema, name in tables:
            relation = sql.Identifier(schema, name)
            cursor.execute(
                "select pg_get_userbyid(c.relowner),"
                " pg_has_role(current_user, c.relowner, 'USAGE'),"
                " pg_has_role(current_user, c.relowner, 'MEMBER')"
                " from pg_class c where c.oid = to_regclass(%s)",
                (relation.as_string(conn),),
            )
            row = cursor.fetchone()
            if row is None:
                continue
            owner, inherited, member = row
            if inherited:
                cursor.execute(command.format(relation))
            elif member:
                cursor.execute(sql.SQL("set role {}").format(sql.Identifier(owner)))
                try:
                    cursor.execute(command.format(relation))
                finally:
                    cursor.execute("reset role")
            else:
                skipped.append(f"{schema}.{name} (VACUUM it as its owner)")
    return skipped


VACUUM_WAIT_SECONDS = 30.0


def _wait_for_older_snapshots(cursor: Cursor, xid: str) -> list[int]:
    """Waits up to VACUUM_WAIT_SECONDS until no other session of this database holds a
    snapshot from before transaction `xid` committed; returns those still holding one."""
    deadline = time.monotonic() + VACUUM_WAIT_SECONDS
    while True:
        cursor.execute(
            "select a.pid from pg_catalog.pg_stat_activity as a"
            " where a.datname = pg_catalog.current_database()"
            " and a.pid != pg_catalog.pg_backend_pid() and a.backend_xmin is not null"
            " and pg_catalog.age(a.backend_xmin) >= pg_catalog.age(%s::xid)",
            (xid,),
        )
        holders = [int(pid) for (pid,) in cursor.fetchall()]
        if not holders or time.monotonic() > deadline:
            return holders
        time.sleep(0.2)


def purge_raw(
    credentials: PostgresCredentials, schemas: Schemas, older_than: str, rewrite: bool = False
) -> int:
    """Erase the bodies (and message attributes) of raw rows loaded over `older_than` ago whose
    message is already in user_logins or the rejects (which keep what is needed), then vacuum
    (with `rewrite`, VACUUM FULL). Returns how many were erased."""
    with transaction(credentials) as conn, conn.cursor() as cursor:
        try:
            # in the past, month by month as the purge computes it ('1 mon -30 days' is not)
            cursor.execute("select now() - %s::interval > now()", (older_than,))
        except psycopg2.DataError as error:
            raise ConfigurationError(
                f"--older-than {older_than!r} is not a Postgres interval: write e.g. '7 days'"
            ) from error
        if cursor.fetchone()[0]:
            raise ConfigurationError(
                f"--older-than {older_than!r} is negative, which would purge every body: "
                "write how old a body must be, e.g. '7 days'"
            )
        for schema, table in ((schemas.marts, USER_LOGINS), (schemas.staging, REJECTS)):
            if not warehouse.table_exists(conn, schema, table):
                return 0  # nothing has been built yet, so nothing is safe to erase
        written = [(schemas.raw, RAW_TABLE), (schemas.staging, STAGING)]
        written = [t for t in written if warehouse.table_exists(conn, *t)]
        guard(conn, schemas, written, write=True)
        guard(
            conn,
            schemas,
            [
                (schemas.raw, DLT_LOADS),
                (schemas.marts, USER_LOGINS),
                (schemas.staging, REJECTS),
            ],
            write=False,
        )
        cursor.execute(
            sql.SQL(
                "update {raw} as messages set body = %(erased)s, message_attributes = null"
                " from {loads} as loads"
                " where messages._dlt_load_id = loads.load_id"
                " and loads.inserted_at < now() - %(older)s::interval"
                " and messages.body != %(erased)s"
                " and (exists (select from {logins} as l where l.message_id = messages.message_id)"
                " or exists (select from {rejects} as r where r.message_id = messages.message_id))"
            ).format(
                raw=schemas.raw_messages,
                loads=schemas.raw_loads,
                logins=schemas.user_logins,
                rejects=schemas.rejects,
            ),
            {"erased": ERASED_BODY, "older": older_than},
        )
        erased = cursor.rowcount
        _erase_staging(
            conn,
            schemas,
            sql.SQL(
                "loaded_at < now() - %(older)s::interval"
                " and (exists (select from {logins} as l where l.message_id = events.message_id)"
                " or exists (select from {rejects} as r where r.message_id = events.message_id))"
            ).format(logins=schemas.user_logins, rejects=schemas.rejects),
            {"older": older_than},
        )
        record_erasure(conn, "purge_raw", f"older_than={older_than}", erased)
        erased_by = erasing_transaction_id(conn)
    vacuum(credentials, written, full=rewrite, after=erased_by)
    return erased


def record_erasure(conn: Connection, action: str, request: str, count: int) -> None:
    with conn.cursor() as cursor:
        cursor.execute("select pii.record_plaintext_erasure(%s, %s, %s)", (action, request, count))
