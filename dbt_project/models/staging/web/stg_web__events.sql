{{
    config(
        materialized=delivery_incremental_materialization(),
        unique_key='message_id',
        incremental_strategy='replace_keys',
        removed_when_null='delivered_dt',
        on_schema_change='fail',
        record_replaced_keys_in='web_events_to_resessionise',
        pre_hook="{{ open_replaced_keys_record('web_events_to_resessionise', 'message_id') }}"
    )
}}
-- One row per web event (Segment messageId): first delivery wins (at-least-once source).
-- Incremental: rebuilds only the events a new, reloaded or emptied delivery partition can
-- change (macros/incremental_delivery.sql), and records the event ids it replaced for
-- int_web__events_sessionised (keys_to_regroup). The raw context.userAgent and context.ip are
-- not carried: no model uses them, they are the widest columns to write, and an IP
-- address is personal data best left in raw.
with
{% if is_incremental() %}
affected_events as (

    {{ keys_affected_by_redelivery(source('web', 'events'), 'message_id') }}

),
{% endif %}

source as (

    select * from {{ source('web', 'events') }}
    {% if is_incremental() %}
    where message_id in (select message_id from affected_events)
    {% endif %}

),

repeated_events as (

    -- ~1% of events arrive more than once: rank only their copies, on the lineage key alone
    select message_id
    from source
    group by message_id
    having count(*) > 1

),

later_deliveries as (

    select _dt, _source_file, _line_number
    from (
        select
            source._dt,
            source._source_file,
            source._line_number,
            row_number() over (
                partition by source.message_id
                order by source._dt, source._source_file, source._line_number
            ) as delivery_rank
        from source
        inner join repeated_events
            on repeated_events.message_id = source.message_id
    ) as ranked
    where delivery_rank > 1

),

first_delivery as (

    select
        source.message_id,
        lower(trim(source.type)) as event_type,
        {{ clean_text('source.anonymous_id') }} as anonymous_id,
        {{ clean_text('source.user_id') }} as user_id,
        {{ clean_text('source.event') }} as event_name,
        {{ clean_text('source.name') }} as page_name,
        {{ clean_email(json_extract_text('source.traits', 'email')) }} as trait_email,
        {{ clean_text(json_extract_text('source.traits', 'first_name')) }} as trait_first_name,
        {{ clean_text(json_extract_text('source.traits', 'last_name')) }} as trait_last_name,
        {{ clean_text(json_extract_text('source.traits', 'name')) }} as trait_name,
        {{ clean_text(json_extract_text('source.traits', 'phone')) }} as trait_phone,
        {{ dbt.safe_cast(json_extract_text('source.properties', 'revenue'), type_double()) }} as revenue,
        source.page_url,
        source.page_path,
        source.page_referrer,
        source.page_title,
        {{ clean_text('source.campaign_source') }} as campaign_source,
        {{ clean_text('source.campaign_medium') }} as campaign_medium,
        {{ clean_text('source.campaign_name') }} as campaign_name,
        source.event_timestamp as occurred_at,
        source.received_at,
        source._dt as delivered_dt,
        source._loaded_at as loaded_at
    from source
    left join later_deliveries
        on later_deliveries._dt = source._dt
        and later_deliveries._source_file = source._source_file
        and later_deliveries._line_number = source._line_number
    where later_deliveries._dt is null

)

select
    {% if is_incremental() %}affected_events.message_id{% else %}first_delivery.message_id{% endif %},
    first_delivery.event_type,
    first_delivery.anonymous_id,
    first_delivery.user_id,
    first_delivery.event_name,
    first_delivery.page_name,
    first_delivery.trait_email,
    first_delivery.trait_first_name,
    first_delivery.trait_last_name,
    first_delivery.trait_name,
    first_delivery.trait_phone,
    first_delivery.revenue,
    first_delivery.page_url,
    first_delivery.page_path,
    first_delivery.page_referrer,
    first_delivery.page_title,
    first_delivery.campaign_source,
    first_delivery.campaign_medium,
    first_delivery.campaign_name,
    first_delivery.occurred_at,
    first_delivery.received_at,
    -- NULL in an incremental run: the event vanished from raw, the strategy removes it
    first_delivery.delivered_dt,
    first_delivery.loaded_at
{% if is_incremental() %}
from affected_events
left join first_delivery
    on first_delivery.message_id = affected_events.message_id
{% else %}
from first_delivery
{% endif %}
