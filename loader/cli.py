"""The `logins` command: local stack, seeding, the load, and the whole run."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from loader.errors import PipelineError
from loader.pii_cli import add_commands as add_pii_commands

if TYPE_CHECKING:
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

    from loader.settings import LoaderSettings, PiiSettings, SqsSettings


def _up(args: argparse.Namespace) -> None:
    from loader import stack
    from loader.settings import describe_postgres, mask_url, pii_settings, postgres_credentials
    from loader.sqs import SqsQueue

    credentials, sqs = postgres_credentials(), _sqs_settings(args)
    print(f"Postgres {describe_postgres(credentials)}: {stack.ensure_postgres(credentials)}")
    how = stack.ensure_sqs(sqs)
    waiting = SqsQueue(sqs).approximate_counts()["visible"]
    print(f"SQS {mask_url(sqs.queue_url)}: {how}, {waiting:,} messages waiting")
    for note in _init_database(credentials, pii_settings(), generate_key=True):
        print(note)
    from loader import roles
    from loader.pii_cli import schemas
    from loader.settings import roles_settings

    for line in roles.apply(credentials, roles_settings(), schemas()):
        print(line)


def _down(args: argparse.Namespace) -> None:
    from loader import stack

    stopped = [
        name
        for name, stop in (("SQS emulator", stack.stop_sqs), ("Postgres", stack.stop_postgres))
        if stop()
    ]
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing that `logins up` started runs")


def _db_init(args: argparse.Namespace) -> None:
    from loader.settings import loader_settings, pii_settings, postgres_credentials

    notes = _init_database(
        postgres_credentials(), pii_settings(), args.generate_key, raw=loader_settings()
    )
    for note in notes:
        print(note)
    print("database ready")


def _seed(args: argparse.Namespace) -> None:
    from loader import seed, synthetic
    from loader.sqs import SqsQueue

    stats = seed.SeedStats()
    if args.file:
        bodies = seed.file_bodies(Path(args.file), stats.skipped)
    else:
        bodies = synthetic.bodies(args.count, args.seed, args.malformed_share)
    sent = seed.send_all(SqsQueue(_sqs_settings(args)), bodies)
    for line in stats.skipped + sent.refused:
        print(f"not sent: {line}", file=sys.stderr)
    print(f"sent {sent.sent:,} messages")
    if stats.skipped or sent.refused:
        raise PipelineError(f"{len(stats.skipped) + len(sent.refused)} message(s) were not sent")


def _load(args: argparse.Namespace) -> None:
    from loader.load import run_load
    from loader.settings import loader_settings, postgres_credentials, writable_pipelines_dir

    # every setting is checked before any work: a bad one fails at once, in one line
    sqs, settings, credentials = _sqs_settings(args), loader_settings(), postgres_credentials()
    writable_pipelines_dir(settings)
    stats = run_load(sqs, settings, credentials, args.max_messages, True)
    print(
        f"received {stats.received:,}, landed {stats.landed:,}, deleted {stats.deleted:,} "
        f"in {stats.seconds:.1f} s"
    )


def _run(args: argparse.Namespace) -> None:
    from loader import summary
    from loader.load import run_load
    from loader.settings import (
        loader_settings,
        marts_schema,
        pii_settings,
        postgres_credentials,
        transform_settings,
        writable_pipelines_dir,
    )
    from loader.transform import dbt_build

    # every setting is checked before any work: a bad one fails at once, in one line
    credentials, sqs, settings = postgres_credentials(), _sqs_settings(args), loader_settings()
    full_check = args.full_check or transform_settings().full_check
    marts_schema()  # dbt's profile reads DBT_SCHEMA itself
    writable_pipelines_dir(settings)
    for note in _init_database(credentials, pii_settings()):
        print(note)
    started = time.monotonic()
    stats = run_load(sqs, settings, credentials, args.max_messages, True)
    load_seconds = time.monotonic() - started
    before = summary.outcomes(credentials)
    started = time.monotonic()
    dbt_build(credentials, full_check=full_check)
    build_seconds = time.monotonic() - started
    after = summary.outcomes(credentials)
    print(summary.render(stats, before, after, load_seconds, build_seconds))
    from loader import roles
    from loader.pii_cli import schemas
    from loader.settings import roles_settings

    if roles.reapply_after_build(credentials, roles_settings(), schemas()):
        print("  roles                tables given to the pipeline's roles, grants applied")
    retention = pii_settings().purge_raw_older_than
    if retention:
        from loader import pii
        from loader.pii_cli import schemas

        erased = pii.purge_raw(credentials, schemas(), retention)
        print(f"  raw bodies erased    {erased}  (processed, older than {retention})")


def _init_database(
    credentials: PostgresCredentials,
    pii: PiiSettings,
    generate_key: bool = False,
    raw: LoaderSettings | None = None,
) -> list[str]:
    """`init_database`, one at a time per database: two `logins run` at once replaced the same
    functions, and Postgres refused one ("tuple concurrently updated")."""
    from loader.db_init import init_database
    from loader.warehouse import advisory_lock

    waiting = "waiting for another `logins` to finish setting up the database"
    with advisory_lock(credentials, "logins db init", waiting):
        return list(init_database(credentials, pii, generate_key, raw=raw))


def _sqs_settings(args: argparse.Namespace) -> SqsSettings:
    """SOURCES__SQS__* settings, with --sqs-protocol over SOURCES__SQS__PROTOCOL."""
    from loader.settings import sqs_settings

    settings = sqs_settings()
    if args.sqs_protocol:
        settings.protocol = args.sqs_protocol
    return settings


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
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="logins",
        description="User-login ELT: SQS -> dlt -> Postgres raw -> dbt -> masked user_logins.",
        epilog="Configuration: environment variables, see README.md#configuration.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="make a local Postgres and SQS available (no Docker)")
    _add_sqs_protocol(up)
    up.set_defaults(handler=_up)
    down = commands.add_parser("down", help="stop what `up` started")
    down.set_defaults(handler=_down)

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
    init.set_defaults(handler=_db_init)

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
    seed.set_defaults(handler=_seed)

    for name, handler, text in (
        ("load", _load, "drain the queue into Postgres schema raw"),
        ("run", _run, "load, then dbt build, then a summary"),
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
    return parser


# argparse reports an ArgumentTypeError's text as it is, and anything else as "invalid
# <function name> value": these say what is wanted.


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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        # dlt's own settings (RUNTIME__*, NORMALIZE__*, ...) resolve inside dlt: one line too
        if not _is_dlt_configuration_error(error):
            raise
        print(f"error: {_dlt_configuration_message(error)}", file=sys.stderr)
        return 2
    return 0


def _is_dlt_configuration_error(error: Exception) -> bool:
    dlt_exceptions = sys.modules.get("dlt.common.configuration.exceptions")
    return dlt_exceptions is not None and isinstance(error, dlt_exceptions.ConfigurationException)


def _dlt_configuration_message(error: Exception) -> str:
    from loader.settings import mask_url

    lines = str(error).strip().splitlines()
    first = mask_url(lines[0]) if lines else type(error).__name__
    return f"dlt configuration: {first}: fix the setting it names (environment or .dlt/*.toml)"


if __name__ == "__main__":
    sys.exit(main())
