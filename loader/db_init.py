"""`logins db init`: prepare a database for the pipeline (idempotent)."""

from __future__ import annotations

import psycopg2.errors
from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from loader import warehouse
from loader.errors import ConfigurationError
from loader.ingest import raw_table
from loader.names import RAW_TABLE
from loader.operations import history
from loader.privacy import masking
from loader.privacy.keys import configured_key, generate_key_file
from loader.privacy.roles import ensure_owner_role
from loader.settings import LoaderSettings, PiiSettings, RolesSettings, roles_settings


def init_database(
    credentials: PostgresCredentials,
    pii: PiiSettings,
    generate_key: bool = False,
    raw: LoaderSettings | None = None,
    roles: RolesSettings | None = None,
) -> list[str]:
    """pgcrypto, the pii schema, the run history (ops) and the HMAC key, given to the owner
    role, and with `raw`, an existing raw table brought up to date. Returns what it did, for
    the user."""
    notes: list[str] = []
    with warehouse.connect(credentials) as conn:
        if not masking.may_manage_pii(conn):
            # e.g. `logins run` as the transformer role: an admin installed it
            return notes + (_upgrade_raw_table(credentials, raw) if raw else [])
        with conn.cursor() as cursor:
            cursor.execute("begin")  # all of the setup, or none of it
            owner = ensure_owner_role(cursor, roles or roles_settings())
            masking.install_masking(conn, owner)
            history.install(conn, owner)
            cursor.execute("commit")
        status = masking.install_hmac_key(conn, configured_key(pii))
        if status == "missing":
            if not generate_key:
                raise ConfigurationError(
                    "no HMAC key is installed and none is configured: set PII__HMAC_KEY "
                    "(at least 32 random bytes, hex) or run `logins db init --generate-key`"
                )
            path = generate_key_file(pii)
            status = masking.install_hmac_key(conn, configured_key(pii))
            notes.append(
                f"generated a new HMAC key in {path} (git-ignored); keep a copy in your secret "
                "store: the same key keeps masks comparable across databases"
            )
        if status == "installed":
            notes.append("installed the HMAC key into pii.hmac_keys")
    if raw is not None:  # after pipeline_lib is installed: raw's column needs it
        notes += _upgrade_raw_table(credentials, raw)
    return notes


def _upgrade_raw_table(credentials: PostgresCredentials, raw: LoaderSettings) -> list[str]:
    """A raw table an older loader made lacks `body_is_json`. Adding it rewrites the table
    under a lock that holds off loads and builds meanwhile (about 11 s at 1M rows), so
    `logins db init` does it when an operator chooses; otherwise the next load does."""
    where = f"{raw.dataset_name}.{RAW_TABLE}"
    with warehouse.connect(credentials) as conn:
        if not warehouse.table_exists(conn, raw.dataset_name, RAW_TABLE):
            return []
        if raw_table.has_json_flag(conn, raw.dataset_name, RAW_TABLE):
            return []  # up to date: nothing to ask of its owner
        try:
            # an admin rewrites the loader's table: refused if it carries the loader's code
            added = raw_table.prepare_raw_table(conn, raw.dataset_name, RAW_TABLE, guard=True)
        except psycopg2.errors.InsufficientPrivilege:
            return [
                f"{where} could not be brought up to date by this role (only its owner, the "
                "loader's role, may alter it): the next `logins load` will"
            ]
    return [f"added {raw_table.BODY_IS_JSON} to {where} (computed for every row)"] if added else []
