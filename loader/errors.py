"""Errors the CLI turns into one clear line and a non-zero exit code."""


class PipelineError(Exception):
    """A failure the user can act on. The message names the problem and the fix."""

    exit_code = 1


class ConfigurationError(PipelineError):
    exit_code = 2


class SqsUnavailable(PipelineError):
    exit_code = 3


class PostgresUnavailable(PipelineError):
    exit_code = 4


class LoadFailed(PipelineError):
    exit_code = 5


class TransformFailed(PipelineError):
    exit_code = 6


class DataStale(PipelineError):
    """The data is older than its threshold: dbt source freshness's error_after, or
    `logins status`'s STATUS__MAX_AGE_MINUTES."""

    exit_code = 8


class Interrupted(PipelineError):
    """Ctrl-C (SIGINT): the run stopped, what it held was handed back. 130 = 128 + SIGINT,
    as shells report it."""

    exit_code = 130
