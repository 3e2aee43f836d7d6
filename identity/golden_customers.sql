-- Golden records: one row per customer of `_identity_assigned` (the identity records with
-- their customer_id), each value group taken whole from one named source record.
-- The rules are described in identity/survivorship.py.
with ranked as (
    select *, case source_system when 'billing' then 1 when 'email' then 2 else 3 end as source_rank
    from _identity_assigned
),
-- The source order (billing, email, web; not deleted; most recently updated; smallest key)
-- as one integer per record, sorted once: every "best record" below compares integers.
r as materialized (
    select customer_id, record_key, source_system, is_deleted, source_created_at,
           source_updated_at, display_first_name, display_last_name, display_address_line1,
           display_city, address_line1, address_city, address_postal_code, address_country,
           email, email_key, phone_e164, user_id,
           row_number() over (
               order by source_rank, is_deleted, -epoch(source_updated_at), record_key
           ) as record_rank
    from ranked
),
best_name as (
    select customer_id,
           arg_min(struct_pack(f := display_first_name, l := display_last_name, k := record_key),
                   record_rank) as v
    from r where display_first_name is not null or display_last_name is not null
    group by customer_id
),
best_address as (
    -- a record with an address line first, then the source order
    select customer_id,
           arg_min(struct_pack(line1 := display_address_line1, city := display_city,
                               postcode := address_postal_code, country := address_country,
                               k := record_key),
                   record_rank + (address_line1 is null)::bigint * 1000000000000) as v
    from r where address_line1 is not null or address_city is not null
    group by customer_id
),
email_groups as (
    select customer_id, email_key, count(*) as n,
           arg_min(struct_pack(e := email, k := record_key), record_rank) as v,
           min(record_rank) as rank_key
    from r where email_key is not null
    group by customer_id, email_key
),
best_email as (
    -- the most frequent mailbox first, then the source order
    select customer_id, arg_min(v, rank_key - n * 1000000000000) as v, count(*) as n_emails
    from email_groups group by customer_id
),
phone_groups as (
    select customer_id, phone_e164, count(*) as n,
           arg_min(struct_pack(p := phone_e164, k := record_key), record_rank) as v,
           min(record_rank) as rank_key
    from r where phone_e164 is not null
    group by customer_id, phone_e164
),
best_phone as (
    select customer_id, arg_min(v, rank_key - n * 1000000000000) as v, count(*) as n_phones
    from phone_groups group by customer_id
),
best_user_id as (
    select customer_id,
           arg_min(user_id, (source_system <> 'billing', is_deleted, -epoch(source_updated_at), record_key)) as user_id
    from r where user_id is not null group by customer_id
),
spans as (
    select customer_id, count(*) as n_source_records,
           min(source_created_at) as first_seen_at, max(source_updated_at) as last_seen_at
    from r group by customer_id
)
select
    s.customer_id,
    n.v.f as first_name,
    n.v.l as last_name,
    nullif(concat_ws(' ', n.v.f, n.v.l), '') as full_name,
    n.v.k as name_source_record,
    e.v.e as email,
    e.v.k as email_source_record,
    p.v.p as phone,
    p.v.k as phone_source_record,
    a.v.line1 as address_line1,
    a.v.city as address_city,
    a.v.postcode as address_postal_code,
    a.v.country as address_country,
    a.v.k as address_source_record,
    u.user_id as billing_user_id,
    s.n_source_records,
    coalesce(e.n_emails, 0) as n_emails,
    coalesce(p.n_phones, 0) as n_phones,
    s.first_seen_at,
    s.last_seen_at
from spans s
left join best_name n using (customer_id)
left join best_address a using (customer_id)
left join best_email e using (customer_id)
left join best_phone p using (customer_id)
left join best_user_id u using (customer_id)
order by s.customer_id
