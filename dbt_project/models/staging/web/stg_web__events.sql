{{
    config(
        materialized='incremental',
        unique_key='message_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}
-- One row per web event (Segment messageId): first delivery wins (at-least-once source).
-- Incremental with a delivery lookback window (macros/incremental_delivery.sql).
with source as (

    select * from {{ source('web', 'events') }}
    {% if is_incremental() %}
    where {{ delivery_window_filter() }}
    {% endif %}

),

delivery_ranks as (

    -- ranked on the lineage key alone: a window carrying every column of every web event
    -- costs several times more than ranking narrow rows and joining the winners back
    select
        _dt,
        _source_file,
        _line_number,
        row_number() over (
            partition by message_id
            order by _dt, _source_file, _line_number
        ) as delivery_rank
    from source

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
        source.user_agent,
        source.ip,
        source.event_timestamp as occurred_at,
        source.received_at,
        source._dt as delivered_dt,
        source._loaded_at as loaded_at
    from source
    inner join delivery_ranks
        on delivery_ranks._dt = source._dt
        and delivery_ranks._source_file = source._source_file
        and delivery_ranks._line_number = source._line_number
    where delivery_ranks.delivery_rank = 1

)

select
    message_id,
    event_type,
    anonymous_id,
    user_id,
    event_name,
    page_name,
    trait_email,
    trait_first_name,
    trait_last_name,
    trait_name,
    trait_phone,
    revenue,
    page_url,
    page_path,
    page_referrer,
    page_title,
    campaign_source,
    campaign_medium,
    campaign_name,
    user_agent,
    ip,
    occurred_at,
    received_at,
    delivered_dt,
    loaded_at
from first_delivery
{% if is_incremental() %}
where {{ keep_first_delivery('first_delivery', 'message_id') }}
{% endif %}
