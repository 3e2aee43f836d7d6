{{
    config(
        materialized=delivery_incremental_materialization(),
        unique_key='event_id',
        incremental_strategy='replace_keys',
        removed_when_null='delivered_dt',
        on_schema_change='fail',
        record_replaced_keys_in='email_events_to_rejoin',
        pre_hook="{{ open_replaced_keys_record('email_events_to_rejoin', 'event_id') }}"
    )
}}
-- One row per email event: the first delivery of each event_id (at-least-once source).
-- Incremental: rebuilds only the events a new, reloaded or emptied delivery partition can
-- change (macros/incremental_delivery.sql); tests/dbt proves the result equals a full rebuild.
-- It records the event ids it replaced for fct_email_events (macros/email_events.sql).
with
{% if is_incremental() %}
affected_events as (

    {{ keys_affected_by_redelivery(source('email', 'events'), 'event_id') }}

),
{% endif %}

source as (

    select * from {{ source('email', 'events') }}
    {% if is_incremental() %}
    where event_id in (select event_id from affected_events)
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
    {% if is_incremental() %}affected_events.event_id{% else %}first_delivery.event_id{% endif %},
    first_delivery.contact_id,
    first_delivery.campaign_id,
    first_delivery.campaign_name,
    first_delivery.event_type,
    first_delivery.occurred_at,
    first_delivery.url,
    -- NULL in an incremental run: the event vanished from raw, the strategy removes it
    first_delivery.delivered_dt,
    first_delivery.loaded_at
{% if is_incremental() %}
from affected_events
left join first_delivery
    on first_delivery.event_id = affected_events.event_id
{% else %}
from first_delivery
{% endif %}
