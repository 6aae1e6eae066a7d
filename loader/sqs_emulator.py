"""A local SQS emulator for `logins up` and the tests: moto's server, one request at a time.

moto's server handles requests on parallel threads, but its SQS model is not thread-safe:
concurrent receives sometimes hand one message to two consumers, and concurrent deletes can
bring back a message another delete just removed (seen here: 102 receipts for 100 messages,
messages left in flight after a complete load). A lock around the application makes it
behave like one queue; the loader's parallel receivers simply take turns.

Run: python -m loader.sqs_emulator --host 127.0.0.1 --port 4566
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

EMULATOR_ACCOUNT_ID = "000000000000"


class SerializedApp:
    """WSGI middleware: one request inside the wrapped application at a time."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            # the body is read inside the lock too: moto builds it lazily
            return list(self._app(environ, start_response))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_ACCOUNT_ID", EMULATOR_ACCOUNT_ID)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    app = SerializedApp(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
