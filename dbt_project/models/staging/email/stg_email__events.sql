{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}
-- One row per email event: the first delivery of each event_id (at-least-once source).
-- Incremental: reprocesses the delivery partitions in the lookback window (see
-- macros/incremental_delivery.sql); tests/dbt proves the result equals a full rebuild.
with source as (

    select * from {{ source('email', 'events') }}
    {% if is_incremental() %}
    where {{ delivery_window_filter() }}
    {% endif %}

),

deliveries as (

    select
        event_id,
        contact_id,
        {{ clean_text('campaign_id') }} as campaign_id,
        {{ clean_text('campaign_name') }} as campaign_name,
        lower(trim(event_type)) as event_type,
        occurred_at,
        {{ clean_text('url') }} as url,
        _dt as delivered_dt,
        _loaded_at as loaded_at,
        row_number() over (
            partition by event_id
            order by _dt, _source_file, _line_number
        ) as delivery_rank
    from source

),

first_delivery as (

    select * from deliveries where delivery_rank = 1

)

select
    event_id,
    contact_id,
    campaign_id,
    campaign_name,
    event_type,
    occurred_at,
    url,
    delivered_dt,
    loaded_at
from first_delivery
{% if is_incremental() %}
where {{ keep_first_delivery('first_delivery', 'event_id') }}
{% endif %}
