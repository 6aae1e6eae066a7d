"""The `logins` command line: every command, its arguments and its handler; the handlers live
in `pipeline_commands` and `pii_commands`."""

from __future__ import annotations

import argparse
from importlib import metadata
from typing import NoReturn

from loader import logs
from loader.cli import pipeline_commands
from loader.cli.console_commands import add_commands as add_console_commands
from loader.cli.pii_arguments import add_commands as add_pii_commands


def _add_sqs_protocol(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--sqs-protocol",
        choices=("json", "query"),  # settings.SQS_PROTOCOLS, without importing dlt for --help
        default=None,
        help="SQS wire protocol: query for endpoints without JSON, like the exercise's old "
        "LocalStack (default: SOURCES__SQS__PROTOCOL, else json)",
    )


class _Parser(argparse.ArgumentParser):
    """argparse, but a refused argument is one `error:` line (as every other refusal is),
    not the usage text too. Subcommands' parsers are of this class as well."""

    def error(self, message: str) -> NoReturn:
        logs.error("ArgumentError", f"{self.prog}: {message} (see `{self.prog} --help`)")
        self.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="logins",
        description="User-login ELT: SQS -> dlt -> Postgres raw -> dbt -> masked user_logins.",
        epilog="Configuration: environment variables, see docs/operations.md.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=None,
        help="human (default) or json: one event per line on stderr (default: LOG_FORMAT)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="make a local Postgres and SQS available (no Docker)")
    _add_sqs_protocol(up)
    up.set_defaults(handler=pipeline_commands.up)
    down = commands.add_parser("down", help="stop what `up` started")
    down.set_defaults(handler=pipeline_commands.down)

    db = commands.add_parser("db", help="database setup")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    init = db_commands.add_parser(
        "init",
        help="install pgcrypto, the masking function and the HMAC key, and bring an existing "
        "raw table up to date (idempotent)",
    )
    init.add_argument(
        "--generate-key",
        action="store_true",
        help="when no key is installed or configured, generate one into PII__HMAC_KEY_FILE",
    )
    init.set_defaults(handler=pipeline_commands.db_init)

    add_pii_commands(commands)

    seed = commands.add_parser("seed", help="send messages to the queue")
    seed.add_argument("--count", type=_positive, default=1000, help="synthetic messages (1000)")
    seed.add_argument("--file", help="a JSONL file: each line is sent verbatim as one body")
    seed.add_argument("--seed", type=_whole, default=None, help="random seed, for repeatable data")
    seed.add_argument(
        "--malformed-share",
        type=_share,
        default=0.01,
        help="share of malformed messages, 0 to 1 (0.01)",
    )
    _add_sqs_protocol(seed)
    seed.set_defaults(handler=pipeline_commands.seed)

    for name, handler, text in (
        ("load", pipeline_commands.load, "drain the queue into Postgres schema raw"),
        ("run", pipeline_commands.run, "load, then dbt build, then a summary"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "--max-messages", type=_positive, default=None, help="stop after this many messages"
        )
        _add_sqs_protocol(command)
        command.set_defaults(handler=handler)
        if name == "run":
            command.add_argument(
                "--full-check",
                action="store_true",
                help="also run dbt's whole-table checks and unit tests (TRANSFORM__FULL_CHECK)",
            )
    status = commands.add_parser(
        "status", help="queue, last runs, freshness, rejects; exit 0 only when healthy"
    )
    _add_sqs_protocol(status)
    status.set_defaults(handler=pipeline_commands.status)
    add_console_commands(commands)
    return parser


def _version() -> str:
    try:
        return metadata.version("user-logins-pipeline")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _positive(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} is not a share from 0 to 1")
    return value
