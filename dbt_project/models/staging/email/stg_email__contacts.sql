{{
    config(
        materialized=delivery_incremental_materialization(),
        unique_key='contact_id',
        incremental_strategy='replace_keys',
        removed_when_null='delivered_dt',
        on_schema_change='fail'
    )
}}
-- One row per ESP contact: the latest version of each contact (latest-wins on updated_at,
-- ties broken by the later delivery partition, then file, then line).
with
{% if is_incremental() %}
affected_keys as (

    {{ keys_affected_by_redelivery(source('email', 'contacts'), 'contact_id') }}

),
{% endif %}

source as (

    select * from {{ source('email', 'contacts') }}
    {% if is_incremental() %}
    where contact_id in (select contact_id from affected_keys)
    {% endif %}

),

versions as (

    select
        contact_id,
        {{ clean_email('email') }} as email,
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        {{ clean_text('phone') }} as phone,
        {{ clean_text('city') }} as city,
        {{ clean_code('country') }} as country,
        subscribed as is_subscribed,
        created_at,
        updated_at,
        _dt as delivered_dt,
        _loaded_at as loaded_at,
        row_number() over (
            partition by contact_id
            order by updated_at desc, _dt desc, _source_file desc, _line_number desc
        ) as version_rank
    from source

),

latest as (

    select * from versions where version_rank = 1

)

select
    {% if is_incremental() %}affected_keys.contact_id{% else %}latest.contact_id{% endif %},
    latest.email,
    latest.first_name,
    latest.last_name,
    latest.phone,
    latest.city,
    latest.country,
    latest.is_subscribed,
    latest.created_at,
    latest.updated_at,
    -- the kept version's delivery; NULL in an incremental run when the contact_id vanished
    -- from raw, which the strategy removes
    latest.delivered_dt,
    latest.loaded_at
{% if is_incremental() %}
from affected_keys
left join latest
    on latest.contact_id = affected_keys.contact_id
{% else %}
from latest
{% endif %}
