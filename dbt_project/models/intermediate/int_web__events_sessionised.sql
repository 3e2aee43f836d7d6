-- Web events cut into sessions per visitor (browser): a session ends after
-- `session_inactivity_minutes` (30) without an event; an event exactly 30 minutes after the
-- previous one continues the session. Events of one timestamp are ordered by message_id.
-- A view: fct_web_sessions is its only reader, and writing every web event once more
-- costs more than the sessions it feeds.
{{ config(materialized='view') }}
with events as (

    -- only what sessions and per-customer web metrics use: window operators carry every
    -- column through their sort, and web events are the largest table
    select
        message_id,
        visitor_id,
        anonymous_id,
        customer_id,
        event_type,
        event_name,
        revenue,
        page_url,
        page_path,
        page_referrer,
        campaign_source,
        campaign_medium,
        campaign_name,
        occurred_at
    from {{ ref('int_web__events_stitched') }}

),

neighbours as (

    select
        events.*,
        lag(occurred_at) over (partition by visitor_id order by occurred_at, message_id) as previous_occurred_at,
        lead(occurred_at) over (partition by visitor_id order by occurred_at, message_id) as next_occurred_at
    from events

),

boundaries as (

    select
        neighbours.*,
        case
            when previous_occurred_at is null then 1
            when occurred_at > {{ dbt.dateadd('minute', var('session_inactivity_minutes'), 'previous_occurred_at') }} then 1
            else 0
        end as is_session_start,
        case
            when next_occurred_at is null then 1
            when next_occurred_at > {{ dbt.dateadd('minute', var('session_inactivity_minutes'), 'occurred_at') }} then 1
            else 0
        end as is_session_end
    from neighbours

)

select
    boundaries.*,
    sum(is_session_start) over (
        partition by visitor_id
        order by occurred_at, message_id
        rows between unbounded preceding and current row
    ) as session_number
from boundaries
