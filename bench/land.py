"""Land N synthetic messages in raw through the loader's own dlt source, without SQS.

For working on the dbt side at volume: `logins load` of 1M messages through LocalStack takes
most of an hour here, while the rows it lands are these (same source, same dlt steps, same
chunking); only the SQS ids and receipt are made up. The benchmark itself drains a real queue.

    python -m bench.land --count 1000000      # into $PGDATABASE (PG* variables)
"""

from __future__ import annotations

import argparse
import functools
import sys
import uuid
from datetime import UTC, datetime

from loader.devstack import synthetic
from loader.ingest.batches import ReceivedBatch
from loader.ingest.load import land_batches
from loader.settings import loader_settings, postgres_credentials


def fake_batches(count: int, seed: int, batch_size: int = 10) -> list[ReceivedBatch]:
    now = datetime.now(UTC)
    sent = str(int(now.timestamp() * 1000))
    batches: list[ReceivedBatch] = []
    messages: list[dict[str, object]] = []
    for body in synthetic.bodies(count, seed=seed):
        messages.append(
            {
                "MessageId": str(uuid.uuid4()),
                "Body": body,
                "Attributes": {"SentTimestamp": sent, "ApproximateReceiveCount": "1"},
                "ReceiptHandle": "",
            }
        )
        if len(messages) == batch_size:
            batches.append(ReceivedBatch.from_messages(messages, now))
            messages = []
    if messages:
        batches.append(ReceivedBatch.from_messages(messages, now))
    return batches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.land", description=__doc__)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = loader_settings()
    sizes = range(0, args.count, settings.chunk_size)
    loads = (
        fake_batches(min(settings.chunk_size, args.count - first), args.seed + first)
        for first in sizes
    )
    say = functools.partial(print, file=sys.stderr)
    land_batches(settings, postgres_credentials(), loads, say, name="bench_land")
    return 0


if __name__ == "__main__":
    sys.exit(main())
