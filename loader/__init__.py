"""Thin loader for user-login events: SQS -> dlt -> Postgres schema `raw`.

Flattening, validation and masking are dbt's job (see dbt_project/).
"""

import os

# A PII pipeline must not phone home, and this machine has no outside network anyway.
# Users can still opt in by setting these variables themselves.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

# pyarrow's default pool (mimalloc) keeps what each chunk freed, about 60 MB of the loader's
# peak memory; the system allocator gives it back, at the same CPU (docs/performance.md).
# Set before anything imports pyarrow, which reads it once.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
