"""`logins pii ...`: recovery key, recovery, erasure, raw retention and HMAC key rotation.

Recovery and erasure go through the database's audited functions (pii.recover, pii.shred,
pii.audit), so every use leaves a row in pii.audit_log that its caller cannot delete.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from dlt.destinations.impl.postgres.configuration import PostgresCredentials
from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from loader import warehouse
from loader.errors import ConfigurationError
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
        with warehouse.connect(credentials) as conn:
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


def user_masks(conn: Connection, schemas: Schemas, user_id: str) -> list[tuple[str, str]]:
    """Every (kind, mask) of a user's rows in user_logins, all key versions."""
    selects = [
        sql.SQL("select {} as kind, {} as mask from {} where user_id = %(user)s").format(
            sql.Literal(kind), sql.Identifier(column), schemas.user_logins
        )
        for kind, column in KINDS.items()
    ]
    with conn.cursor() as cursor:
        cursor.execute(sql.SQL(" union ").join(selects), {"user": user_id})
        return sorted(cursor.fetchall())


@dataclass
class Erasure:
    shredded: int = 0
    shared_kept: list[tuple[str, str]] = field(default_factory=list)
    raw_bodies: int = 0
    reject_bodies: int = 0


def forget(credentials: PostgresCredentials, schemas: Schemas, user_id: str) -> Erasure:
    """Erase a user's IP and device id: crypto-shred the originals, erase plaintext bodies.

    A value another user also has (a shared NAT address, a shared device) is that user's data
    too: its encrypted original is kept, and reported. Analytics rows keep their masks.
    """
    erasure = Erasure()
    with transaction(credentials) as conn:
        masks = user_masks(conn, schemas, user_id)
        erasure.shared_kept = _shared_with_others(conn, schemas, user_id, masks)
        unshared = [pair for pair in masks if pair not in erasure.shared_kept]
        with conn.cursor() as cursor:
            cursor.execute(
                "select pii.shred(%s, %s, %s)",
                (f"user_id={user_id}", [k for k, _ in unshared], [m for _, m in unshared]),
            )
            erasure.shredded = cursor.fetchone()[0]
        erasure.raw_bodies = _erase_bodies(conn, schemas, schemas.raw_messages, user_id)
        if warehouse.table_exists(conn, schemas.staging, REJECTS):
            erasure.reject_bodies = _erase_bodies(conn, schemas, schemas.rejects, user_id)
        _erase_staging(conn, schemas, sql.SQL("user_id = %(user)s"), {"user": user_id})
        audit(
            conn,
            "forget_plaintext",
            f"user_id={user_id}",
            erasure.raw_bodies + erasure.reject_bodies,
        )
    return erasure


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


def _erase_bodies(conn: Connection, schemas: Schemas, table: sql.Composed, user_id: str) -> int:
    """Blank the bodies that belong to the user: JSON whose user_id is theirs, or (for a body
    that is not JSON) any that contains their id. The rows stay, so every message id is still
    accounted for."""
    parse = sql.SQL("{}.try_parse_jsonb(body)").format(sql.Identifier(schemas.staging))
    with conn.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "update {table} set body = %(erased)s"
                " where body != %(erased)s and strpos(body, %(user)s) > 0"
                " and coalesce(({parse}) ->> 'user_id' = %(user)s, true)"
            ).format(table=table, parse=parse),
            {"erased": ERASED_BODY, "user": user_id},
        )
        return cursor.rowcount


def _erase_staging(
    conn: Connection, schemas: Schemas, condition: sql.Composable, params: dict[str, str]
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


def purge_raw(credentials: PostgresCredentials, schemas: Schemas, older_than: str) -> int:
    """Erase the bodies of raw rows loaded over `older_than` ago whose message is already in
    user_logins or the rejects (which keep what is needed). Returns how many were erased."""
    with transaction(credentials) as conn, conn.cursor() as cursor:
        try:
            cursor.execute("select %s::interval", (older_than,))
        except psycopg2.DataError as error:
            raise ConfigurationError(
                f"--older-than {older_than!r} is not a Postgres interval: write e.g. '7 days'"
            ) from error
        for schema, table in ((schemas.marts, "user_logins"), (schemas.staging, REJECTS)):
            if not warehouse.table_exists(conn, schema, table):
                return 0  # nothing has been built yet, so nothing is safe to erase
        cursor.execute(
            sql.SQL(
                "update {raw} as messages set body = %(erased)s"
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
        audit(conn, "purge_raw", f"older_than={older_than}", erased)
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
    database by COPY, so no value is ever in a statement's text; the new masks are made there
    and sealed in the vault like any new value (pii.mask_new, pii.seal_new).
    """
    stale_rows = sql.SQL("coalesce(mask_key_version, 1) < %(version)s")
    with warehouse.connect(credentials) as conn, conn.cursor() as cursor:
        cursor.execute("select pii.mask_key_version()")
        result = Remasked(key_version=int(cursor.fetchone()[0]))
        cursor.execute(
            sql.SQL(
                "select 'ip', masked_ip from {logins} where {stale}"
                " union select 'device_id', masked_device_id from {logins} where {stale}"
            ).format(logins=schemas.user_logins, stale=stale_rows),
            {"version": result.key_version},
        )
        pairs = cursor.fetchall()
    recovered, _ = recover_masks(
        credentials, private_key, passphrase, f"remask to key version {result.key_version}", pairs
    )
    result.values = len(recovered)
    rows = io.StringIO()
    csv.writer(rows).writerows((r.kind, r.mask, r.value) for r in recovered)
    rows.seek(0)
    new_mask = sql.SQL(
        "(select m.mask from remask_values as r join remask_masks as m using (kind, value)"
        " where r.kind = {kind} and r.old_mask = {col})"
    )
    with transaction(credentials) as conn, conn.cursor() as cursor:
        cursor.execute(
            "create temp table remask_values (kind text, old_mask text, value text) on commit drop"
        )
        cursor.copy_expert("copy remask_values from stdin with (format csv)", rows)
        # one value may have had masks under several old keys: mask each value once
        cursor.execute(
            "create temp view remask_pairs as select distinct kind, value from remask_values"
        )
        cursor.execute(
            "create temp table remask_masks on commit drop as"
            " select kind, value, mask from pii.mask_new('pg_temp.remask_pairs')"
        )
        cursor.execute("select pii.seal_new('pg_temp.remask_masks')")
        ip = new_mask.format(kind=sql.Literal("ip"), col=sql.Identifier("masked_ip"))
        device = new_mask.format(
            kind=sql.Literal("device_id"), col=sql.Identifier("masked_device_id")
        )
        cursor.execute(
            sql.SQL(
                "update {logins} set masked_ip = {ip}, masked_device_id = {device},"
                " mask_key_version = %(version)s"
                " where {stale} and {ip} is not null and {device} is not null"
            ).format(logins=schemas.user_logins, ip=ip, device=device, stale=stale_rows),
            {"version": result.key_version},
        )
        result.rows = cursor.rowcount
        cursor.execute(
            sql.SQL("select count(*) from {} where {}").format(schemas.user_logins, stale_rows),
            {"version": result.key_version},
        )
        result.rows_left = int(cursor.fetchone()[0])
    return result


def rotate(credentials: PostgresCredentials) -> int:
    with warehouse.connect(credentials) as conn, conn.cursor() as cursor:
        cursor.execute("select pii.rotate_hmac_key()")
        return int(cursor.fetchone()[0])


def audit(conn: Connection, action: str, request: str, count: int) -> None:
    with conn.cursor() as cursor:
        cursor.execute("select pii.audit(%s, %s, %s)", (action, request, count))
