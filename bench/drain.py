"""The queue's own limit: a bare boto3 drain of N messages, nothing else.

Each of `--threads` threads receives 10 (the same request as the loader's: long poll, every
system and message attribute, the same visibility timeout) and deletes them in one batch,
until N messages have been received. Run as its own process, so its wall time, CPU and
memory are measured exactly as the loader's are.

    python -m bench.drain --queue-url URL --count N --threads K
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from urllib.parse import urlsplit

from botocore.config import Config

from loader.devstack.sqs_emulator import emulator_client


def drain(queue_url: str, endpoint: str, count: int, threads: int, wait_seconds: int) -> dict:
    client = emulator_client(
        endpoint,
        Config(max_pool_connections=2 * threads + 2, retries={"mode": "standard"}),
    )
    lock = threading.Lock()
    left = [count]
    received = [0]
    empty_polls = [0]

    def take() -> int:
        with lock:
            wanted = min(10, left[0])
            left[0] -= wanted
            return wanted

    def worker() -> None:
        while wanted := take():
            messages = client.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=300,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            with lock:
                left[0] += wanted - len(messages)
                received[0] += len(messages)
            if not messages:
                with lock:
                    empty_polls[0] += 1
                return
            client.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(messages)
                ],
            )

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return {
        "received": received[0],
        "seconds": time.monotonic() - started,
        "empty_polls": empty_polls[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--wait-seconds", type=int, default=2)
    args = parser.parse_args()
    parts = urlsplit(args.queue_url)
    endpoint = f"{parts.scheme}://{parts.netloc}"
    print(json.dumps(drain(args.queue_url, endpoint, args.count, args.threads, args.wait_seconds)))


if __name__ == "__main__":
    main()
