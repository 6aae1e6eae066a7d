"""PII recovery, erasure, retention and key rotation, on the real sample, against real services."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from loader.errors import PipelineError
from loader.privacy import recovery
from tests.conftest import PG, REPO, SAMPLE, Pipeline, connect
from tests.expected import canonical_ip, mask, valid_records

PASSPHRASE = "Distinctive recovery passphrase 7"


def credentials(database: str) -> PostgresCredentials:
    creds = PostgresCredentials()
    creds.host, creds.port, creds.username = PG["host"], PG["port"], PG["user"]
    creds.password, creds.database = PG["password"], database
    return creds


def originals(lines: list[str]) -> dict[tuple[str, str], str]:
    """(kind, expected mask) -> original value, computed here independently of the SQL."""
    values = {}
    for record in valid_records(lines):
        ip = canonical_ip(record["ip"])
        values[("ip", mask("ip", ip))] = ip
        values[("device_id", mask("device_id", record["device_id"]))] = record["device_id"]
    return values


def keyed_pipeline(pipeline: Pipeline, key: Path) -> None:
    pipeline.logins("db", "init")
    made = pipeline.pii_with_key("keygen", key, passphrase=PASSPHRASE)
    assert "installed its public key" in made.stdout
    assert key.stat().st_mode & 0o077 == 0


@pytest.fixture
def sealed(pipeline: Pipeline, tmp_path: Path) -> Path:
    """The real 100 messages, built with a recovery key installed. Returns the private key."""
    key = tmp_path / "recovery.asc"
    keyed_pipeline(pipeline, key)
    pipeline.logins("seed", "--file", str(SAMPLE))
    pipeline.logins("run")
    return key


def test_every_masked_value_recovers_to_its_original(
    pipeline: Pipeline, sample_lines: list[str], sealed: Path
) -> None:
    expected = originals(sample_lines)
    in_marts = set(
        pipeline.query(
            "select 'ip', masked_ip from public.user_logins"
            " union select 'device_id', masked_device_id from public.user_logins"
        )
    )
    assert in_marts == set(expected)
    # each distinct value is encrypted once, and the vault holds no plaintext
    assert pipeline.query("select count(*) from pii.vault") == [(len(expected),)]
    ciphertexts = b"".join(
        bytes(ct) for (ct,) in pipeline.query("select ciphertext from pii.vault")
    )
    assert not [value for value in expected.values() if value.encode() in ciphertexts]

    recovered, missing = recovery.recover_masks(
        credentials(pipeline.database), sealed, PASSPHRASE, "test: all", sorted(expected)
    )
    assert missing == 0
    assert {(r.kind, r.mask): r.value for r in recovered} == expected

    # through the command, by mask and by user, each use audited
    first = valid_records(sample_lines)[0]
    ip = canonical_ip(first["ip"])
    by_mask = pipeline.pii_with_key(
        "recover", sealed, "--masked-ip", mask("ip", ip), passphrase=PASSPHRASE
    )
    assert by_mask.stdout.split() == ["ip", mask("ip", ip), ip]
    by_user = pipeline.pii_with_key(
        "recover", sealed, "--user-id", first["user_id"], passphrase=PASSPHRASE
    )
    assert ip in by_user.stdout.split()
    assert first["device_id"] in by_user.stdout.split()
    audit = pipeline.query("select action, actor, request, value_count from pii.audit_log")
    assert ("recover", PG["user"], f"ip={mask('ip', ip)}", 1) in audit
    assert ("recover", PG["user"], f"user_id={first['user_id']}", 2) in audit
    assert ("recover", PG["user"], "test: all", len(expected)) in audit


def test_recovery_fails_without_the_right_key_or_passphrase(
    pipeline: Pipeline, sample_lines: list[str], sealed: Path, tmp_path: Path
) -> None:
    pairs = sorted(originals(sample_lines))[:3]
    creds = credentials(pipeline.database)
    with pytest.raises(PipelineError, match="wrong passphrase"):
        recovery.recover_masks(creds, sealed, "not the passphrase", "test", pairs)

    # another key pair (as if generated elsewhere): its private key cannot decrypt the vault
    other = tmp_path / "other.asc"
    from loader.privacy.recovery_keys import generate, write_private_key

    write_private_key(other, generate(PASSPHRASE).private_armored)
    with pytest.raises(PipelineError, match="cannot decrypt"):
        recovery.recover_masks(creds, other, PASSPHRASE, "test", pairs)

    # no key at all: the command refuses before touching the database
    no_key = pipeline.pii_with_key(
        "recover",
        tmp_path / "none.asc",
        "--masked-ip",
        pairs[0][1],
        passphrase=PASSPHRASE,
        check=False,
    )
    assert no_key.returncode == 2
    assert "cannot read the recovery private key" in no_key.stderr

    # the audit log is append-only, even for its owner
    with pytest.raises(Exception, match="append-only"):
        pipeline.query("delete from pii.audit_log returning 1")


def _tables(pipeline: Pipeline) -> list[tuple[str, str]]:
    return pipeline.query(
        "select table_schema, table_name from information_schema.tables"
        " where table_schema not in ('pg_catalog', 'information_schema')"
        " and table_type in ('BASE TABLE', 'VIEW')"
    )


def _holding(pipeline: Pipeline, needle: str) -> list[str]:
    """Every table or view, in any schema, with a row whose text holds `needle`."""
    return [
        f"{schema}.{table}"
        for schema, table in _tables(pipeline)
        if pipeline.query(
            f'select exists (select from "{schema}"."{table}" as t where strpos(t::text, %s) > 0)',
            (needle,),
        )[0][0]
    ]


def test_forget_leaves_nothing_recoverable_and_spares_others(
    pipeline: Pipeline, sample_lines: list[str], sealed: Path
) -> None:
    records = valid_records(sample_lines)
    expected = originals(sample_lines)
    gone, sharer = records[0], records[1]
    gone_ip = canonical_ip(gone["ip"])
    assert len([r for r in records if r["user_id"] == gone["user_id"]]) == 1
    assert _holding(pipeline, gone_ip)
    assert _holding(pipeline, gone["device_id"])
    # a later login of the same user is landed but not yet built when they ask to be forgotten,
    # and another user shares a device with `sharer`
    twin = {**sharer, "user_id": "00000000-0000-4000-8000-00000000beef", "ip": "192.0.2.77"}
    pipeline.queue.send([json.dumps({**gone, "locale": "FR"}), json.dumps(twin)])
    pipeline.logins("load")

    forgot = pipeline.logins("pii", "forget", "--user-id", gone["user_id"])
    assert "encrypted originals shredded   2" in forgot.stdout
    assert "raw bodies erased              2" in forgot.stdout

    # nothing in any schema holds the value in plaintext; the vault no longer has it
    assert _holding(pipeline, gone_ip) == []
    assert _holding(pipeline, gone["device_id"]) == []
    gone_masks = [("ip", mask("ip", gone_ip)), ("device_id", mask("device_id", gone["device_id"]))]
    assert pipeline.query(
        "select count(*) from pii.vault where (kind, mask) in (%s, %s)", tuple(gone_masks)
    ) == [(0,)]
    refused = pipeline.pii_with_key(
        "recover", sealed, "--user-id", gone["user_id"], passphrase=PASSPHRASE, check=False
    )
    assert refused.returncode != 0
    assert gone_ip not in refused.stdout
    # the analytics row stays, but its masks are random tokens: no HMAC of their values (the
    # whole IPv4 space could be hashed) finds the row any more
    [(masked_ip, masked_device_id)] = pipeline.query(
        "select masked_ip, masked_device_id from public.user_logins where user_id = %s",
        (gone["user_id"],),
    )
    assert len(masked_ip) == len(masked_device_id) == 64
    assert {masked_ip, masked_device_id}.isdisjoint(m for _, m in gone_masks)
    assert pipeline.query(
        "select count(*) from public.user_logins where masked_ip = %s or masked_device_id = %s",
        (gone_masks[0][1], gone_masks[1][1]),
    ) == [(0,)]

    # idempotent
    again = pipeline.logins("pii", "forget", "--user-id", gone["user_id"])
    assert "encrypted originals shredded   0" in again.stdout
    assert "raw bodies erased              0" in again.stdout

    # the next build: the erased, unbuilt message is a reject with its reason, the twin a
    # row, and every message is still in exactly one place (dbt's conservation test passes)
    run = pipeline.logins("run")
    assert "rows in user_logins  100" in run.stdout, run.stdout
    assert pipeline.query(
        "select reject_code, body from staging.stg_sqs__login_event_rejects"
        " where reject_code = 'erased'"
    ) == [("erased", "")]
    assert _holding(pipeline, gone_ip) == []

    # once the twin is built, a shared device survives the other user's erasure; their own
    # IP does not
    forgot = pipeline.logins("pii", "forget", "--user-id", sharer["user_id"])
    assert "shared with other users, kept  1" in forgot.stdout, forgot.stdout
    assert "encrypted originals shredded   1" in forgot.stdout, forgot.stdout
    # every other user's values still recover
    others = {pair: value for pair, value in expected.items() if pair not in gone_masks}
    others.pop(("ip", mask("ip", canonical_ip(sharer["ip"]))))
    recovered, missing = recovery.recover_masks(
        credentials(pipeline.database), sealed, PASSPHRASE, "test: others", sorted(others)
    )
    assert missing == 0
    assert {(r.kind, r.mask): r.value for r in recovered} == others
    audit = pipeline.query("select action, request from pii.audit_log where action like 'forget%'")
    assert ("forget", f"user_id={gone['user_id']}") in audit


def test_purge_raw_keeps_every_outcome(pipeline: Pipeline, sample_lines: list[str]) -> None:
    pipeline.queue.send(sample_lines[:50])
    pipeline.logins("run")
    kept = pipeline.logins("pii", "purge-raw", "--older-than", "1 day")
    assert "erased 0 " in kept.stdout
    bad = pipeline.logins("pii", "purge-raw", "--older-than", "soon", check=False)
    assert bad.returncode == 2
    assert "not a Postgres interval" in bad.stderr

    # the next run purges what is processed (all 100), after its build
    pipeline.queue.send(sample_lines[50:])
    run = pipeline.logins("run", PII__PURGE_RAW_OLDER_THAN="0 seconds")
    assert "raw bodies erased    100" in run.stdout, run.stdout
    assert pipeline.query("select count(*), count(nullif(body, '')) from raw.login_messages") == [
        (100, 0)
    ]
    # purged bodies turn into nothing new: not rejects on the next build, nor on a full refresh
    # (the outputs are the record once raw is purged, so dbt never rebuilds them)
    outcomes = (
        "select (select count(*) from public.user_logins),"
        " (select count(*) from staging.stg_sqs__login_event_rejects)"
    )
    assert pipeline.query(outcomes) == [(99, 1)]
    pipeline.logins("run")
    dbt = Path(sys.executable).with_name("dbt")
    rebuilt = subprocess.run(
        [str(dbt), "build", "--selector", "full_check", "--full-refresh"],
        cwd=REPO,
        env=pipeline.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]
    assert pipeline.query(outcomes) == [(99, 1)]
    rejects = pipeline.query("select body from staging.stg_sqs__login_event_rejects")
    assert rejects == [('{"foo": "oops_wrong_msg_type", "bar": "123"}',)]


def test_rotation_versions_masks_and_remask_makes_them_match(
    pipeline: Pipeline, sample_lines: list[str], tmp_path: Path
) -> None:
    key = tmp_path / "recovery.asc"
    keyed_pipeline(pipeline, key)
    lines = sample_lines[:10]
    ips = {canonical_ip(r["ip"]) for r in valid_records(lines)}
    pipeline.queue.send(lines)
    pipeline.logins("run")
    # a table built before key versions were recorded: the next build adds the contract's new
    # column to it (on_schema_change), and its old rows read as version 1 (null)
    admin = connect(pipeline.database)
    with admin.cursor() as cursor:
        cursor.execute("alter table public.user_logins drop column mask_key_version")
    admin.close()

    rotated = pipeline.logins("pii", "rotate")
    assert "HMAC key version 2 is now current" in rotated.stdout
    pipeline.queue.send(lines)  # the same logins again, as new messages
    pipeline.logins("run")  # `db init` inside still accepts the configured (older) key
    versions = pipeline.query(
        "select mask_key_version, count(*), count(distinct masked_ip) from public.user_logins"
        " group by 1 order by 1"
    )
    assert versions == [(2, len(lines), len(ips)), (None, len(lines), len(ips))]
    # across versions the same IP has two masks: duplicates only match within a version
    assert pipeline.query("select count(distinct masked_ip) from public.user_logins") == [
        (2 * len(ips),)
    ]

    done = pipeline.pii_with_key("remask", key, passphrase=PASSPHRASE)
    assert f"re-masked {len(lines)} rows" in done.stdout, done.stdout
    assert pipeline.query(
        "select mask_key_version, count(*), count(distinct masked_ip) from public.user_logins"
        " group by 1"
    ) == [(2, 2 * len(lines), len(ips))]
    # the new masks are recoverable too
    pairs = pipeline.query("select distinct 'ip', masked_ip from public.user_logins")
    recovered, missing = recovery.recover_masks(
        credentials(pipeline.database), key, PASSPHRASE, "test", pairs
    )
    assert missing == 0
    assert {r.value for r in recovered} == ips
    assert ("rotate", "hmac key version 2") in pipeline.query(
        "select action, request from pii.audit_log"
    )
