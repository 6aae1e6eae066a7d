-- The run history, installed by `logins db init` (idempotent), which then gives every object
-- here to the pipeline's owner role (NOLOGIN, not a superuser).
--   ops.pipeline_runs  one row per `logins load` or `logins run`: counts, codes, class names and
--                      durations only, never a body, IP, device id or message text
--   ops.record_run()   the only way in: SECURITY DEFINER, handed the run as one jsonb value,
--                      executable by the loader and the transformer (roles apply grants it).
--                      It inserts, never updates: a run id recorded once stays as recorded
-- The table has no writer but its owner, and only the operator role reads it (roles apply).
create schema if not exists ops;

revoke all on schema ops from public;

-- a map of short lower-case names (reject codes, step names, dbt's resource types and
-- statuses) to non-negative numbers: no room for free text
create or replace function ops.is_count_map(value jsonb)
returns boolean
language sql
immutable parallel safe
set search_path = pg_catalog, pg_temp
as $fn$
    select pg_catalog.jsonb_typeof(value) = 'object'
        and not exists (
            select
            from pg_catalog.jsonb_each(value) as entry
            where
                entry.key !~ '^[a-z][a-z0-9_ ]{0,63}$'
                or pg_catalog.jsonb_typeof(entry.value) <> 'number'
                or (entry.value)::text::numeric < 0
        )
$fn$;

revoke all on function ops.is_count_map(jsonb) from public;

-- dbt's results, summarised: success, seconds, node counts by resource type and status, and
-- the unique ids of the nodes that failed (names, never a row)
create or replace function ops.is_dbt_summary(value jsonb)
returns boolean
language sql
immutable parallel safe
set search_path = pg_catalog, pg_temp
as $fn$
    select pg_catalog.jsonb_typeof(value) = 'object'
        and (select pg_catalog.array_agg(k order by k) from pg_catalog.jsonb_object_keys(value) as k)
        = array['failed_nodes', 'seconds', 'statuses', 'success']
        and pg_catalog.jsonb_typeof(value -> 'success') = 'boolean'
        and pg_catalog.jsonb_typeof(value -> 'seconds') = 'number'
        and pg_catalog.jsonb_typeof(value -> 'statuses') = 'object'
        and not exists (
            select
            from pg_catalog.jsonb_each(value -> 'statuses') as kind
            where kind.key !~ '^[a-z][a-z0-9_]{0,63}$' or not ops.is_count_map(kind.value)
        )
        and pg_catalog.jsonb_typeof(value -> 'failed_nodes') = 'array'
        and not exists (
            select
            from pg_catalog.jsonb_array_elements(value -> 'failed_nodes') as node
            where
                pg_catalog.jsonb_typeof(node) <> 'string'
                or node #>> '{}' !~ '^[A-Za-z0-9_.-]+$'
                or pg_catalog.length(node #>> '{}') > 512
        )
$fn$;

revoke all on function ops.is_dbt_summary(jsonb) from public;

create table if not exists ops.pipeline_runs (
    run_id text primary key check (run_id ~ '^[0-9a-f]{32}$'),
    command text not null check (command in ('load', 'run')),
    -- the login that ran it (session_user: a SET ROLE does not hide who logged in)
    recorded_by name not null,
    started_at timestamptz not null,
    ended_at timestamptz not null check (ended_at >= started_at),
    status text not null check (status in ('succeeded', 'failed', 'interrupted')),
    -- the exception's class name, never its message
    error_class text check (error_class ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'),
    received bigint not null check (received >= 0),
    landed bigint not null check (landed >= 0),
    deleted bigint not null check (deleted >= 0),
    -- visible in the queue after the run (null where SQS did not answer)
    left_in_queue bigint check (left_in_queue >= 0),
    rejects_by_code jsonb not null check (ops.is_count_map(rejects_by_code)),
    rows_added bigint,
    user_logins_rows bigint check (user_logins_rows >= 0),
    step_seconds jsonb not null check (ops.is_count_map(step_seconds)),
    queue_visible_before bigint check (queue_visible_before >= 0),
    queue_in_flight_before bigint check (queue_in_flight_before >= 0),
    oldest_age_seconds_before double precision check (oldest_age_seconds_before >= 0),
    queue_visible_after bigint check (queue_visible_after >= 0),
    queue_in_flight_after bigint check (queue_in_flight_after >= 0),
    oldest_age_seconds_after double precision check (oldest_age_seconds_after >= 0),
    -- the oldest message this run landed: its age when it was received (sent_at to received_at)
    oldest_received_age_seconds double precision check (oldest_received_age_seconds >= 0),
    dbt jsonb check (ops.is_dbt_summary(dbt))
);

create index if not exists pipeline_runs_ended_at_idx on ops.pipeline_runs (ended_at);

revoke all on table ops.pipeline_runs from public;

-- Values in, one row out: the function reads no relation and calls nothing its caller
-- controls (jsonb operators and pg_catalog only). A run id already recorded is refused
-- (primary key), so no caller rewrites a row, its own or another's.
create or replace function ops.record_run(run jsonb)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
begin
    insert into ops.pipeline_runs (
        run_id, command, recorded_by, started_at, ended_at, status, error_class,
        received, landed, deleted, left_in_queue, rejects_by_code, rows_added,
        user_logins_rows, step_seconds, queue_visible_before, queue_in_flight_before,
        oldest_age_seconds_before, queue_visible_after, queue_in_flight_after,
        oldest_age_seconds_after, oldest_received_age_seconds, dbt
    )
    values (
        run ->> 'run_id',
        run ->> 'command',
        session_user,
        (run ->> 'started_at')::timestamptz,
        (run ->> 'ended_at')::timestamptz,
        run ->> 'status',
        run ->> 'error_class',
        (run ->> 'received')::bigint,
        (run ->> 'landed')::bigint,
        (run ->> 'deleted')::bigint,
        (run ->> 'left_in_queue')::bigint,
        coalesce(run -> 'rejects_by_code', '{}'::jsonb),
        (run ->> 'rows_added')::bigint,
        (run ->> 'user_logins_rows')::bigint,
        coalesce(run -> 'step_seconds', '{}'::jsonb),
        (run ->> 'queue_visible_before')::bigint,
        (run ->> 'queue_in_flight_before')::bigint,
        (run ->> 'oldest_age_seconds_before')::double precision,
        (run ->> 'queue_visible_after')::bigint,
        (run ->> 'queue_in_flight_after')::bigint,
        (run ->> 'oldest_age_seconds_after')::double precision,
        (run ->> 'oldest_received_age_seconds')::double precision,
        nullif(run -> 'dbt', 'null'::jsonb)
    );
end
$fn$;

revoke all on function ops.record_run(jsonb) from public;
