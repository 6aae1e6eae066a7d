"""The dlt settings the load relies on, given to dlt as its last configuration provider (its
public `register_provider`), so the environment and `.dlt/*.toml` still override each one."""

from __future__ import annotations

from typing import Any

import dlt
from dlt.common.configuration.providers import CustomLoaderDocProvider

PROVIDER_NAME = "logins-load-defaults"

LOAD_SETTINGS: dict[str, Any] = {
    "normalize": {
        # Arrow rows skip dlt's normalizer, so ask it for the columns staging relies on.
        "parquet_normalizer": {"add_dlt_load_id": True, "add_dlt_id": True},
        # each Arrow table goes to disk as it comes: dlt's default buffers of 5,000 items
        # would hold that many tables (or 5,000 large messages) first
        "data_writer": {"buffer_max_items": 1},
    },
    "sources": {"data_writer": {"buffer_max_items": 1}},
    # Load files are written and COPYed at once, on one host: gzip would cost more CPU than
    # the rest of the load.
    "data_writer": {"disable_compression": True},
    # once loaded, a package's data files (message bodies: plaintext PII) leave the disk
    "load": {"delete_completed_jobs": True},
    # Ctrl-C is Python's KeyboardInterrupt at once: dlt's own handler would defer it, and when
    # the step then completes, forget it, and the load would go on
    "runtime": {"intercept_signals": False},
}


def register() -> None:
    """Once per process, before the first pipeline is made."""
    if any(provider.name == PROVIDER_NAME for provider in dlt.config.config_providers):
        return
    dlt.config.register_provider(
        CustomLoaderDocProvider(PROVIDER_NAME, lambda: LOAD_SETTINGS, supports_secrets=False)
    )
