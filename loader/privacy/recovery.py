"""Recovery: a recovery key pair, and the originals behind masks, decrypted client-side
through the audited `pii.recover()` (every use leaves a row in `pii.audit_log`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from loader import warehouse
from loader.names import KINDS, USER_LOGINS, Schemas
from loader.privacy.guards import guard, transaction
from loader.privacy.recovery_keys import (
    Decryptor,
    decrypt_with_data_key,
    generate,
    write_private_key,
)


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
            guard(conn, schemas, [(schemas.marts, USER_LOGINS)], write=False)
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
        rows = sealed_originals(conn, request, pairs)
        data_keys: dict[int, str] = {}  # one private-key operation per sealing batch
        recovered = []
        for kind, mask, ciphertext, data_key_id, wrapped_key in rows:
            if data_key_id not in data_keys:
                data_keys[data_key_id] = decryptor.decrypt(wrapped_key)
            value = decrypt_with_data_key(data_keys[data_key_id], ciphertext)
            recovered.append(Recovered(kind, mask, value))
    return sorted(recovered, key=lambda r: (r.kind, r.value)), len(pairs) - len(recovered)


def sealed_originals(
    conn: Connection, request: str, pairs: Sequence[tuple[str, str]]
) -> list[tuple[str, str, bytes, int, bytes]]:
    """What pii.recover returns for these (kind, mask) pairs, `request` in its audit row:
    (kind, mask, ciphertext, data_key_id, wrapped data key), still encrypted. The CLI decrypts
    them here; the console sends them to the officer's browser, which decrypts them there."""
    with conn.cursor() as cursor:
        cursor.execute(
            "select value_kind, value_mask, ciphertext, data_key_id, wrapped_key"
            " from pii.recover(%s, %s, %s)",
            (request, [kind for kind, _ in pairs], [mask for _, mask in pairs]),
        )
        return [
            (kind, mask, bytes(ciphertext), data_key_id, bytes(wrapped))
            for kind, mask, ciphertext, data_key_id, wrapped in cursor.fetchall()
        ]


def user_masks(
    conn: Connection, schemas: Schemas, user_id: str, message_ids: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """Every (kind, mask) of a user's rows in user_logins (and of these messages' rows), all
    key versions."""
    if not warehouse.table_exists(conn, schemas.marts, USER_LOGINS):
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
