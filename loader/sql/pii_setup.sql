-- Masking support, installed by `logins db init` (idempotent). The HMAC key lives in a table
-- only this function's owner can read; dbt calls pii.mask() and never sees the key.
create extension if not exists pgcrypto;

create schema if not exists pii;

create table if not exists pii.hmac_keys (
    key_version integer primary key,
    key bytea not null check (length(key) >= 32),
    is_current boolean not null default false,
    created_at timestamptz not null default now()
);

create unique index if not exists hmac_keys_one_current on pii.hmac_keys (is_current)
where is_current;

revoke all on table pii.hmac_keys from public;

-- kind keeps domains apart: an IP and a device id that are the same string get different masks.
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
        raise exception 'no HMAC key is installed in pii.hmac_keys'
            using hint = 'run `logins db init` with PII__HMAC_KEY set (the demo generates one)';
    end if;
    return encode(@pgcrypto@.hmac(convert_to(kind || ':' || value, 'UTF8'), current_key, 'sha256'), 'hex');
end
$fn$;
