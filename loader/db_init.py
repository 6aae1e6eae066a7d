"""`logins db init`: prepare a database for the pipeline (idempotent)."""

from __future__ import annotations

from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from loader import warehouse
from loader.errors import ConfigurationError
from loader.keys import configured_key, generate_key_file
from loader.settings import PiiSettings


def init_database(
    credentials: PostgresCredentials, pii: PiiSettings, generate_key: bool = False
) -> list[str]:
    """pgcrypto, the masking function and the HMAC key. Returns what it did, for the user."""
    notes: list[str] = []
    with warehouse.connect(credentials) as conn:
        if not warehouse.may_manage_pii(conn):
            # e.g. `logins run` as the transformer role: an admin installed (and owns) it
            return []
        warehouse.install_masking(conn)
        status = warehouse.install_hmac_key(conn, configured_key(pii))
        if status == "missing":
            if not generate_key:
                raise ConfigurationError(
                    "no HMAC key is installed and none is configured: set PII__HMAC_KEY "
                    "(at least 32 random bytes, hex) or run `logins db init --generate-key`"
                )
            path = generate_key_file(pii)
            status = warehouse.install_hmac_key(conn, configured_key(pii))
            notes.append(
                f"generated a new HMAC key in {path} (git-ignored); keep a copy in your secret "
                "store: the same key keeps masks comparable across databases"
            )
        if status == "installed":
            notes.append("installed the HMAC key into pii.hmac_keys")
    return notes
