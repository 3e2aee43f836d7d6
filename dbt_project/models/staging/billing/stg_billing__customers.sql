-- One row per billing customer: latest version wins (updated_at, then later delivery).
with source as (

    select * from {{ source('billing', 'customers') }}

),

versions as (

    select
        customer_id,
        {{ clean_text('user_id') }} as user_id,
        {{ clean_email('email') }} as email,
        {{ clean_text('name') }} as name,
        {{ clean_text('phone') }} as phone,
        {{ clean_text('address_line1') }} as address_line1,
        {{ clean_text('address_city') }} as address_city,
        {{ clean_text('address_postal_code') }} as address_postal_code,
        {{ clean_code('address_country') }} as address_country,
        coalesce(deleted, false) as is_deleted,
        created_at,
        updated_at,
        row_number() over (
            partition by customer_id
            order by updated_at desc, _dt desc, _source_file desc, _line_number desc
        ) as version_rank
    from source

)

select
    customer_id,
    user_id,
    email,
    name,
    phone,
    address_line1,
    address_city,
    address_postal_code,
    address_country,
    is_deleted,
    created_at,
    updated_at
from versions
where version_rank = 1
