"""PII recovery, erasure, retention and key rotation, on the real sample, against real services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from loader import pii
from loader.errors import PipelineError
from tests.conftest import PG, SAMPLE, Pipeline
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
    made = pipeline.logins(
        "pii", "keygen", "--private-key", str(key), PII__RECOVERY_PASSPHRASE=PASSPHRASE
    )
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
    ciphertexts = b"".join(bytes(ct) for (ct,) in pipeline.query("select ciphertext from pii.vault"))
    assert not [value for value in expected.values() if value.encode() in ciphertexts]

    recovered, missing = pii.recover_masks(
        credentials(pipeline.database), sealed, PASSPHRASE, "test: all", sorted(expected)
    )
    assert missing == 0
    assert {(r.kind, r.mask): r.value for r in recovered} == expected

    # through the command, by mask and by user, each use audited
    first = valid_records(sample_lines)[0]
    ip = canonical_ip(first["ip"])
    by_mask = pipeline.logins(
        "pii", "recover", "--masked-ip", mask("ip", ip), "--private-key", str(sealed),
        PII__RECOVERY_PASSPHRASE=PASSPHRASE,
    )
    assert by_mask.stdout.split() == ["ip", mask("ip", ip), ip]
    by_user = pipeline.logins(
        "pii", "recover", "--user-id", first["user_id"], "--private-key", str(sealed),
        PII__RECOVERY_PASSPHRASE=PASSPHRASE,
    )
    assert ip in by_user.stdout.split() and first["device_id"] in by_user.stdout.split()
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
        pii.recover_masks(creds, sealed, "not the passphrase", "test", pairs)

    # another key pair (as if generated elsewhere): its private key cannot decrypt the vault
    other = tmp_path / "other.asc"
    from loader.recovery_keys import generate, write_private_key

    write_private_key(other, generate(PASSPHRASE).private_armored)
    with pytest.raises(PipelineError, match="cannot decrypt"):
        pii.recover_masks(creds, other, PASSPHRASE, "test", pairs)

    # no key at all: the command refuses before touching the database
    no_key = pipeline.logins(
        "pii", "recover", "--masked-ip", pairs[0][1], "--private-key", str(tmp_path / "none.asc"),
        check=False, PII__RECOVERY_PASSPHRASE=PASSPHRASE,
    )
    assert no_key.returncode == 2 and "cannot read the recovery private key" in no_key.stderr

    # the audit log is append-only, even for its owner
    with pytest.raises(Exception, match="append-only"):
        pipeline.query("delete from pii.audit_log returning 1")
