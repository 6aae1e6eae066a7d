"""The `logins` command: `arguments` wires each command to its handler in `pipeline_commands`
or `pii_commands`; `main` turns a refusal into one `error:` line (in json log format, one
error event) and its exit code."""

from __future__ import annotations

import logging
import sys

from loader import logs
from loader.cli.arguments import build_parser
from loader.errors import PipelineError

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        # before parsing, so even a refused argument is said in the chosen format
        logs.configure(logs.log_format(_log_format_option(argv)))
    except PipelineError as error:
        logs.error(error, str(error))
        return error.exit_code
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except PipelineError as error:
        logs.error(error, str(error), exit_code=error.exit_code)
        return error.exit_code
    except KeyboardInterrupt:
        logs.say(
            "interrupted",
            "interrupted",
            level=logging.ERROR,
            error_class="KeyboardInterrupt",
            exit_code=130,
        )
        return 130
    except Exception as error:
        # dlt's own settings (RUNTIME__*, NORMALIZE__*, ...) resolve inside dlt: one line too
        if not _is_dlt_configuration_error(error):
            raise
        logs.error(error, _dlt_configuration_message(error), exit_code=2)
        return 2
    return 0


def _log_format_option(argv: list[str]) -> str | None:
    """--log-format's value, wherever it is (argparse checks its place and value later)."""
    for at, arg in enumerate(argv):
        if arg == "--log-format" and at + 1 < len(argv):
            return argv[at + 1]
        if arg.startswith("--log-format="):
            return arg.partition("=")[2]
    return None


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
