{{
    config(
        materialized=delivery_incremental_materialization(),
        unique_key='customer_id',
        incremental_strategy='replace_keys',
        removed_when_null='delivered_dt',
        on_schema_change='fail'
    )
}}
-- One row per billing customer: latest version wins (updated_at, then later delivery).
with
{% if is_incremental() %}
affected_keys as (

    {{ keys_affected_by_redelivery(source('billing', 'customers'), 'customer_id') }}

),
{% endif %}

source as (

    select * from {{ source('billing', 'customers') }}
    {% if is_incremental() %}
    where customer_id in (select customer_id from affected_keys)
    {% endif %}

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
        _dt as delivered_dt,
        _loaded_at as loaded_at,
        row_number() over (
            partition by customer_id
            order by updated_at desc, _dt desc, _source_file desc, _line_number desc
        ) as version_rank
    from source

),

latest as (

    select * from versions where version_rank = 1

)

select
    {% if is_incremental() %}affected_keys.customer_id{% else %}latest.customer_id{% endif %},
    latest.user_id,
    latest.email,
    latest.name,
    latest.phone,
    latest.address_line1,
    latest.address_city,
    latest.address_postal_code,
    latest.address_country,
    latest.is_deleted,
    latest.created_at,
    latest.updated_at,
    -- the kept version's delivery; NULL in an incremental run when the customer_id vanished
    -- from raw, which the strategy removes
    latest.delivered_dt,
    latest.loaded_at
{% if is_incremental() %}
from affected_keys
left join latest
    on latest.customer_id = affected_keys.customer_id
{% else %}
from latest
{% endif %}
