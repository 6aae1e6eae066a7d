"""Each run's report as Prometheus metrics, the way Prometheus monitors batch jobs: gauges
describing the last run, pushed to a Pushgateway (METRICS__PUSHGATEWAY_URL) and/or written for
node_exporter's textfile collector (METRICS__TEXTFILE), grouped by job and command.

A success replaces its group whole (HTTP PUT), so nothing from an earlier run lingers; it keeps
the last failure's time. A failed or interrupted run only replaces the metrics it sends (POST),
so `logins_last_success_timestamp_seconds` and whatever the run did not get to measure stay
those of the last success. The textfile holds both commands and follows the same rules."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from loader.operations.run_report import FAILED, INTERRUPTED, SUCCEEDED

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from loader.operations.run_report import QueueState, RunReport
    from loader.settings import MetricsSettings

PREFIX = "logins_"
LAST_SUCCESS = f"{PREFIX}last_success_timestamp_seconds"
LAST_FAILURE = f"{PREFIX}last_failure_timestamp_seconds"
STATUSES = (SUCCEEDED, FAILED, INTERRUPTED)

# name -> help; every metric is a gauge describing one run (or when one happened)
HELP = {
    LAST_SUCCESS: "Unix time the last successful run ended.",
    LAST_FAILURE: "Unix time the last failed run ended; error_class is its exception's class.",
    f"{PREFIX}last_run_timestamp_seconds": "Unix time the last run ended, whatever its outcome.",
    f"{PREFIX}last_run_status": "1 for the last run's outcome (succeeded, failed, interrupted).",
    f"{PREFIX}run_duration_seconds": "How long the last run took.",
    f"{PREFIX}step_duration_seconds": "How long each step of the last run took.",
    f"{PREFIX}run_messages_received": "Messages the last run received from SQS.",
    f"{PREFIX}run_messages_landed": "Messages the last run landed in raw.",
    f"{PREFIX}run_messages_deleted": "Messages the last run deleted from SQS.",
    f"{PREFIX}run_messages_rejected": "Messages the last run's build rejected, by reject code.",
    f"{PREFIX}run_reject_ratio": "Rejected over rejected plus added, in the last run's build.",
    f"{PREFIX}run_rows_added": "Rows the last run's build added to user_logins.",
    f"{PREFIX}user_logins_rows": "Rows in user_logins after the last run's build.",
    f"{PREFIX}queue_messages": "Messages in the queue (visible or in flight) at the run's start "
    "and end.",
    f"{PREFIX}queue_oldest_message_age_seconds": "Age of the queue's oldest message at the "
    "run's start and end, where the queue reports it.",
}

# a family: its samples as (labels, value); the labels include `command`
Samples = list[tuple[dict[str, str], float]]
Families = dict[str, Samples]


def publish(report: RunReport) -> None:
    """Pushes `report` to the Pushgateway and/or writes the textfile, as configured."""
    from loader.settings import metrics_settings

    settings = metrics_settings()
    if not (settings.pushgateway_url or settings.textfile):
        return
    families = report_families(report)
    succeeded = report.status == SUCCEEDED
    errors: list[Exception] = []
    # the textfile first: a Pushgateway that does not answer must not cost the file its update
    if settings.textfile:
        try:
            write_textfile(Path(settings.textfile), families, report.command, succeeded)
        except Exception as error:
            errors.append(error)
    if settings.pushgateway_url:
        push(settings, families, report.command, succeeded)
    if errors:
        raise errors[0]


def report_families(report: RunReport) -> Families:
    """The report as metric families; what the run did not measure is left out."""
    command = {"command": report.command}
    ended = (report.ended_at or report.started_at).timestamp()
    families: Families = {
        f"{PREFIX}last_run_timestamp_seconds": [(command, ended)],
        f"{PREFIX}last_run_status": [
            ({**command, "status": status}, float(status == report.status)) for status in STATUSES
        ],
        f"{PREFIX}run_duration_seconds": [(command, ended - report.started_at.timestamp())],
        f"{PREFIX}step_duration_seconds": [
            ({**command, "step": step}, seconds) for step, seconds in report.step_seconds.items()
        ],
        f"{PREFIX}run_messages_received": [(command, float(report.received))],
        f"{PREFIX}run_messages_landed": [(command, float(report.landed))],
        f"{PREFIX}run_messages_deleted": [(command, float(report.deleted))],
    }
    if report.status == SUCCEEDED:
        families[LAST_SUCCESS] = [(command, ended)]
    elif report.status == FAILED:
        error = {**command, "error_class": report.error_class or "unknown"}
        families[LAST_FAILURE] = [(error, ended)]
    if report.rows_added is not None:  # the build ran: its outcomes are this run's
        rejected = report.rejected
        families[f"{PREFIX}run_messages_rejected"] = [
            ({**command, "code": code}, float(count))
            for code, count in sorted(report.rejects_by_code.items())
        ]
        processed = report.rows_added + rejected
        families[f"{PREFIX}run_reject_ratio"] = [
            (command, rejected / processed if processed else 0)
        ]
        families[f"{PREFIX}run_rows_added"] = [(command, float(report.rows_added))]
    if report.user_logins_rows is not None:
        families[f"{PREFIX}user_logins_rows"] = [(command, float(report.user_logins_rows))]
    queue = list(_queue_samples(command, "start", report.queue_before))
    queue += _queue_samples(command, "end", report.queue_after)
    if queue:
        families[f"{PREFIX}queue_messages"] = queue
    ages = [
        ({**command, "at": at}, state.oldest_age_seconds)
        for at, state in (("start", report.queue_before), ("end", report.queue_after))
        if state is not None and state.oldest_age_seconds is not None
    ]
    if ages:
        families[f"{PREFIX}queue_oldest_message_age_seconds"] = ages
    return {name: samples for name, samples in families.items() if samples}


def _queue_samples(command: dict[str, str], at: str, state: QueueState | None) -> Samples:
    if state is None:
        return []
    return [
        ({**command, "at": at, "state": "visible"}, float(state.visible)),
        ({**command, "at": at, "state": "in_flight"}, float(state.in_flight)),
    ]


def merged(old: Families, new: Families, command: str, succeeded: bool) -> Families:
    """What a group holds after this run, given what it held: other commands' samples stay; a
    success replaces this command's whole, keeping only the last failure's time; a failure
    replaces only the families it brings."""
    result: Families = {}
    for name, samples in old.items():
        kept = [
            (labels, value)
            for labels, value in samples
            if labels.get("command") != command
            or (name == LAST_FAILURE if succeeded else name not in new)
        ]
        if kept:
            result[name] = kept
    for name, samples in new.items():
        result[name] = [
            *(s for s in result.get(name, []) if s[0].get("command") != command),
            *samples,
        ]
    return result


class _Collector:
    """Families as prometheus_client's exposition functions take them."""

    def __init__(self, families: Families, docs: dict[str, str] | None = None) -> None:
        self.families, self.docs = families, docs or {}

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.metrics_core import Metric

        for name in sorted(self.families):
            metric = Metric(name, HELP.get(name) or self.docs.get(name, name), "gauge")
            for labels, value in self.families[name]:
                metric.add_sample(name, labels, value)
            yield metric


# -- the textfile -------------------------------------------------------------------------


def write_textfile(path: Path, families: Families, command: str, succeeded: bool) -> None:
    """Merges this run into the textfile and replaces it atomically (a temporary file beside
    it, renamed over), one writer at a time."""
    from prometheus_client import write_to_textfile

    with _locked(path.parent):
        old, docs = _read_textfile(path)
        result = merged(old, families, command, succeeded)
        write_to_textfile(str(path), _Collector(result, docs))  # type: ignore[arg-type]


def _read_textfile(path: Path) -> tuple[Families, dict[str, str]]:
    """The gauges the textfile holds now; an unreadable one is replaced."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}, {}
    families: Families = {}
    docs: dict[str, str] = {}
    try:
        for family in text_string_to_metric_families(text):
            if family.name.startswith(PREFIX) and family.type == "gauge":
                docs[family.name] = family.documentation
                families[family.name] = [(dict(s.labels), s.value) for s in family.samples]
    except ValueError:
        return {}, {}
    return families, docs


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the textfile's folder: two runs ending at once both get merged."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


# -- the Pushgateway ----------------------------------------------------------------------


def push(settings: MetricsSettings, families: Families, command: str, succeeded: bool) -> None:
    """PUT on success (the group replaced, the last failure's time carried over), POST
    otherwise (only the metrics sent are replaced: the last success stays)."""
    from prometheus_client import push_to_gateway, pushadd_to_gateway
    from prometheus_client.exposition import basic_auth_handler, default_handler

    gateway, credentials = _without_credentials(str(settings.pushgateway_url))
    grouping = {"command": command}
    if settings.instance:
        grouping["instance"] = settings.instance

    def handler(**request: Any) -> Any:
        if credentials is None:
            return default_handler(**request)
        return basic_auth_handler(**request, username=credentials[0], password=credentials[1])

    if succeeded:
        carried = _last_failure(gateway, credentials, settings, grouping)
        families = merged(carried, families, command, succeeded=True)
    send = push_to_gateway if succeeded else pushadd_to_gateway
    send(
        gateway,
        job=settings.job,
        registry=_Collector(families),  # type: ignore[arg-type]
        grouping_key=grouping,
        timeout=settings.timeout_seconds,
        handler=handler,
    )


def _without_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """The URL without its user and password, and those (sent as basic auth, never shown)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url.rstrip("/"), None
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")).rstrip("/")
    return bare, (unquote(parts.username), unquote(parts.password or ""))


def _last_failure(
    gateway: str,
    credentials: tuple[str, str] | None,
    settings: MetricsSettings,
    grouping: dict[str, str],
) -> Families:
    """The group's last failure time, read back from the Pushgateway's API; none where it
    cannot tell (the push then goes on without it)."""
    request = urllib.request.Request(f"{gateway}/api/v1/metrics")  # noqa: S310 (http(s), checked)
    if credentials is not None:
        token = base64.b64encode(":".join(credentials).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout_seconds) as answer:  # noqa: S310
            groups = json.load(answer).get("data") or []
    except (OSError, ValueError):
        return {}
    wanted = {"job": settings.job, **grouping}
    return {LAST_FAILURE: list(_group_samples(groups, wanted, LAST_FAILURE))}


def _group_samples(
    groups: Iterable[dict[str, object]], wanted: dict[str, str], name: str
) -> Iterator[tuple[dict[str, str], float]]:
    for group in groups:
        labels = group.get("labels") or {}
        if not isinstance(labels, dict) or {k: v for k, v in labels.items() if v} != wanted:
            continue
        family = group.get(name)
        if not isinstance(family, dict):
            continue
        for sample in family.get("metrics") or []:
            own = {
                k: v for k, v in sample.get("labels", {}).items() if k not in ("job", "instance")
            }
            yield own, float(sample.get("value", "nan"))
