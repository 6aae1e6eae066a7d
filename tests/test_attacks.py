"""Attacks by the pipeline's own roles on each other, over real connections.

Each test plants code as a lower role (the loader owns raw, the transformer owns staging and
the marts and may create in `public`), runs a documented command as a higher role (pii_admin,
a superuser, or another pipeline role), and checks that nothing ran as anyone but its author.

The recorder: every planted function calls `<schema>.ran_as_record(tag)`, which its author
made. It bumps a sequence named `seen:<author>:<current_user>` (sequences are not rolled back,
so a command that runs the code and then fails still leaves a trace) and inserts
(who, author:tag) into public.ran_as (lost if the command's transaction rolls back).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from psycopg2 import errors, sql

from tests.conftest import REPO, Pipeline, connect, query
from tests.expected import mask
from tests.test_pii import PASSPHRASE

SUPERUSER = "postgres"


@dataclass(frozen=True)
class Cast:
    loader: str
    transformer: str
    analyst: str
    admin: str
    owner: str
    operator: str  # reads the run history and the marts (`logins status`)

    @property
    def logins(self) -> list[str]:
        return [self.loader, self.transformer, self.analyst, self.admin]

    @property
    def everyone(self) -> list[str]:
        return [*self.logins, self.owner, SUPERUSER]


def cast_for(prefix: str) -> Cast:
    return Cast(
        *(
            f"{prefix}{n}"
            for n in ("loader", "transformer", "analyst", "pii_admin", "owner", "operator")
        )
    )


def run_as(database: str, role: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    conn = connect(database, user=role)
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        conn.close()


# --- the recorder ------------------------------------------------------------------------


def install_recorder(database: str, cast: Cast) -> None:
    """public.ran_as and one sequence per (author, who), as the superuser; anyone may write."""
    statements = [
        "create table if not exists public.ran_as (who text, at text)",
        "grant select, insert on public.ran_as to public",
    ]
    for author in (cast.loader, cast.transformer):
        for who in [*cast.everyone, "other"]:
            name = f'public."seen:{author}:{who}"'
            statements += [
                f"create sequence if not exists {name}",
                f"grant usage, select, update on sequence {name} to public",
            ]
    query(database, ";\n".join(statements))


def plant_recorder(database: str, author: str, schema: str) -> str:
    """`schema`.ran_as_record(tag), made by `author`; returns its qualified name. It records
    current_user (the role the code runs as) and never fails."""
    function = f"{schema}.ran_as_record"
    run_as(
        database,
        author,
        f"""
        create or replace function {function}(tag text) returns boolean
        language plpgsql volatile
        set search_path = pg_catalog, pg_temp
        as $fn$
        declare
            seq regclass;
        begin
            seq := pg_catalog.to_regclass(
                pg_catalog.format('public.%I', 'seen:{author}:' || current_user));
            if seq is null then
                seq := pg_catalog.to_regclass(
                    pg_catalog.format('public.%I', 'seen:{author}:other'));
            end if;
            perform pg_catalog.nextval(seq);
            begin
                insert into public.ran_as (who, at) values (current_user, '{author}:' || tag);
            exception when others then
                null;
            end;
            return true;
        end
        $fn$;
        grant execute on function {function}(text) to public;
        """,
    )
    # the victim must be able to reach it: the author opens its schema (when it owns it)
    owns = run_as(
        database,
        author,
        "select pg_catalog.pg_get_userbyid(nspowner) = current_user from pg_namespace"
        " where nspname = %s",
        (schema,),
    )
    if owns and owns[0][0]:
        run_as(database, author, f"grant usage on schema {schema} to public")
    return function


def seen(database: str) -> set[tuple[str, str]]:
    """Every (author, who) the recorders saw: `who` ran code `author` planted."""
    found = set()
    for (name,) in query(
        database,
        "select sequencename from pg_sequences where schemaname = 'public'"
        " and sequencename like 'seen:%%' and last_value is not null",
    ):
        _, author, who = name.split(":", 2)
        found.add((author, who))
    for who, at in query(database, "select who, at from public.ran_as"):
        found.add((at.split(":", 1)[0], who))
    return found


def strangers(database: str) -> set[tuple[str, str]]:
    """(author, who) pairs where code ran as someone other than its author."""
    return {(author, who) for author, who in seen(database) if author != who}


def reset_recorder(database: str) -> None:
    query(database, "truncate public.ran_as")
    for (name,) in query(
        database,
        "select sequencename from pg_sequences where schemaname = 'public'"
        " and sequencename like 'seen:%%'",
    ):
        query(database, sql.SQL("alter sequence {} restart").format(sql.Identifier("public", name)))
        # `restart` leaves is_called false: last_value reads null again in pg_sequences


def check_recorder(database: str, author: str, function: str) -> None:
    """The recorder works: the author calling it is seen (then forgotten)."""
    run_as(database, author, f"select {function}('self-check')")
    assert (author, author) in seen(database)
    reset_recorder(database)
    assert seen(database) == set()


def plant_triggers(database: str, author: str, recorder: str, tables: Iterable[str]) -> None:
    """Row and statement triggers for every event on each table, calling the recorder."""
    schema = recorder.rsplit(".", 1)[0]
    run_as(
        database,
        author,
        f"""
        create or replace function {schema}.ran_as_trigger() returns trigger
        language plpgsql as $fn$
        begin
            perform {recorder}(tg_table_schema || '.' || tg_table_name || ':' || tg_name);
            if tg_level = 'ROW' then
                return coalesce(new, old);
            end if;
            return null;
        end
        $fn$;
        grant execute on function {schema}.ran_as_trigger() to public;
        """,
    )
    for n, table in enumerate(tables):
        for timing in ("before", "after"):
            run_as(
                database,
                author,
                f"""
                create trigger ran_as_{timing}_row_{n} {timing} insert or update or delete
                on {table} for each row execute function {schema}.ran_as_trigger();
                create trigger ran_as_{timing}_stmt_{n} {timing} insert or update or delete
                or truncate on {table}
                for each statement execute function {schema}.ran_as_trigger();
                """,
            )


# Built-in functions and operators a privileged statement may call with a varchar argument
# (dlt's text columns are varchar): a same-named one taking varchar matches better than
# pg_catalog's (text), whatever the search_path order, if its schema is on the path.
SHADOWS = [
    ("strpos", "a varchar, b text", "integer", "pg_catalog.strpos(a, b)"),
    ("strpos", "a varchar, b varchar", "integer", "pg_catalog.strpos(a, b)"),
    ("hashtext", "a varchar", "integer", "pg_catalog.hashtext(a)"),
    ("lower", "a varchar", "text", "pg_catalog.lower(a)"),
    ("upper", "a varchar", "text", "pg_catalog.upper(a)"),
    ("length", "a varchar", "integer", "pg_catalog.length(a)"),
    ("btrim", "a varchar", "text", "pg_catalog.btrim(a)"),
    ("replace", "a varchar, b text, c text", "text", "pg_catalog.replace(a, b, c)"),
    ("to_regclass", "a varchar", "regclass", "pg_catalog.to_regclass(a)"),
    ("pg_advisory_xact_lock", "a integer", "void", "pg_catalog.pg_advisory_xact_lock(a::bigint)"),
    ("pg_advisory_lock", "a integer", "void", "pg_catalog.pg_advisory_lock(a::bigint)"),
    ("jsonb", "a varchar", "jsonb", "a::text::jsonb"),
    ("ran_as_eq_vt", "a varchar, b text", "boolean", "pg_catalog.texteq(a, b)"),
    ("ran_as_eq_vv", "a varchar, b varchar", "boolean", "pg_catalog.texteq(a, b)"),
    ("ran_as_ne_vt", "a varchar, b text", "boolean", "pg_catalog.textne(a, b)"),
    ("ran_as_ne_vv", "a varchar, b varchar", "boolean", "pg_catalog.textne(a, b)"),
    ("ran_as_like_vt", "a varchar, b text", "boolean", "pg_catalog.textlike(a, b)"),
]
SHADOW_OPERATORS = [
    ("=", "varchar", "text", "ran_as_eq_vt"),
    ("=", "varchar", "varchar", "ran_as_eq_vv"),
    ("<>", "varchar", "text", "ran_as_ne_vt"),
    ("<>", "varchar", "varchar", "ran_as_ne_vv"),
    ("~~", "varchar", "text", "ran_as_like_vt"),
]


def plant_shadows(database: str, author: str, schema: str, recorder: str) -> None:
    statements = []
    for name, args, returns, body in SHADOWS:
        statements.append(
            f"create or replace function {schema}.{name}({args}) returns {returns}"
            f" language plpgsql as $fn$ begin perform {recorder}('{schema}.{name}');"
            f" {'perform' if returns == 'void' else 'return'} {body}; end $fn$"
        )
        statements.append(f"grant execute on function {schema}.{name}({args}) to public")
    for op, left, right, function in SHADOW_OPERATORS:
        statements.append(
            f"create operator {schema}.{op} (leftarg = {left}, rightarg = {right},"
            f" function = {schema}.{function})"
        )
    run_as(database, author, ";\n".join(statements))


def shadow_schemas(database: str, cast: Cast) -> list[str]:
    """Every schema the transformer may create in, and schemas it may create that a victim's
    default search_path ("$user", public) would read first."""
    schemas = [
        name
        for (name,) in query(
            database,
            "select nspname from pg_namespace where has_schema_privilege(%s, oid, 'CREATE')"
            " and nspname not like 'pg\\_%%' and nspname != 'information_schema'",
            (cast.transformer,),
        )
    ]
    for victim in (cast.loader, cast.admin, cast.owner, SUPERUSER):
        try:
            run_as(database, cast.transformer, f'create schema "{victim}"')
        except errors.InsufficientPrivilege:
            continue
        schemas.append(f'"{victim}"')
    return schemas


# --- running the pipeline ----------------------------------------------------------------


def login(user_id: str, ip: str, device_id: str, **extra: str) -> str:
    return json.dumps(
        {
            "user_id": user_id,
            "app_version": "2.3.0",
            "device_type": "android",
            "ip": ip,
            "locale": "RU",
            "device_id": device_id,
            **extra,
        }
    )


BYSTANDERS = [
    login(f"bystander-{n:04d}", f"203.0.113.{n}", f"dev-bystander-{n:04d}") for n in range(1, 6)
]


def dbt_build(pipeline: Pipeline, role: str) -> subprocess.CompletedProcess[str]:
    env = {**pipeline.env, "PGUSER": role, "DBT_ENV_SECRET_PGPASSWORD": ""}
    if role == SUPERUSER:
        env["DBT_ENV_SECRET_PGPASSWORD"] = pipeline.env["PGPASSWORD"]
    return subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "build"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture
def cast(pipeline: Pipeline, role_prefix: str) -> Cast:
    pipeline.logins("db", "init")
    pipeline.logins("roles", "apply")
    roles = cast_for(role_prefix)
    install_recorder(pipeline.database, roles)
    return roles


@pytest.fixture
def built(pipeline: Pipeline, cast: Cast, tmp_path: Path) -> Cast:
    """Roles, a recovery key, five logins loaded by the loader and built by the transformer."""
    pipeline.pii_with_key(
        "keygen", tmp_path / "recovery.asc", passphrase=PASSPHRASE, PGUSER=cast.admin
    )
    pipeline.queue.send(BYSTANDERS)
    pipeline.logins("load", PGUSER=cast.loader)
    pipeline.logins("run", PGUSER=cast.transformer)
    assert pipeline.query("select count(*) from public.user_logins") == [(len(BYSTANDERS),)]
    return cast


def assert_refused(result: subprocess.CompletedProcess[str], table: str, *named: str) -> None:
    """Exit 7 and one error line naming the table (and what it carries)."""
    assert result.returncode == 7, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: refusing to "), lines[0]
    assert table in lines[0], lines[0]
    for word in named:
        assert word in lines[0], lines[0]


def raw_bodies(pipeline: Pipeline) -> list[tuple[str, str]]:
    return pipeline.query("select message_id, body from raw.login_messages order by 1, 2")


# --- 1, 2: nothing in pii reads a relation; no temporary objects for the admin ------------


def test_no_pii_function_reads_a_relation_its_caller_names(pipeline: Pipeline, cast: Cast) -> None:
    db = pipeline.database
    assert (
        query(
            db,
            "select proname from pg_proc where pronamespace = 'pii'::regnamespace"
            " and 'regclass'::regtype = any(proargtypes)",
        )
        == []
    )
    definers = query(
        db,
        "select p.oid::regprocedure::text, pg_get_userbyid(p.proowner), r.rolsuper,"
        " coalesce(array_to_string(p.proconfig, ','), '')"
        " from pg_proc p join pg_roles r on r.oid = p.proowner"
        " where p.pronamespace = 'pii'::regnamespace and p.prosecdef",
    )
    assert {name for name, *_ in definers} >= {
        "pii.mask_values(text[],text[])",
        "pii.recover(text,text[],text[])",
        "pii.shred(text,text[],text[])",
    }
    for name, owner, is_super, config in definers:
        assert owner == cast.owner, name
        assert not is_super, name
        assert "search_path=pg_catalog,pg_temp" in config.replace(" ", ""), (name, config)
    assert (
        query(
            db,
            "select p.oid::regprocedure::text from pg_proc p"
            " where p.pronamespace = 'pii'::regnamespace"
            " and has_function_privilege('public', p.oid, 'execute')",
        )
        == []
    )
    # the finding itself: a transformer's view whose column runs the transformer's function
    run_as(
        db,
        cast.transformer,
        "create function public.sneaky(text) returns text language sql"
        " as $fn$ select $1 $fn$;"
        " create view public.bait as select public.sneaky('10.0.0.1') as ip, 'ip'::text as kind",
    )
    # no pii function accepts it: a relation is not a value
    with pytest.raises(errors.UndefinedFunction):
        run_as(db, cast.transformer, "select * from pii.mask_values('public.bait'::regclass)")


def test_pii_admin_cannot_make_temporary_objects(pipeline: Pipeline, cast: Cast) -> None:
    db = pipeline.database
    for statement in (
        "create temp table shadow (x int)",
        "create temp view shadow as select 1",
        "create function pg_temp.strpos(varchar, text) returns int language sql as 'select 1'",
    ):
        with pytest.raises(errors.InsufficientPrivilege):
            run_as(db, cast.admin, statement)
    assert query(
        db, "select has_database_privilege(%s, current_database(), 'TEMP')", (cast.admin,)
    ) == [(False,)]


def test_concurrent_mask_values_calls_take_turns_on_the_call_table(
    pipeline: Pipeline, cast: Cast
) -> None:
    """pii.mask_values() makes and drops one fixed-name table (no dynamic SQL in a definer
    function): a second caller waits for the first's transaction, then gets its own masks."""
    db = pipeline.database
    first, second = connect(db, user=cast.transformer), connect(db, user=cast.admin)
    call = "select (pii.mask_values(array['ip'], array[%s])).masks"
    try:
        with first.cursor() as cursor:
            cursor.execute("begin")
            cursor.execute(call, ("10.0.0.1",))
            with ThreadPoolExecutor(1) as pool:
                waiting = pool.submit(run_as, db, cast.transformer, call, ("10.0.0.2",))
                time.sleep(0.5)
                assert not waiting.done()  # the fixed name is taken until the first commits
                cursor.execute("commit")
                assert waiting.result(timeout=30) == [([mask_of(db, "ip", "10.0.0.2")],)]
        with second.cursor() as cursor:
            cursor.execute(call, ("10.0.0.3",))
            assert cursor.fetchall() == [([mask_of(db, "ip", "10.0.0.3")],)]
    finally:
        first.close()
        second.close()
    assert query(db, "select to_regclass('pii.mask_batch')") == [(None,)]


def mask_of(database: str, kind: str, value: str) -> str:
    return query(database, "select pii.mask(%s, %s)", (kind, value))[0][0]


def test_console_lookup_runs_no_transformer_code_as_pii_admin(
    pipeline: Pipeline, built: Cast
) -> None:
    import threading

    import requests
    import uvicorn

    from loader.console.app import create_app
    from loader.console.config import ConsoleConfig
    from loader.devstack.ports import free_port, wait_until_answers
    from loader.names import Schemas
    from tests.conftest import PG

    db = pipeline.database
    # the transformer owns user_logins: it swaps in a view whose filter calls its function
    run_as(
        db,
        built.transformer,
        "create table public.caught (who text);"
        " grant insert on public.caught to public;"
        " create function public.peek(text) returns text language plpgsql as $fn$"
        " begin insert into public.caught values (current_user); return $1; end $fn$;"
        " alter table public.user_logins rename to user_logins_kept;"
        " create view public.user_logins as select k.* from public.user_logins_kept as k"
        " where public.peek(k.user_id) is not null;"
        f' grant select on public.user_logins to "{built.admin}"',
    )
    config = ConsoleConfig(
        host=PG["host"],
        port=PG["port"],
        database=db,
        schemas=Schemas(owner_role=built.owner),
        analyst_role=built.analyst,
        idle_seconds=900,
        docs_dir=None,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_config=None)
    )
    threading.Thread(target=server.run, daemon=True).start()
    try:
        wait_until_answers("127.0.0.1", port, 30)
        url = f"http://127.0.0.1:{port}"
        browser = requests.Session()
        form = browser.get(f"{url}/signin").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        browser.post(
            f"{url}/signin",
            data={"csrf_token": token, "user": built.admin, "password": "x"},
            allow_redirects=False,
        )
        desk = browser.get(f"{url}/privacy").text
        token = re.search(r'name="csrf-token" content="([^"]+)"', desk).group(1)
        looked_up = browser.post(
            f"{url}/privacy/lookup", data={"csrf_token": token, "q": "bystander-0001"}
        )
        assert looked_up.status_code == 409, looked_up.status_code
        assert "refusing to read public.user_logins" in looked_up.text
        # the rejects are the transformer's too, and pii_admin's pages read their bodies
        run_as(
            db,
            built.transformer,
            "alter table staging.stg_sqs__login_event_rejects rename to rejects_kept;"
            " create view staging.stg_sqs__login_event_rejects as select k.*"
            " from staging.rejects_kept as k where public.peek(k.message_id) is not null;"
            f' grant select on staging.stg_sqs__login_event_rejects to "{built.admin}"',
        )
        for page in ("/rejects", "/"):
            assert browser.get(f"{url}{page}").status_code == 409, page
    finally:
        server.should_exit = True
    assert query(db, "select distinct who from public.caught") == []


# --- 3, 4: the loader's code on raw, run by the transformer, pii_admin or a superuser -----


def plant_policy(database: str, author: str, recorder: str, table: str) -> None:
    schema = recorder.rsplit(".", 1)[0]
    run_as(
        database,
        author,
        f"""
        create or replace function {schema}.ran_as_policy() returns boolean
        language sql volatile as $fn$ select {recorder}('policy') $fn$;
        grant execute on function {schema}.ran_as_policy() to public;
        alter table {table} enable row level security;
        alter table {table} force row level security;
        create policy ran_as_policy on {table} using ({schema}.ran_as_policy())
            with check ({schema}.ran_as_policy());
        """,
    )


@pytest.mark.parametrize("attached", ["trigger", "row-level security"])
def test_loader_code_on_raw_runs_for_no_one_else(
    pipeline: Pipeline, built: Cast, attached: str
) -> None:
    db, cast = pipeline.database, built
    # a login loaded but not built yet, so the next build reads raw
    pipeline.queue.send([login("latecomer-0001", "192.0.2.1", "dev-latecomer")])
    pipeline.logins("load", PGUSER=cast.loader)
    recorder = plant_recorder(db, cast.loader, "raw")
    check_recorder(db, cast.loader, recorder)
    if attached == "trigger":
        plant_triggers(db, cast.loader, recorder, ["raw.login_messages"])
        names = ["trigger"]
    else:
        plant_policy(db, cast.loader, recorder, "raw.login_messages")
        names = ["row-level security"]
    before = raw_bodies(pipeline)

    # (a) dbt as the transformer: refused, or it reads raw without running the loader's code
    built_ = dbt_build(pipeline, cast.transformer)
    if built_.returncode != 0:
        assert "refusing to build over raw.login_messages" in built_.stdout, built_.stdout[-3000:]
        assert names[0] in built_.stdout
    else:
        assert attached == "trigger", "dbt built over raw's row-level security"
    assert strangers(db) == set()

    # (b) pii_admin, (c) a superuser: refused before anything is read or written
    for role in (cast.admin, SUPERUSER):
        forgot = pipeline.logins(
            "pii", "forget", "--user-id", "bystander-0001", check=False, PGUSER=role
        )
        assert_refused(forgot, "raw.login_messages", *names)
        purged = pipeline.logins(
            "pii", "purge-raw", "--older-than", "0 seconds", check=False, PGUSER=role
        )
        assert_refused(purged, "raw.login_messages", *names)
    assert strangers(db) == set()
    assert raw_bodies(pipeline) == before


def test_loader_generated_column_runs_for_no_one_else(pipeline: Pipeline, built: Cast) -> None:
    db, cast = pipeline.database, built
    recorder = plant_recorder(db, cast.loader, "raw")
    check_recorder(db, cast.loader, recorder)
    run_as(
        db,
        cast.loader,
        f"""
        create function raw.evil(body text) returns boolean language plpgsql immutable
        as $fn$ begin perform {recorder}('generated'); return pipeline_lib.is_json(body); end $fn$;
        grant execute on function raw.evil(text) to public;
        alter table raw.login_messages drop column body_is_json;
        alter table raw.login_messages add column body_is_json boolean
            generated always as (raw.evil(body)) stored;
        """,
    )
    assert (cast.loader, cast.loader) in seen(db)  # the rewrite ran it, as its author
    reset_recorder(db)
    before = raw_bodies(pipeline)
    for role in (cast.admin, SUPERUSER):
        forgot = pipeline.logins(
            "pii", "forget", "--user-id", "bystander-0001", check=False, PGUSER=role
        )
        assert_refused(forgot, "raw.login_messages", "raw.evil")
        purged = pipeline.logins(
            "pii", "purge-raw", "--older-than", "0 seconds", check=False, PGUSER=role
        )
        assert_refused(purged, "raw.login_messages", "raw.evil")
    # `db init` as a superuser upgrades raw's column only through the same check
    init = pipeline.logins("db", "init", check=False, PGUSER=SUPERUSER)
    assert init.returncode in (0, 7), init.stderr
    assert strangers(db) == set()
    assert raw_bodies(pipeline) == before


# --- 5, 6: the transformer's shadows and triggers ------------------------------------------


def test_transformer_shadows_run_for_no_one_else(
    pipeline: Pipeline, built: Cast, tmp_path: Path
) -> None:
    db, cast = pipeline.database, built
    recorder = plant_recorder(db, cast.transformer, "public")
    check_recorder(db, cast.transformer, recorder)
    plant_shadows(db, cast.transformer, "public", recorder)
    # a shadow works where it is on the path: the transformer's own varchar call finds it
    run_as(db, cast.transformer, "select strpos('abc'::varchar, 'b'::text)")
    assert seen(db) == {(cast.transformer, cast.transformer)}
    reset_recorder(db)

    key = str(tmp_path / "recovery.asc")
    secret = {"PII__RECOVERY_PASSPHRASE": PASSPHRASE}
    exits = {}
    for n, role in enumerate((cast.admin, SUPERUSER)):
        commands = {
            "forget": ["pii", "forget", "--user-id", f"bystander-000{n + 1}"],
            "purge-raw": ["pii", "purge-raw", "--older-than", "0 seconds"],
            "recover": [
                "pii",
                "recover",
                "--user-id",
                f"bystander-000{n + 3}",
                "--private-key",
                key,
            ],
            "db init": ["db", "init"],
        }
        for name, args in commands.items():
            result = pipeline.logins(*args, check=False, PGUSER=role, **secret)
            exits[(name, role)] = result.returncode
            assert result.returncode == 0, (name, role, result.stderr)
    assert strangers(db) == set(), exits


def test_erasure_finishes_no_package_through_the_transformers_shadows(
    pipeline: Pipeline, built: Cast
) -> None:
    # dlt finishes pending packages on its own connections, whose search_path is raw,public
    db, cast = pipeline.database, built
    pipeline.queue.send([login("latecomer-0001", "192.0.2.1", "dev-latecomer")])
    crashed = pipeline.logins("load", check=False, LOGINS_CRASH_AT="normalized", PGUSER=cast.loader)
    assert crashed.returncode == -9
    recorder = plant_recorder(db, cast.transformer, "public")
    check_recorder(db, cast.transformer, recorder)
    plant_shadows(db, cast.transformer, "public", recorder)
    reset_recorder(db)

    forgot = pipeline.logins(
        "pii", "forget", "--user-id", "bystander-0001", check=False, PGUSER=cast.admin
    )
    assert strangers(db) == set(), forgot.stderr
    assert forgot.returncode == 7, forgot.stderr
    assert "refusing to load with dlt" in forgot.stderr
    assert "public" in forgot.stderr


@pytest.mark.parametrize(
    "table",
    ["staging.stg_sqs__login_events", "staging.stg_sqs__login_event_rejects", "public.user_logins"],
)
def test_transformer_triggers_refuse_forget(pipeline: Pipeline, built: Cast, table: str) -> None:
    db, cast = pipeline.database, built
    recorder = plant_recorder(db, cast.transformer, "staging")
    check_recorder(db, cast.transformer, recorder)
    plant_triggers(db, cast.transformer, recorder, [table])
    before = raw_bodies(pipeline)
    for role in (cast.admin, SUPERUSER):
        forgot = pipeline.logins(
            "pii", "forget", "--user-id", "bystander-0001", check=False, PGUSER=role
        )
        assert_refused(forgot, table, "trigger")
    assert strangers(db) == set()
    assert seen(db) == set()
    assert raw_bodies(pipeline) == before


# --- 7, 8: exact erasure --------------------------------------------------------------------

VICTIM = "victim-0001"
VICTIM_IP = "198.51.100.23"
VICTIM_DEVICE = "dev-victim-7f3a9c5e"
VICTIM_ATTRIBUTE = "attr-victim-secret-5521"
# the victim's id spelled with a JSON escape: the same user_id once parsed
ESCAPED = (
    '{"user_id": "victim\\u002d0001", "app_version": "2.3.0", "device_type": "android",'
    f' "ip": "{VICTIM_IP}", "locale": "FR", "device_id": "{VICTIM_DEVICE}"}}'
)
MENTION = login("bystander-0009", "203.0.113.99", "dev-bystander-0009", note=f"met {VICTIM}")
UNPARSED_VICTIM = f"login failed for {VICTIM} from {VICTIM_IP} on {VICTIM_DEVICE}"
UNPARSED_LONGER = f"login failed for {VICTIM}7 from 203.0.113.98"
KEPT = [*BYSTANDERS, MENTION, UNPARSED_LONGER]


def install_key(pipeline: Pipeline, cast: Cast, tmp_path: Path) -> Path:
    key = tmp_path / "recovery.asc"
    pipeline.pii_with_key("keygen", key, passphrase=PASSPHRASE, PGUSER=cast.admin)
    return key


def holding(database: str, needle: str) -> list[str]:
    """Every column, of every table and view in every schema, with a value holding `needle`."""
    found = []
    for schema, table, column in query(
        database,
        "select table_schema, table_name, column_name from information_schema.columns"
        " where table_schema not in ('pg_catalog', 'information_schema')"
        " and data_type != 'bytea'",
    ):
        statement = sql.SQL("select exists (select from {} where strpos({}::text, %s) > 0)").format(
            sql.Identifier(schema, table), sql.Identifier(column)
        )
        if query(database, statement, (needle,))[0][0]:
            found.append(f"{schema}.{table}.{column}")
    return found


def heap_relations(database: str) -> list[tuple[str, int]]:
    """Every heap (and its TOAST table) outside the catalogs, with its number of blocks."""
    return query(
        database,
        "select c.oid::regclass::text, (pg_relation_size(c.oid)"
        " / current_setting('block_size')::int)::int"
        " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'm') and c.relpersistence != 't'"
        " and n.nspname not in ('pg_catalog', 'information_schema')"
        " union all"
        " select t.oid::regclass::text, (pg_relation_size(t.oid)"
        " / current_setting('block_size')::int)::int"
        " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " join pg_class t on t.oid = c.reltoastrelid"
        " where c.relkind in ('r', 'm') and n.nspname not in ('pg_catalog', 'information_schema')",
    )


# where pageinspect looks for a needle in each block: its row versions, or the whole page
ROW_VERSIONS = (
    "select exists (select from generate_series(0, %(blocks)s - 1) as blk,"
    " heap_page_items(get_raw_page(%(relation)s, blk)) as item"
    " where position(convert_to(%(needle)s, 'UTF8') in item.t_data) > 0)"
)
WHOLE_PAGES = (
    "select exists (select from generate_series(0, %(blocks)s - 1) as blk"
    " where position(convert_to(%(needle)s, 'UTF8') in get_raw_page(%(relation)s, blk)) > 0)"
)


def in_heap(database: str, needle: str, where: str = ROW_VERSIONS) -> list[str]:
    """Relations whose row versions, live or dead (or, with WHOLE_PAGES, whose pages, free
    space included) hold `needle`'s bytes."""
    query(database, "create extension if not exists pageinspect")
    return [
        relation
        for relation, blocks in heap_relations(database)
        if blocks
        and query(database, where, {"blocks": blocks, "relation": relation, "needle": needle})[0][0]
    ]


def load_victim_and_forget(
    pipeline: Pipeline, cast: Cast, tmp_path: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    """The victim's logins (one with a JSON escape and message attributes, one plain, one
    unparsed), bystanders (one mentioning the victim's id, one unparsed with a longer token),
    loaded, built, then `forget` (with `options`) as pii_admin."""
    install_key(pipeline, cast, tmp_path)
    pipeline.queue.send([*KEPT, login(VICTIM, VICTIM_IP, VICTIM_DEVICE), UNPARSED_VICTIM])
    pipeline.queue.client.send_message(
        QueueUrl=pipeline.queue.url,
        MessageBody=ESCAPED,
        MessageAttributes={
            "note": {"DataType": "String", "StringValue": f"{VICTIM_ATTRIBUTE} {VICTIM_IP}"}
        },
    )
    pipeline.logins("load", PGUSER=cast.loader)
    pipeline.logins("run", PGUSER=cast.transformer)
    db = pipeline.database
    # the scans find what is there
    for needle in (VICTIM_IP, VICTIM_DEVICE, VICTIM_ATTRIBUTE):
        assert holding(db, needle), needle
        assert in_heap(db, needle), needle
    assert pipeline.query(
        "select count(*) from public.user_logins where user_id = %s", (VICTIM,)
    ) == [(2,)]
    return pipeline.logins("pii", "forget", "--user-id", VICTIM, *options, PGUSER=cast.admin)


@pytest.fixture
def erased(pipeline: Pipeline, cast: Cast, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return load_victim_and_forget(pipeline, cast, tmp_path)


def test_forget_erases_exactly_the_victim(
    pipeline: Pipeline, cast: Cast, erased: subprocess.CompletedProcess[str]
) -> None:
    db = pipeline.database
    assert "raw bodies erased              2" in erased.stdout, erased.stdout
    assert "unparsed bodies naming them    1" in erased.stdout, erased.stdout
    assert "not vacuumed" not in erased.stderr, erased.stderr
    for needle in (VICTIM_IP, VICTIM_DEVICE, VICTIM_ATTRIBUTE):
        assert holding(db, needle) == [], needle
        assert in_heap(db, needle) == [], needle
    # the bystanders' bodies are intact, the one naming the victim and the longer token too
    bodies = [body for (body,) in pipeline.query("select body from raw.login_messages")]
    assert sorted(b for b in bodies if b) == sorted(KEPT)
    assert pipeline.query(
        "select count(*) from raw.login_messages where message_attributes is not null"
    ) == [(0,)]
    # rows stay, with their user id
    assert pipeline.query(
        "select count(*) from public.user_logins where user_id = %s", (VICTIM,)
    ) == [(2,)]


def test_forget_rewrite_leaves_no_bytes_in_free_space(
    pipeline: Pipeline, cast: Cast, tmp_path: Path
) -> None:
    # VACUUM frees dead rows' space without overwriting it; --rewrite rewrites the tables
    erased = load_victim_and_forget(pipeline, cast, tmp_path, "--rewrite")
    assert "not vacuumed" not in erased.stderr, erased.stderr
    found = {n: in_heap(pipeline.database, n, WHOLE_PAGES) for n in (VICTIM_IP, VICTIM_DEVICE)}
    assert found == {VICTIM_IP: [], VICTIM_DEVICE: []}
    assert pipeline.query(
        "select count(*) from public.user_logins where user_id = %s", (VICTIM,)
    ) == [(2,)]


def test_forget_refuses_vague_or_unknown_ids(pipeline: Pipeline, built: Cast) -> None:
    before = raw_bodies(pipeline)
    audit = pipeline.query("select count(*) from pii.audit_log")
    for user_id in ("", "abc", "       abc"):
        result = pipeline.logins(
            "pii", "forget", "--user-id", user_id, check=False, PGUSER=built.admin
        )
        assert result.returncode == 2, (user_id, result.stderr)
    unknown = pipeline.logins(
        "pii", "forget", "--user-id", "nobody-at-all-0000", check=False, PGUSER=built.admin
    )
    assert unknown.returncode not in (0, 2, 7), unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr
    assert unknown.stderr.startswith("error: "), unknown.stderr
    assert raw_bodies(pipeline) == before
    assert pipeline.query("select count(*) from pii.audit_log") == audit


def test_forget_leaves_no_mask_of_the_victims_values_in_user_logins(
    pipeline: Pipeline, cast: Cast, erased: subprocess.CompletedProcess[str]
) -> None:
    guesses = {mask("ip", VICTIM_IP), mask("device_id", VICTIM_DEVICE)}
    # the database's own HMAC of the values, as a brute force with the key would compute them
    for kind, value in (("ip", VICTIM_IP), ("device_id", VICTIM_DEVICE)):
        guesses.add(pipeline.query("select pii.mask(%s, %s)", (kind, value))[0][0])
    assert len(guesses) == 2
    rows = pipeline.query("select t::text from public.user_logins as t")
    assert len(rows) == len(KEPT) - 1 + 2  # the unparsed bystander is a reject
    assert [row for (row,) in rows if any(g in row for g in guesses)] == []
    masks = pipeline.query(
        "select masked_ip, masked_device_id from public.user_logins where user_id = %s", (VICTIM,)
    )
    assert all(re.fullmatch("[0-9a-f]{64}", m) for row in masks for m in row)


def test_forget_leaves_no_mask_of_the_victims_values_anywhere(
    pipeline: Pipeline, cast: Cast, erased: subprocess.CompletedProcess[str]
) -> None:
    found = {
        kind: holding(pipeline.database, mask(kind, value))
        for kind, value in (("ip", VICTIM_IP), ("device_id", VICTIM_DEVICE))
    }
    assert found == {"ip": [], "device_id": []}


# --- 9, 10: the audit log, retention ----------------------------------------------------------


def test_audit_log_has_no_free_form_writer_and_records_what_recover_returned(
    pipeline: Pipeline, built: Cast
) -> None:
    db, cast = pipeline.database, built
    with pytest.raises(errors.InsufficientPrivilege):
        run_as(
            db,
            cast.admin,
            "insert into pii.audit_log (action, request, value_count) values ('x', 'y', 0)",
        )
    assert query(db, "select to_regproc('pii.audit')") == [(None,)]
    callable_ = {
        name
        for (name,) in query(
            db,
            "select p.oid::regprocedure::text from pg_proc p"
            " where p.pronamespace = 'pii'::regnamespace"
            " and has_function_privilege(%s, p.oid, 'execute')",
            (cast.admin,),
        )
    }
    assert callable_ == {
        "pii.mask_values(text[],text[])",
        "pii.mask_key_version()",
        "pii.mask(text,text)",
        "pii.recover(text,text[],text[])",
        "pii.shred(text,text[],text[])",
        "pii.record_plaintext_erasure(text,text,integer)",
        "pii.rotate_hmac_key()",
    }
    for action in ("recover", "forget", "rotate", "x"):
        with pytest.raises(errors.RaiseException):
            run_as(db, cast.admin, "select pii.record_plaintext_erasure(%s, 'r', 1)", (action,))

    real = mask("ip", "203.0.113.1")
    asked = (["ip", "ip", "device_id", "ip"], [real, "0" * 64, real, real])
    returned = run_as(
        db, cast.admin, "select value_kind, value_mask from pii.recover('probe', %s, %s)", asked
    )
    assert returned
    assert set(returned) == {("ip", real)}
    [(request, count, subjects)] = query(
        db,
        "select request, value_count, subjects from pii.audit_log"
        " where action = 'recover' order by audit_id desc limit 1",
    )
    assert request == "probe"
    assert count == len(returned)
    assert sorted(subjects) == sorted(f"{kind}:{m}" for kind, m in returned)


@pytest.mark.parametrize(
    "interval", ["-100 years", "-1 second", "@ 1 year ago", "1 year -13 mons", "-1 day 1 hour"]
)
def test_purge_raw_refuses_negative_intervals(
    pipeline: Pipeline, built: Cast, interval: str
) -> None:
    before = raw_bodies(pipeline)
    result = pipeline.logins(
        "pii", "purge-raw", "--older-than", interval, check=False, PGUSER=built.admin
    )
    assert result.returncode == 2, result.stderr
    assert "negative" in result.stderr
    assert raw_bodies(pipeline) == before
    assert all(body for _, body in before)
    assert pipeline.query("select count(*) from pii.audit_log where action = 'purge_raw'") == [(0,)]


# --- 11: the general guard ----------------------------------------------------------------------

DYNAMIC_SQL = re.compile(r"\bexecute\b(?!\s+(function|procedure)\b)", re.IGNORECASE)


def test_every_definer_function_takes_values_and_runs_no_dynamic_sql(
    pipeline: Pipeline, cast: Cast
) -> None:
    """Whatever SECURITY DEFINER function is added to pii or pipeline_lib next: no argument
    names a relation or a function, no dynamic SQL, the owner role's, search_path pinned,
    nothing for PUBLIC. Every other function there is the owner role's too, and no login role
    may create in either schema (an overload would win over the shipped function)."""
    functions = query(
        pipeline.database,
        "select p.oid::regprocedure::text, p.prosecdef, pg_get_userbyid(p.proowner),"
        " coalesce(array_to_string(p.proconfig, ','), ''), p.prosrc,"
        " array(select t::regtype::text from unnest(p.proargtypes) as t),"
        " has_function_privilege('public', p.oid, 'execute')"
        " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname in ('pii', 'pipeline_lib')"
        " and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')",
    )
    definers = [f for f in functions if f[1]]
    assert len(definers) >= 7
    problems = []
    for name, is_definer, owner, config, source, arg_types, public in functions:
        if owner != cast.owner:
            problems.append(f"{name} belongs to {owner}")
        if not is_definer:
            continue
        for arg_type in arg_types:
            if arg_type.startswith("reg") or arg_type in ("name", "oid"):
                problems.append(f"{name} takes a {arg_type}")
        if DYNAMIC_SQL.search(source) or re.search(r"%[sI]", source):
            problems.append(f"{name} runs dynamic SQL")
        if "search_path=pg_catalog,pg_temp" not in config.replace(" ", ""):
            problems.append(f"{name} does not pin search_path ({config})")
        if public:
            problems.append(f"{name} is executable by PUBLIC")
    assert problems == []
    for role in cast.logins:
        assert (
            query(
                pipeline.database,
                "select nspname from pg_namespace where nspname in ('pii', 'pipeline_lib')"
                " and has_schema_privilege(%s, oid, 'CREATE')",
                (role,),
            )
            == []
        ), role


def tables_of(database: str, role: str) -> list[str]:
    return [
        name
        for (name,) in query(
            database,
            "select c.oid::regclass::text from pg_class c"
            " where c.relowner = %s::regrole and c.relkind in ('r', 'p')",
            (role,),
        )
    ]


COMMANDS = {
    # name: (role attribute, arguments, whether the queue holds a new message)
    "load": ("loader", ["load"], True),
    "run": ("transformer", ["run"], False),
    "run as a superuser": ("superuser", ["run"], True),
    "pii forget": ("admin", ["pii", "forget", "--user-id", "bystander-0001"], False),
    "pii purge-raw": ("admin", ["pii", "purge-raw", "--older-than", "0 seconds"], False),
    "pii recover --user-id": ("admin", ["pii", "recover", "--user-id", "bystander-0002"], False),
    "pii seal-missing": ("admin", ["pii", "seal-missing"], False),
    "pii remask": ("admin", ["pii", "remask"], False),
    "db init": ("superuser", ["db", "init"], False),
    "roles apply": ("superuser", ["roles", "apply"], False),
    "status": ("operator", ["status"], False),
}


XFAIL: dict[str, str] = {}


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=XFAIL[c])) if c in XFAIL else c
        for c in COMMANDS
    ],
)
def test_no_command_runs_a_lower_roles_code(
    pipeline: Pipeline, built: Cast, tmp_path: Path, command: str
) -> None:
    db, cast = pipeline.database, built
    attribute, args, send = COMMANDS[command]
    role = SUPERUSER if attribute == "superuser" else getattr(cast, attribute)
    if send:
        pipeline.queue.send([login("latecomer-0001", "192.0.2.1", "dev-latecomer")])
    # the loader: triggers on every table it owns
    loader_recorder = plant_recorder(db, cast.loader, "raw")
    check_recorder(db, cast.loader, loader_recorder)
    plant_triggers(db, cast.loader, loader_recorder, tables_of(db, cast.loader))
    # the transformer: triggers on every table it owns, shadows wherever it may create
    transformer_recorder = plant_recorder(db, cast.transformer, "staging")
    check_recorder(db, cast.transformer, transformer_recorder)
    plant_triggers(db, cast.transformer, transformer_recorder, tables_of(db, cast.transformer))
    schemas = shadow_schemas(db, cast)
    assert "public" in schemas
    for schema in schemas:
        plant_shadows(db, cast.transformer, schema, transformer_recorder)
    reset_recorder(db)

    if "--private-key" not in args and command.startswith(("pii recover", "pii remask")):
        args = [*args, "--private-key", str(tmp_path / "recovery.asc")]
    result = pipeline.logins(*args, check=False, PGUSER=role, PII__RECOVERY_PASSPHRASE=PASSPHRASE)
    if result.returncode == 7:
        assert "error: refusing to" in result.stderr, result.stderr
    ran = query(
        db, "select distinct who, at from public.ran_as where who != split_part(at, ':', 1)"
    )
    report = "\n".join([f"exit {result.returncode}", *map(str, sorted(ran)), result.stderr[-1500:]])
    assert strangers(db) == set(), report


# --- the superuser's `logins run`, one attack at a time ------------------------------------------


def test_superuser_load_runs_no_loader_trigger(pipeline: Pipeline, built: Cast) -> None:
    db, cast = pipeline.database, built
    recorder = plant_recorder(db, cast.loader, "raw")
    check_recorder(db, cast.loader, recorder)
    plant_triggers(db, cast.loader, recorder, ["raw.login_messages", "raw._dlt_loads"])
    pipeline.queue.send([login("latecomer-0001", "192.0.2.1", "dev-latecomer")])
    result = pipeline.logins("load", check=False, PGUSER=SUPERUSER)
    assert result.returncode == 7, result.stderr[-2000:]
    assert strangers(db) == set()


def test_superuser_dbt_build_runs_no_transformer_trigger(pipeline: Pipeline, built: Cast) -> None:
    db, cast = pipeline.database, built
    pipeline.queue.send([login("latecomer-0001", "192.0.2.1", "dev-latecomer")])
    pipeline.logins("load", PGUSER=cast.loader)
    recorder = plant_recorder(db, cast.transformer, "staging")
    check_recorder(db, cast.transformer, recorder)
    plant_triggers(db, cast.transformer, recorder, tables_of(db, cast.transformer))
    result = dbt_build(pipeline, SUPERUSER)
    assert result.returncode != 0
    assert "refusing to build over" in result.stdout
    assert strangers(db) == set()


def test_superuser_dbt_build_runs_no_transformer_shadow(pipeline: Pipeline, built: Cast) -> None:
    db, cast = pipeline.database, built
    pipeline.queue.send([login("latecomer-0001", "192.0.2.1", "dev-latecomer")])
    pipeline.logins("load", PGUSER=cast.loader)
    recorder = plant_recorder(db, cast.transformer, "staging")
    check_recorder(db, cast.transformer, recorder)
    for schema in shadow_schemas(db, cast):
        plant_shadows(db, cast.transformer, schema, recorder)
    dbt_build(pipeline, SUPERUSER)
    assert strangers(db) == set()
