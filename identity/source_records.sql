-- Identity-bearing records of the three core sources, one row per source record, not yet
-- normalised (identity/records.py normalises them). A web identity is one anonymous_id with
-- its latest identify traits and user id; events without an anonymous id form one identity
-- per user_id. A visitor never identified at all (no email, phone, user id or name) is no
-- customer and is skipped.
with web_identities as (
    -- One identity per coalesce(anonymous_id, user_id): the key dbt's web stitching maps
    -- events by (macros/web_stitching.sql), so an anonymous id that happens to equal a
    -- user id is one identity here as it is there, not two records with one key.
    select
        coalesce(anonymous_id, user_id) as source_record_id,
        arg_max(trait_email, occurred_at) filter (where trait_email is not null) as email,
        arg_max(trait_first_name, occurred_at) filter (where trait_first_name is not null) as first_name,
        arg_max(trait_last_name, occurred_at) filter (where trait_last_name is not null) as last_name,
        arg_max(trait_name, occurred_at) filter (where trait_name is not null) as full_name,
        arg_max(trait_phone, occurred_at) filter (where trait_phone is not null) as phone,
        arg_max(user_id, occurred_at) filter (where user_id is not null) as user_id,
        count(distinct user_id) as n_user_ids,
        min(occurred_at) as created_at,
        max(occurred_at) as updated_at
    from staging.stg_web__events
    where anonymous_id is not null or user_id is not null
    group by coalesce(anonymous_id, user_id)
)
select 'email' as source_system, contact_id as source_record_id, email, first_name, last_name,
       null::varchar as full_name, phone, null::varchar as address_line1, city as address_city,
       null::varchar as address_postal_code, country, null::varchar as user_id,
       0 as n_user_ids, false as is_deleted, created_at, updated_at
from staging.stg_email__contacts
union all
select 'billing', customer_id, email, null, null, name, phone, address_line1, address_city,
       address_postal_code, address_country, user_id, case when user_id is null then 0 else 1 end,
       coalesce(is_deleted, false), created_at, updated_at
from staging.stg_billing__customers
union all
select 'web', source_record_id, email, first_name, last_name, full_name, phone, null, null, null,
       null, user_id, n_user_ids, false, created_at, updated_at
from web_identities
where email is not null or phone is not null or user_id is not null
   or first_name is not null or last_name is not null or full_name is not null
