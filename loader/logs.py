"""What the `logins` command says, in one of two formats, from the same calls.

`human` (the default) is the text as always: work lines on stderr (`[load] chunk 1: ...`),
a command's result on stdout. `json` is one JSON object per line on stderr, for a log
collector: a timestamp, the level, the event's name, the run id once a run has one, the text,
and fields (counts, durations, codes). The CLI chooses once (`--log-format`, `LOG_FORMAT`).

Nothing said here holds a body, an IP, a device id or a secret: callers pass counts, codes
and error classes, and text that never quotes a message; URLs are masked all the same.
Everything goes through the stdlib logger `logins`, so code that does not import this module
(and dlt's own logger, once adopted) is formatted alike.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import IO, Any, Protocol

from loader.errors import ConfigurationError

HUMAN, JSON = "human", "json"
FORMATS = (HUMAN, JSON)
VARIABLE = "LOG_FORMAT"
# dbt puts DBT_ENV_CUSTOM_ENV_* variables in each of its JSON log lines (info.extra) and in
# run_results.json's metadata: so dbt's lines of a run carry its run id too.
DBT_RUN_ID_VARIABLE = "DBT_ENV_CUSTOM_ENV_LOGINS_RUN_ID"

_LOGGER = logging.getLogger("logins")
# LogRecord attributes this module sets through `extra`
_EVENT, _FIELDS, _PREFIX, _RESULT = "logins_event", "logins_fields", "logins_prefix", "logins_out"
# the JSON keys every event has; a field of the same name does not replace them
_RESERVED = frozenset({"ts", "level", "event", "run_id", "message"})

_Writer = Callable[[str, IO[str]], None]


class Say(Protocol):
    """A line about the work: `text` for people, `event` and `fields` for machines."""

    def __call__(
        self, text: str, /, *, event: str = ..., level: int = ..., **fields: object
    ) -> None: ...


def log_format(option: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """`--log-format` over LOG_FORMAT, else human; a bad value is refused in one line."""
    value = option or environ.get(VARIABLE) or HUMAN
    if value not in FORMATS:
        source = "--log-format" if option else VARIABLE
        raise ConfigurationError(f"{source}={value[:40]!r} is not a log format: use human or json")
    return value


def configure(fmt: str) -> None:
    """Every line from now on in `fmt`."""
    _HANDLER.fmt = fmt


def current_format() -> str:
    return _HANDLER.fmt


def set_run_id(run_id: str | None) -> None:
    """Every event from now on carries `run_id` (one run per process: also the error that
    ends it)."""
    global _run_id
    _run_id = run_id
    if run_id:
        os.environ[DBT_RUN_ID_VARIABLE] = run_id
    else:
        os.environ.pop(DBT_RUN_ID_VARIABLE, None)


def run_id() -> str | None:
    return _run_id


def say(
    event: str, text: str, *, level: int = logging.INFO, prefix: str = "", **fields: object
) -> None:
    """A line about the work: on stderr as `prefix` + `text` in human format."""
    _LOGGER.log(level, text, extra={_EVENT: event, _FIELDS: fields, _PREFIX: prefix})


def result(event: str, text: str, *, message: str | None = None, **fields: object) -> None:
    """A command's result: `text` on stdout in human format; in json, one event on stderr
    whose message is `message` (else `text`) and whose fields are `fields`."""
    _LOGGER.info(
        text, extra={_EVENT: event, _FIELDS: fields, _RESULT: True, "logins_message": message}
    )


def error(error: BaseException | str, message: str, **fields: object) -> None:
    """The one line a failure ends with: `error: message`, or an event with its class."""
    error_class = error if isinstance(error, str) else type(error).__name__
    _LOGGER.error(
        message,
        extra={
            _EVENT: "error",
            _FIELDS: {"error_class": error_class, **fields},
            _PREFIX: "error: ",
        },
    )


def printer(part: str | None, enabled: bool = True) -> Say:
    """`say` for one part of the work: human lines start `[part] `, events `part.`."""
    prefix = f"[{part}] " if part else ""

    def part_say(
        text: str, /, *, event: str = "note", level: int = logging.INFO, **fields: object
    ) -> None:
        if enabled:
            name = f"{part}.{event}" if part else event
            say(name, text, level=level, prefix=prefix, **fields)

    return part_say


def adopt(logger: logging.Logger) -> None:
    """In json format, `logger`'s handlers (dlt's) write our JSON events instead of their
    text, so no line of theirs breaks one event a line."""
    if _HANDLER.fmt != JSON:
        return
    for handler in logger.handlers:
        handler.setFormatter(_JSON_FORMATTER)


def use_writer(writer: _Writer | None) -> None:
    """Lines go through `writer` (a live progress bar's, which redraws the bar below them)
    until it is set back to None."""
    _HANDLER.writer = writer or _write


def event_of(record: logging.LogRecord) -> dict[str, Any]:
    """The JSON object of one record: ours, or a foreign logger's (named after it)."""
    from loader.settings import mask_url  # settings loads dlt: only once there is an event

    shown = getattr(record, "logins_message", None) or record.getMessage()
    event: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "event": getattr(record, _EVENT, record.name),
    }
    if _run_id:
        event["run_id"] = _run_id
    event["message"] = mask_url(shown)
    for key, value in (getattr(record, _FIELDS, None) or {}).items():
        if key not in _RESERVED:
            event[key] = mask_url(value) if isinstance(value, str) else value
    return event


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(event_of(record), default=str, ensure_ascii=False)


def _write(line: str, stream: IO[str]) -> None:
    stream.write(line + "\n")
    stream.flush()


class _Handler(logging.Handler):
    """Writes to the process's stdout or stderr of the moment (tests swap them)."""

    def __init__(self) -> None:
        super().__init__()
        self.fmt = HUMAN
        self.writer: _Writer = _write

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.fmt == JSON:
                line, stream = _JSON_FORMATTER.format(record), sys.stderr
            else:
                prefix = getattr(record, _PREFIX, "")
                line = prefix + record.getMessage()
                stream = sys.stdout if getattr(record, _RESULT, False) else sys.stderr
            self.writer(line, stream)
        except Exception:
            self.handleError(record)


_run_id: str | None = None
_JSON_FORMATTER = _JsonFormatter()
_HANDLER = _Handler()
_LOGGER.addHandler(_HANDLER)
_LOGGER.setLevel(logging.INFO)
_LOGGER.propagate = False
