"""Each role over a real connection: what it may do works, what it may not fails with a
permission error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from psycopg2 import errors

from tests.conftest import REPO, Pipeline, connect
from tests.expected import canonical_ip, mask, valid_records
from tests.test_pii import PASSPHRASE


def as_role(pipeline: Pipeline, role: str) -> dict[str, str]:
    return {**pipeline.env, "PGUSER": role}


def allowed(database: str, role: str, statement: str) -> list[tuple[object, ...]]:
    conn = connect(database, user=role)
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchall() if cursor.description else []
    finally:
        conn.close()


def refused(database: str, role: str, statement: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        allowed(database, role, statement)


def test_each_role_can_do_its_job_and_nothing_more(
    pipeline: Pipeline, role_prefix: str, sample_lines: list[str], tmp_path: Path
) -> None:
    loader, transformer, analyst, admin = (
        f"{role_prefix}{name}" for name in ("loader", "transformer", "analyst", "pii_admin")
    )
    db = pipeline.database
    pipeline.logins("db", "init")
    applied = pipeline.logins("roles", "apply", ROLES__PREFIX=role_prefix)
    assert f"created role {analyst}" in applied.stdout
    again = pipeline.logins("roles", "apply", ROLES__PREFIX=role_prefix)  # idempotent
    assert "created role" not in again.stdout
    key = tmp_path / "recovery.asc"
    pipeline.pii_with_key("keygen", key, passphrase=PASSPHRASE, PGUSER=admin)

    # loader: lands the messages in raw
    pipeline.queue.send(sample_lines)
    pipeline.logins("load", PGUSER=loader)
    assert allowed(db, loader, "select count(distinct message_id) from raw.login_messages") == [
        (100,)
    ]
    # transformer: the whole dbt build, then the same through `logins run`
    env = {**as_role(pipeline, transformer), "DBT_ENV_SECRET_PGPASSWORD": ""}
    dbt = Path(sys.executable).with_name("dbt")
    built = subprocess.run(
        [str(dbt), "build", "--selector", "full_check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:]
    pipeline.logins("run", PGUSER=transformer)
    # analyst: the marts
    assert allowed(db, analyst, "select count(*) from public.user_logins") == [(99,)]

    for statement in (
        "select 1 from public.user_logins",
        "select 1 from staging.stg_sqs__login_events",
        "select pii.mask('ip', '10.0.0.1')",
        "insert into public.user_logins (user_id) values ('x')",
    ):
        refused(db, loader, statement)
    for statement in (
        "select key from pii.hmac_keys",
        "select ciphertext from pii.vault",
        "delete from pii.vault",
        "select * from pii.recover('x', array['ip'], array['m'])",
        "select pii.rotate_hmac_key()",
        "insert into raw.login_messages (message_id) values ('x')",
        "delete from pii.audit_log",
    ):
        refused(db, transformer, statement)
    assert allowed(
        db, transformer, "select cardinality(masks) from pii.mask_values(array['ip'], array['x'])"
    ) == [(1,)]
    refused(db, transformer, "select pii.mask('ip', '10.0.0.1')")
    for statement in (
        "select 1 from raw.login_messages",
        "select 1 from staging.stg_sqs__login_event_rejects",
        "select 1 from staging.stg_sqs__login_events",
        "select pii.mask('ip', '10.0.0.1')",  # would let them hash every IPv4 address
        "select key from pii.hmac_keys",
        "select 1 from pii.vault",
        "select 1 from pii.audit_log",
        "update public.user_logins set locale = 'x'",
    ):
        refused(db, analyst, statement)
    for statement in (
        "select key from pii.hmac_keys",
        "delete from pii.audit_log",
        "truncate pii.audit_log",
        "delete from pii.vault",
        "select ciphertext from pii.vault",
    ):
        refused(db, admin, statement)

    # pii_admin: recovery and erasure work, and are audited under its name
    record = valid_records(sample_lines)[0]
    ip = canonical_ip(record["ip"])
    recovered = pipeline.pii_with_key(
        "recover", key, "--masked-ip", mask("ip", ip), passphrase=PASSPHRASE, PGUSER=admin
    )
    assert recovered.stdout.split()[-1] == ip
    forgot = pipeline.logins("pii", "forget", "--user-id", record["user_id"], PGUSER=admin)
    assert "encrypted originals shredded   2" in forgot.stdout
    unerased = allowed(db, admin, "select count(*) from raw.login_messages where body != ''")
    assert unerased[0][0] >= 99  # the forgotten user's body is erased already
    purged = pipeline.logins("pii", "purge-raw", "--older-than", "0 seconds", PGUSER=admin)
    assert f"erased {unerased[0][0]} " in purged.stdout
    assert allowed(db, admin, "select action, actor from pii.audit_log order by audit_id") == [
        ("recover", admin),
        ("forget", admin),
        ("forget_plaintext", admin),
        ("purge_raw", admin),
    ]
    # ...and the next builds still pass, as the transformer
    pipeline.logins("run", PGUSER=transformer)

    # upgrading a raw table an older loader made: only its owner (the loader) may alter it
    allowed(db, loader, "alter table raw.login_messages drop column body_is_json")
    refusal = pipeline.logins("db", "init", PGUSER=transformer)
    assert "only its owner, the loader's role, may alter it" in refusal.stdout
    pipeline.queue.send(sample_lines[:1])
    pipeline.logins("load", PGUSER=loader)  # the next load adds it
    assert allowed(
        db, loader, "select count(*) from raw.login_messages where body_is_json is null"
    ) == [(0,)]
    # up to date, it asks nothing of the owner
    assert "login_messages" not in pipeline.logins("db", "init", PGUSER=transformer).stdout


def test_pii_admin_cannot_rewrite_history(pipeline: Pipeline, role_prefix: str) -> None:
    pipeline.logins("db", "init")
    pipeline.logins("roles", "apply", ROLES__PREFIX=role_prefix)
    admin = f"{role_prefix}pii_admin"
    # the audit log has no free-form writer: each audited function writes its own row
    allowed(pipeline.database, admin, "select pii.record_plaintext_erasure('purge_raw', 'r', 0)")
    with pytest.raises(errors.RaiseException):
        allowed(pipeline.database, admin, "select pii.record_plaintext_erasure('recover', 'r', 9)")
    refused(pipeline.database, admin, "update pii.audit_log set actor = 'someone else'")
    refused(
        pipeline.database,
        admin,
        "insert into pii.audit_log (action, request, value_count) values ('x', 'y', 0)",
    )
    assert allowed(pipeline.database, admin, "select actor from pii.audit_log") == [(admin,)]


def test_every_role_works_right_after_an_admins_first_run(
    pipeline: Pipeline, role_prefix: str, sample_lines: list[str], tmp_path: Path
) -> None:
    """`logins up` (db init, roles apply, the demo's recovery key) then `logins run` as the
    admin, as `make demo` does: the tables the run creates still reach every role."""
    loader, transformer, analyst, admin = (
        f"{role_prefix}{name}" for name in ("loader", "transformer", "analyst", "pii_admin")
    )
    db = pipeline.database
    pipeline.logins("db", "init")
    pipeline.logins("roles", "apply")
    key = tmp_path / "demo.asc"
    made = pipeline.logins("pii", "keygen", "--demo", "--private-key", str(key))
    assert "demo passphrase" in made.stdout
    kept = pipeline.logins("pii", "keygen", "--demo", "--private-key", str(key))
    assert "installed already" in kept.stdout
    pipeline.queue.send(sample_lines)
    run = pipeline.logins("run")
    assert "tables given to the pipeline's roles" in run.stdout

    assert allowed(db, analyst, "select count(*) from public.user_logins") == [(99,)]
    record = valid_records(sample_lines)[0]
    recovered = pipeline.pii_with_key(
        "recover",
        key,
        "--user-id",
        record["user_id"],
        passphrase="demo recovery passphrase, not for production",
        PGUSER=admin,
    )
    assert canonical_ip(record["ip"]) in recovered.stdout
    forgot = pipeline.logins("pii", "forget", "--user-id", record["user_id"], PGUSER=admin)
    assert "raw bodies erased              1" in forgot.stdout
    assert "not vacuumed" not in forgot.stderr
    pipeline.queue.send(sample_lines[:3])
    pipeline.logins("load", PGUSER=loader)
    pipeline.logins("run", PGUSER=transformer)
    # three new messages (SQS gives each send a new id)
    assert allowed(db, analyst, "select count(*) from public.user_logins") == [(102,)]
    # a typo in an id is not a silent success
    missing = pipeline.logins(
        "pii", "forget", "--user-id", "no-such-user-0000", PGUSER=admin, check=False
    )
    assert missing.returncode == 1
    assert "no message of user_id" in missing.stderr
