"""The `logins` command: `arguments` wires each command to its handler in `pipeline_commands`
or `pii_commands`; `main` turns a refusal into one `error:` line and its exit code."""

from __future__ import annotations

import sys

from loader.cli.arguments import build_parser
from loader.errors import PipelineError

__all__ = ["build_parser", "main"]


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
