-- PII support, installed by `logins db init` (idempotent). `logins db init` then gives every
-- object here to the pipeline's owner role (NOLOGIN, not a superuser), so the SECURITY DEFINER
-- functions run with that role's rights and nothing more.
--   pii.hmac_keys      the masking keys; only this file's functions read them
--   pii.mask_values()  keyed HMAC-SHA256 of values passed as arrays, sealing new ones (dbt)
--   pii.mask()         one value's mask (the CLI's checks); pii.mask_key_version()
--   pii.recovery_keys  OpenPGP public keys the originals are encrypted to (no private key here)
--   pii.vault          each distinct masked value once, encrypted (envelope: pii.data_keys)
--   pii.audit_log      append-only record of every recovery, erasure, purge and rotation
--   pii.recover(), pii.shred(), pii.rotate_hmac_key(), pii.record_plaintext_erasure()
--                      the audited ways in
-- No function here reads a relation, or calls a function, that its caller names or controls:
-- callers pass values.
create schema if not exists pii;

revoke all on schema pii from public;

create table if not exists pii.hmac_keys (
    key_version integer primary key,
    key bytea not null check (length(key) >= 32),
    is_current boolean not null default false,
    created_at timestamptz not null default now()
);

create unique index if not exists hmac_keys_one_current on pii.hmac_keys (is_current)
where is_current;

revoke all on table pii.hmac_keys from public;

-- The mask itself: HMAC-SHA256 (hex) of kind:value. kind keeps domains apart, so an IP and a
-- device id that are the same string get different masks. A plain SQL function, so Postgres
-- inlines it into the queries below: masking a set costs one HMAC a value. Stable, as
-- convert_to() is: declared immutable, it was not inlined and cost twice as much (2M HMACs,
-- 4.1 s against 2.2 s).
create or replace function pii.hmac_hex(kind text, value text, key bytea)
returns text
language sql
stable strict parallel safe
as $fn$
    -- pgcrypto's function by its schema and exact argument types: no overload can win
    select encode(
        @pgcrypto@.hmac(convert_to(kind || ':' || value, 'UTF8'::name), key, 'sha256'::text), 'hex'
    )
$fn$;

revoke all on function pii.hmac_hex(text, text, bytea) from public;

-- Refuses to go on, with the fix, while no HMAC key is current (every masking function asks).
create or replace function pii.require_hmac_key()
returns void
language plpgsql
stable parallel safe
set search_path = pg_catalog, pg_temp
as $fn$
begin
    if not exists (select from pii.hmac_keys as k where k.is_current) then
        raise exception 'no HMAC key is installed in pii.hmac_keys'
            using hint = 'run `logins db init` with PII__HMAC_KEY set (the demo generates one)';
    end if;
end
$fn$;

revoke all on function pii.require_hmac_key() from public;

-- One value's mask with the current key (the CLI's erasure and checks; dbt masks sets).
create or replace function pii.mask(kind text, value text)
returns text
language plpgsql
stable strict parallel safe
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    current_key bytea;
begin
    select k.key into current_key from pii.hmac_keys as k where k.is_current;
    if current_key is null then
        perform pii.require_hmac_key();
    end if;
    return pii.hmac_hex(kind, value, current_key);
end
$fn$;

-- The version of the key pii.mask() uses now (stable: one answer per statement, like mask()).
create or replace function pii.mask_key_version()
returns integer
language sql
stable parallel safe
security definer
set search_path = pg_catalog, pg_temp
as $fn$
    select k.key_version from pii.hmac_keys as k where k.is_current
$fn$;

create table if not exists pii.recovery_keys (
    recovery_key_id integer generated always as identity primary key,
    fingerprint text not null unique,
    public_key bytea not null,
    is_current boolean not null default false,
    created_at timestamptz not null default now()
);

create unique index if not exists recovery_keys_one_current on pii.recovery_keys (is_current)
where is_current;

revoke all on table pii.recovery_keys from public;

-- Envelope encryption: each sealing batch gets a random data key, stored only encrypted to the
-- recovery public key (pgp_pub_encrypt, ~120 us); each value is encrypted with that data key
-- (pgp_sym_encrypt, ~15 us). Both are plain OpenPGP messages; the data key is made inside the
-- statement and never stored or sent in the clear.
create table if not exists pii.data_keys (
    data_key_id bigint generated always as identity primary key,
    recovery_key_id integer not null references pii.recovery_keys,
    wrapped_key bytea not null,
    created_at timestamptz not null default now()
);

revoke all on table pii.data_keys from public;

create table if not exists pii.vault (
    kind text not null,
    mask text not null,
    data_key_id bigint not null references pii.data_keys,
    ciphertext bytea not null,
    sealed_at timestamptz not null default now(),
    primary key (kind, mask)
);

revoke all on table pii.vault from public;

-- Retired: they read a relation their caller named, so a caller's view could run the caller's
-- functions with these functions' rights. Masking and sealing now take values.
drop function if exists pii.mask_new(regclass);
drop function if exists pii.mask_rows(regclass, text[]);
drop function if exists pii.seal_new(regclass);

-- Replaced by the one query in pii.mask_values() that masks and seals (in parallel workers).
drop function if exists pii.seal(text[], text[], text[]);

-- Every vault row of a batch names the data key the same call just made: a foreign key checked
-- that once a row (a trigger per row, a third of a first build's sealing). Only the owner's
-- functions write either table, and nothing deletes a data key a vault row names.
alter table pii.vault drop constraint if exists vault_data_key_id_fkey;

-- An earlier version kept every call's values in one table, deleting them after: erased values
-- stayed in its pages as dead rows. Each call now has a table of its own, dropped with it.
drop table if exists pii.mask_batches;

-- Masks values given as values: element i of `vals` is a value of kind `kinds[i]` (null stays
-- null), with the current HMAC key, and seals each value the vault does not hold yet,
-- encrypted for the holder of the recovery private key (nothing is sealed while no recovery
-- key is installed; `sealed` says how many were). It reads nothing its caller controls: the
-- caller passes data, never a name. One key version for the whole call, returned beside the
-- masks.
-- Envelope: one random data key a call, stored only encrypted to the recovery public key; each
-- value encrypted with it (pgp_sym_encrypt, ~10 us). A first build seals millions of values,
-- so the values go through a table of the call's own into one query that parallel workers
-- share (one HMAC and one encryption a value; workers cannot read a session's temporary
-- tables); a small call stays below the parallel scan threshold and runs in this backend. The
-- call's table is unlogged and dropped before the call returns (or with its transaction), so
-- no page keeps a value once the transaction ends.
create or replace function pii.mask_values(
    kinds text[], vals text[], out masks text[], out key_version integer, out sealed integer
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
-- the per-value work is costly and the rows are few bytes: let workers share it
set parallel_setup_cost = 100
set parallel_tuple_cost = 0.001
-- sorts of a first build's millions of masks stay in memory
set work_mem = '128MB'
as $fn$
declare
    current_key bytea;
    secret text;
    data_key bigint;
begin
    if coalesce(cardinality(kinds), 0) != coalesce(cardinality(vals), 0) then
        raise exception 'pii.mask_values() needs one kind for each value (% kinds, % values)',
            cardinality(kinds), cardinality(vals);
    end if;
    select k.key, k.key_version into current_key, key_version
    from pii.hmac_keys as k
    where k.is_current;
    if current_key is null then
        perform pii.require_hmac_key();
    end if;

    if exists (select from pii.recovery_keys as rk where rk.is_current) then
        -- one sealing call at a time (shred waits too), so a value found missing below is
        -- still missing when it is inserted: a plain insert, no conflict arbitration a row
        lock table pii.vault in share row exclusive mode;
        secret := encode(@pgcrypto@.gen_random_bytes(32::integer), 'hex');
        insert into pii.data_keys (recovery_key_id, wrapped_key)
        select
            rk.recovery_key_id,
            @pgcrypto@.pgp_pub_encrypt(secret, rk.public_key, 'cipher-algo=aes256'::text)
        from pii.recovery_keys as rk
        where rk.is_current
        returning data_key_id into data_key;
    end if;

    -- static SQL only (no name is built): a concurrent call waits for this one's transaction
    -- to end before it can make the table again (sealing calls wait on the vault's lock anyway)
    create unlogged table pii.mask_batch (position bigint, kind text, value text);
    insert into pii.mask_batch (position, kind, value)
    select given.position, given.kind, given.value
    from unnest(kinds, vals) with ordinality as given (kind, value, position);

    create temporary table pii_masked_batch on commit drop as
    select
        masked.position,
        masked.kind,
        masked.mask,
        case
            when
                secret is not null
                and masked.value is not null
                and not exists (
                    select from pii.vault as v
                    where v.kind = masked.kind and v.mask = masked.mask
                )
                then @pgcrypto@.pgp_sym_encrypt(
                    masked.value, secret, 'cipher-algo=aes256, s2k-mode=1'::text
                )
        end as ciphertext
    from (
        select
            b.position,
            b.kind,
            b.value,
            pii.hmac_hex(b.kind, b.value, current_key) as mask
        from pii.mask_batch as b
    ) as masked;

    drop table pii.mask_batch;

    masks := array(
        select m.mask from pg_temp.pii_masked_batch as m order by m.position
    );

    -- a value given twice was encrypted twice: the vault keeps one (in the index's order)
    insert into pii.vault (kind, mask, data_key_id, ciphertext)
    select distinct on (m.kind, m.mask) m.kind, m.mask, data_key, m.ciphertext
    from pg_temp.pii_masked_batch as m
    where m.ciphertext is not null
    order by m.kind, m.mask;
    get diagnostics sealed = row_count;
    if sealed = 0 and data_key is not null then
        delete from pii.data_keys as dk where dk.data_key_id = data_key;
    end if;

    drop table pg_temp.pii_masked_batch;
end
$fn$;

revoke all on function pii.mask_values(text[], text[]) from public;

create table if not exists pii.audit_log (
    audit_id bigint generated always as identity primary key,
    action text not null,
    actor text not null default session_user,
    at timestamptz not null default clock_timestamp(),
    request text not null,
    value_count integer not null
);

revoke all on table pii.audit_log from public;

-- Append-only, for its owner too (a superuser can still drop the trigger: that is DDL, logged).
create or replace function pii.refuse_audit_change()
returns trigger
language plpgsql
as $fn$
begin
    raise exception 'pii.audit_log is append-only';
end
$fn$;

drop trigger if exists audit_log_append_only on pii.audit_log;
create trigger audit_log_append_only before update or delete on pii.audit_log
for each row execute function pii.refuse_audit_change();

drop trigger if exists audit_log_no_truncate on pii.audit_log;
create trigger audit_log_no_truncate before truncate on pii.audit_log
for each statement execute function pii.refuse_audit_change();

alter table pii.audit_log add column if not exists subjects text [];

comment on column pii.audit_log.subjects is
'the kind:mask pairs pii.recover() returned, as it found them (not as asked)';

-- A free-form pii.audit() let its caller write any row; each audited action now writes its own.
drop function if exists pii.audit(text, text, integer);

-- The CLI's plaintext erasure (`logins pii forget`, `purge-raw`) updates the pipeline's tables
-- in the caller's session and records it here: only these two actions, with a count.
create or replace function pii.record_plaintext_erasure(action text, request text, value_count integer)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
begin
    if action not in ('forget_plaintext', 'purge_raw') or value_count < 0 then
        raise exception 'pii.record_plaintext_erasure() records forget_plaintext or purge_raw only';
    end if;
    insert into pii.audit_log (action, request, value_count) values (action, request, value_count);
end
$fn$;

revoke all on function pii.record_plaintext_erasure(text, text, integer) from public;

-- The only way to read the vault: returns the ciphertexts asked for and records the request.
create or replace function pii.recover(request text, kinds text[], masks text[])
returns table (
    value_kind text, value_mask text, ciphertext bytea, data_key_id bigint, wrapped_key bytea
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    found integer;
begin
    return query
    select v.kind, v.mask, v.ciphertext, v.data_key_id, k.wrapped_key
    from pii.vault as v
    inner join pii.data_keys as k on v.data_key_id = k.data_key_id
    inner join unnest(kinds, masks) as asked (kind, mask) on v.kind = asked.kind and v.mask = asked.mask;
    get diagnostics found = row_count;
    insert into pii.audit_log (action, request, value_count, subjects)
    select 'recover', request, found, array_agg(v.kind || ':' || v.mask order by v.kind, v.mask)
    from pii.vault as v
    inner join unnest(kinds, masks) as asked (kind, mask) on v.kind = asked.kind and v.mask = asked.mask;
end
$fn$;

revoke all on function pii.recover(text, text[], text[]) from public;

-- Crypto-shredding: deletes the encrypted originals of these masks, so nothing can recover them.
create or replace function pii.shred(request text, kinds text[], masks text[])
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    removed integer;
begin
    with removed_rows as (
        delete from pii.vault as v
        using unnest(kinds, masks) as asked (kind, mask)
        where v.kind = asked.kind and v.mask = asked.mask
        returning v.kind, v.mask
    )
    -- a count only: the erased values' masks kept here would let a brute force of the mask
    -- find them again
    insert into pii.audit_log (action, request, value_count)
    select 'forget', request, count(*)
    from removed_rows as r
    returning value_count into removed;
    return removed;
end
$fn$;

revoke all on function pii.shred(text, text[], text[]) from public;

-- A new HMAC key, generated inside the database (it never travels), becomes current.
create or replace function pii.rotate_hmac_key()
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    version integer;
begin
    lock table pii.hmac_keys in exclusive mode;
    select coalesce(max(k.key_version), 0) + 1 into version from pii.hmac_keys as k;
    update pii.hmac_keys set is_current = false where is_current;
    insert into pii.hmac_keys (key_version, key, is_current)
    values (version, @pgcrypto@.gen_random_bytes(32), true);
    insert into pii.audit_log (action, request, value_count)
    values ('rotate', 'hmac key version ' || version, 0);
    return version;
end
$fn$;

revoke all on function pii.rotate_hmac_key() from public;

-- Nothing in pii runs for PUBLIC: the roles get what they need from `logins roles apply`.
revoke all on all functions in schema pii from public;

-- Who may call what: `logins roles apply` grants EXECUTE on each function to the roles its
-- comment names after `callers:` (transformer, pii_admin), and on nothing else. Only the
-- schema's owner can change a comment. A new function for a role is one line here.
comment on function pii.mask_values(text[], text[]) is
'callers: transformer, pii_admin. Masks values and seals new ones in the vault.';
comment on function pii.mask_key_version() is
'callers: transformer, pii_admin. The HMAC key version pii.mask() uses now.';
comment on function pii.mask(text, text) is
'callers: pii_admin. One value''s mask with the current key.';
comment on function pii.recover(text, text[], text[]) is
'callers: pii_admin. Ciphertexts of the masks asked for, audited.';
comment on function pii.shred(text, text[], text[]) is
'callers: pii_admin. Removes the vault''s originals of the masks given, audited.';
comment on function pii.record_plaintext_erasure(text, text, integer) is
'callers: pii_admin. Records a forget or purge-raw of plaintext bodies.';
comment on function pii.rotate_hmac_key() is
'callers: pii_admin. A new current HMAC key, audited.';
