"""`logins console` (the web console, docs/console.md) and `logins docs` (the dbt docs site it
serves). Starlette and uvicorn are imported here only, so other commands never load them."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from loader.errors import ConfigurationError


def _docs_dir() -> Path:
    from loader.paths import project_root
    from loader.settings import console_settings

    path = Path(console_settings().docs_dir)
    return path if path.is_absolute() else project_root() / path


def console(args: argparse.Namespace) -> None:
    try:
        import uvicorn

        from loader.console.app import create_app
        from loader.console.config import from_settings
    except ImportError as error:
        raise ConfigurationError(
            f"the console needs the `console` extra ({error.name} is missing): "
            "pip install -e '.[console]'"
        ) from None
    docs = _docs_dir()
    app = create_app(from_settings(docs_dir=docs))
    print(f"logins console on http://{args.host}:{args.port}/ (sign in with a Postgres role)")
    if not (docs / "index.html").exists():
        print("  the docs page is empty until `logins docs` generates the dbt docs site")
    # uvicorn's access log has paths only: no page puts a value in a URL
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", server_header=False)


def docs(args: argparse.Namespace) -> None:
    from loader.settings import postgres_credentials
    from loader.transform.dbt_build import docs_generate

    target = _docs_dir()
    docs_generate(postgres_credentials(), target)
    print(f"wrote the dbt docs site to {target}; `logins console` serves it under /docs")


def add_commands(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser(
        "console", help="serve the web console (sign in with a Postgres role)"
    )
    command.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    command.add_argument("--port", type=_port, default=8080, help="port to listen on (8080)")
    command.set_defaults(handler=console)
    generate = commands.add_parser(
        "docs", help="generate the dbt docs site the console serves under /docs"
    )
    generate.set_defaults(handler=docs)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1 to 65535)")
    return int(text)
