"""`logins pii ...`: recovery key, recovery, erasure, raw retention and HMAC key rotation.

Recovery and erasure go through the database's audited functions (pii.recover, pii.shred,
pii.audit), so every use leaves a row in pii.audit_log that its caller cannot delete.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from dlt.destinations.impl.postgres.configuration import PostgresCredentials
from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from loader import warehouse
from loader.attached_code import refuse_attached_code
from loader.errors import ConfigurationError, PipelineError
from loader.recovery_keys import Decryptor, decrypt_with_data_key, generate, write_private_key
from loader.source import RAW_TABLE

KINDS = {"ip": "masked_ip", "device_id": "masked_device_id"}
# A body erased by `forget` or `purge-raw` is the empty string: raw.body is NOT NULL (dlt's
# schema) and SQS never delivers an empty body, so '' cannot be confused with a real message.
ERASED_BODY = ""
REJECTS = "stg_sqs__login_event_rejects"
STAGING = "stg_sqs__login_events"


@dataclass(frozen=True)
class Schemas:
    """Where the pipeline's tables are: raw (dlt), staging and the marts (dbt)."""

    raw: str = "raw"
    staging: str = "staging"
    marts: str = "public"
    # the pipeline's owner role: functions it owns are trusted (loader/attached_code.py)
    owner_role: str | None = None

    def relation(self, schema: str, table: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))

    @property
    def raw_messages(self) -> sql.Composed:
        return self.relation(self.raw, RAW_TABLE)

    @property
    def raw_loads(self) -> sql.Composed:
        return self.relation(self.raw, "_dlt_loads")

    @property
    def user_logins(self) -> sql.Composed:
        return self.relation(self.marts, "user_logins")

    @property
    def rejects(self) -> sql.Composed:
        return self.relation(self.staging, REJECTS)

    @property
    def staging_events(self) -> sql.Composed:
        return self.relation(self.staging, STAGING)

    @property
    def pipeline_tables(self) -> list[tuple[str, str]]:
        """The tables erasure rewrites, owned by the loader and the transformer."""
        return [
            (self.raw, RAW_TABLE),
            (self.staging, STAGING),
            (self.staging, REJECTS),
            (self.marts, "user_logins"),
        ]


def guard(
    conn: Connection, schemas: Schemas, tables: Sequence[tuple[str, str]], write: bool
) -> None:
    """Locks `tables` for this transaction and refuses any that carries another role's code."""
    with conn.cursor() as cursor:
        refuse_attached_code(cursor, tables, write=write, owner_role=schemas.owner_role)


@contextmanager
def transaction(credentials: PostgresCredentials) -> Iterator[Connection]:
    """One transaction: all of it commits, or none of it."""
    with warehouse.connect(credentials) as conn:
        conn.autocommit = False
        with conn:
            yield conn


def keygen(credentials: PostgresCredentials, private_key: Path, passphrase: str) -> str:
    """A new recovery key pair: the private key to `private_key`, the public one installed."""
    pair = generate(passphrase)
    write_private_key(private_key, pair.private_armored)
    with transaction(credentials) as conn, conn.cursor() as cursor:
        cursor.execute("update pii.recovery_keys set is_current = false where is_current")
        cursor.execute(
            "insert into pii.recovery_keys (fingerprint, public_key, is_current)"
            " values (%s, %s, true)",
            (pair.fingerprint, pair.public_binary),
        )
    return pair.fingerprint


def has_recovery_key(conn: Connection) -> bool:
    with conn.cursor() as cursor:
        cursor.execute("select exists (select from pii.recovery_keys where is_current)")
        return bool(cursor.fetchone()[0])


@dataclass(frozen=True)
class Recovered:
    kind: str
    mask: str
    value: str


def recover(
    credentials: PostgresCredentials,
    schemas: Schemas,
    private_key: Path,
    passphrase: str,
    request: tuple[str, str],
) -> tuple[list[Recovered], int]:
    """The originals behind one mask ("ip" / "device_id", mask), or behind all of a user's
    masks ("user_id", id). Also returns how many masks had no encrypted original (masked before
    a recovery key was installed, or erased)."""
    what, asked_value = request
    if what == "user_id":
        with transaction(credentials) as conn:
            guard(conn, schemas, [(schemas.marts, "user_logins")], write=False)
            pairs = user_masks(conn, schemas, asked_value)
    else:
        pairs = [(what, asked_value)]
    return recover_masks(credentials, private_key, passphrase, f"{what}={asked_value}", pairs)


def recover_masks(
    credentials: PostgresCredentials,
    private_key: Path,
    passphrase: str,
    request: str,
    pairs: Sequence[tuple[str, str]],
) -> tuple[list[Recovered], int]:
    """Decrypts, here, what pii.recover returns (it records `request` in pii.audit_log). The
    key is unlocked first, so a wrong passphrase costs no audit row."""
    with Decryptor(private_key, passphrase) as decryptor, warehouse.connect(credentials) as conn:
        with conn.cursor() as cursor:
            cursor.execute(
                "select value_kind, value_mask, ciphertext, data_key_id, wrapped_key"
                " from pii.recover(%s, %s, %s)",
                (request, [kind for kind, _ in pairs], [mask for _, mask in pairs]),
            )
            rows = cursor.fetchall()
        data_keys: dict[int, str] = {}  # one private-key operation per sealing batch
        recovered = []
        for kind, mask, ciphertext, data_key_id, wrapped_key in rows:
            if data_key_id not in data_keys:
                data_keys[data_key_id] = decryptor.decrypt(bytes(wrapped_key))
            value = decrypt_with_data_key(data_keys[data_key_id], bytes(ciphertext))
            recovered.append(Recovered(kind, mask, value))
    return sorted(recovered, key=lambda r: (r.kind, r.value)), len(pairs) - len(recovered)


def user_masks(
    conn: Connection, schemas: Schemas, user_id: str, message_ids: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """Every (kind, mask) of a user's rows in user_logins (and of these messages' rows), all
    key versions."""
    if not warehouse.table_exists(conn, schemas.marts, "user_logins"):
        return []
    selects = [
        sql.SQL(
            "select {} as kind, {} as mask from {}"
            " where user_id = %(user)s or message_id = any(%(ids)s)"
        ).format(sql.Literal(kind), sql.Identifier(column), schemas.user_logins)
        for kind, column in KINDS.items()
    ]
    with conn.cursor() as cursor:
        cursor.execute(
            sql.SQL(" union ").join(selects), {"user": user_id, "ids": list(message_ids)}
        )
        return sorted(cursor.fetchall())


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


def forget(credentials: PostgresCredentials, schemas: Schemas, user_id: str) -> Erasure:
    """Erase a user: crypto-shred the originals of their values, erase every body and
    attribute of their messages, and replace their rows' masks in user_logins with random
    tokens, so no mask links to a value (a brute force of the mask finds none of them).

    Their messages are those whose body parses to their user_id (JSON escapes decoded), and
    those whose body is not JSON but holds their id as a whole token; nobody else's. A value
    another user also has (a shared NAT address, a shared device) is that user's data too: its
    encrypted original is kept, and reported. Rows stay (with their user_id), so every message
    is still counted. The rewritten tables are vacuumed, so no dead row keeps a value.
    """
    check_user_id(user_id)
    erasure = Erasure()
    with transaction(credentials) as conn:
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
        if (schemas.marts, "user_logins") in present:
            erasure.masks_replaced = _replace_masks(conn, schemas, user_id, message_ids)
        record_erasure(
            conn,
            "forget_plaintext",
            f"user_id={user_id}",
            erasure.raw_bodies + erasure.unparsed_bodies + erasure.reject_bodies,
        )
    erasure.not_vacuumed = vacuum(credentials, sorted(present))
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


def vacuum(credentials: PostgresCredentials, tables: Sequence[tuple[str, str]]) -> list[str]:
    """VACUUM what an erasure rewrote, so no dead row version keeps an erased value. Only a
    table's owner may: the admin becomes the owner for that one command (VACUUM runs any code
    of the table as its owner, in a mode that cannot change role back). Returns the tables it
    could not vacuum."""
    skipped = []
    with warehouse.connect(credentials) as conn, conn.cursor() as cursor:
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
                cursor.execute(sql.SQL("vacuum {}").format(relation))
            elif member:
                cursor.execute(sql.SQL("set role {}").format(sql.Identifier(owner)))
                try:
                    cursor.execute(sql.SQL("vacuum {}").format(relation))
                finally:
                    cursor.execute("reset role")
            else:
                skipped.append(f"{schema}.{name}")
    return skipped


def purge_raw(credentials: PostgresCredentials, schemas: Schemas, older_than: str) -> int:
    """Erase the bodies (and message attributes) of raw rows loaded over `older_than` ago whose
    message is already in user_logins or the rejects (which keep what is needed), then vacuum.
    Returns how many were erased."""
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
        for schema, table in ((schemas.marts, "user_logins"), (schemas.staging, REJECTS)):
            if not warehouse.table_exists(conn, schema, table):
                return 0  # nothing has been built yet, so nothing is safe to erase
        written = [(schemas.raw, RAW_TABLE), (schemas.staging, STAGING)]
        written = [t for t in written if warehouse.table_exists(conn, *t)]
        guard(conn, schemas, written, write=True)
        guard(
            conn,
            schemas,
            [
                (schemas.raw, "_dlt_loads"),
                (schemas.marts, "user_logins"),
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
    vacuum(credentials, written)
    return erased


@dataclass
class Remasked:
    key_version: int
    values: int = 0
    rows: int = 0
    rows_left: int = 0  # a value with no encrypted original (erased) cannot be re-masked


def remask(
    credentials: PostgresCredentials, schemas: Schemas, private_key: Path, passphrase: str
) -> Remasked:
    """Re-mask rows of older key versions with the current key, so duplicates match again.

    The originals come from the vault (an audited recovery, decrypted here) and go back to the
    database as values (never in a statement's text: parameters); pii.mask_values() masks them
    with the current key and seals them in the vault like any new value.
    """
    stale_rows = sql.SQL("coalesce(mask_key_version, 1) < %(version)s")
    with transaction(credentials) as conn, conn.cursor() as cursor:
        guard(conn, schemas, [(schemas.marts, "user_logins")], write=False)
        cursor.execute("select pii.mask_key_version()")
        version = int(cursor.fetchone()[0])
        cursor.execute(
            sql.SQL(
                "select 'ip', masked_ip from {logins} where {stale}"
                " union select 'device_id', masked_device_id from {logins} where {stale}"
            ).format(logins=schemas.user_logins, stale=stale_rows),
            {"version": version},
        )
        pairs = cursor.fetchall()
    recovered, _ = recover_masks(
        credentials, private_key, passphrase, f"remask to key version {version}", pairs
    )
    result = Remasked(key_version=version, values=len(recovered))
    with transaction(credentials) as conn, conn.cursor() as cursor:
        guard(conn, schemas, [(schemas.marts, "user_logins")], write=True)
        cursor.execute(
            "select masks, key_version from pii.mask_values(%s, %s)",
            ([r.kind for r in recovered], [r.value for r in recovered]),
        )
        masks, result.key_version = cursor.fetchone()
        new_masks = {kind: ([], []) for kind in KINDS}
        for value, mask in zip(recovered, masks, strict=True):
            new_masks[value.kind][0].append(value.mask)
            new_masks[value.kind][1].append(mask)
        cursor.execute(
            sql.SQL(
                "update {logins} as l set masked_ip = ip.new_mask,"
                " masked_device_id = device.new_mask, mask_key_version = %(version)s"
                " from unnest(%(old_ip)s::text[], %(new_ip)s::text[]) as ip (old_mask, new_mask),"
                " unnest(%(old_device)s::text[], %(new_device)s::text[])"
                " as device (old_mask, new_mask)"
                " where {stale} and l.masked_ip = ip.old_mask"
                " and l.masked_device_id = device.old_mask"
            ).format(logins=schemas.user_logins, stale=stale_rows),
            {
                "version": result.key_version,
                "old_ip": new_masks["ip"][0],
                "new_ip": new_masks["ip"][1],
                "old_device": new_masks["device_id"][0],
                "new_device": new_masks["device_id"][1],
            },
        )
        result.rows = cursor.rowcount
        cursor.execute(
            sql.SQL("select count(*) from {} where {}").format(schemas.user_logins, stale_rows),
            {"version": result.key_version},
        )
        result.rows_left = int(cursor.fetchone()[0])
    return result


def seal_missing(credentials: PostgresCredentials, schemas: Schemas) -> tuple[int, int]:
    """Seal the originals of user_logins rows (current key version) that the vault lacks, from
    staging's parsed values, while raw still holds their bodies: rows masked before a recovery
    key was installed. Returns (values looked at, values sealed)."""
    with transaction(credentials) as conn, conn.cursor() as cursor:
        if not has_recovery_key(conn):
            raise ConfigurationError(
                "no recovery key is installed: run `logins pii keygen` first, then seal-missing"
            )
        tables = [(schemas.staging, STAGING), (schemas.marts, "user_logins")]
        if not all(warehouse.table_exists(conn, *t) for t in tables):
            return 0, 0
        guard(conn, schemas, tables, write=False)
        values = sql.SQL(" union ").join(
            sql.SQL(
                "select {kind} as kind, events.{column} as value from {staging} as events"
                " join {logins} as logins on logins.message_id = events.message_id"
                " where events.{column} is not null"
                " and coalesce(logins.mask_key_version, 1) = pii.mask_key_version()"
            ).format(
                kind=sql.Literal(kind),
                column=sql.Identifier(kind),
                staging=schemas.staging_events,
                logins=schemas.user_logins,
            )
            for kind in KINDS
        )
        cursor.execute(
            sql.SQL(
                "select cardinality(given.kinds), masked.sealed from ("
                " select coalesce(array_agg(v.kind), '{{}}') as kinds,"
                " coalesce(array_agg(v.value), '{{}}') as vals from ({values}) as v) as given"
                " cross join lateral pii.mask_values(given.kinds, given.vals) as masked"
            ).format(values=values)
        )
        looked_at, sealed = cursor.fetchone()
    return int(looked_at), int(sealed)


def rotate(credentials: PostgresCredentials) -> int:
    with warehouse.connect(credentials) as conn, conn.cursor() as cursor:
        cursor.execute("select pii.rotate_hmac_key()")
        return int(cursor.fetchone()[0])


def record_erasure(conn: Connection, action: str, request: str, count: int) -> None:
    with conn.cursor() as cursor:
        cursor.execute("select pii.record_plaintext_erasure(%s, %s, %s)", (action, request, count))
