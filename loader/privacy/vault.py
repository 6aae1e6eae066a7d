"""The vault and the HMAC keys: re-mask after a key rotation, seal originals that a
recovery key made later missed, rotate the key."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from dataclasses import dataclass
from pathlib import Path

from psycopg2 import sql

from loader import warehouse
from loader.errors import ConfigurationError
from loader.names import KINDS, STAGING, USER_LOGINS, Schemas
from loader.privacy.guards import guard, transaction
from loader.privacy.recovery import has_recovery_key, recover_masks


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
        guard(conn, schemas, [(schemas.marts, USER_LOGINS)], write=False)
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
        guard(conn, schemas, [(schemas.marts, USER_LOGINS)], write=True)
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
        tables = [(schemas.staging, STAGING), (schemas.marts, USER_LOGINS)]
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
