{{
    config(
        materialized=delivery_incremental_materialization(),
        unique_key='visitor_id',
        incremental_strategy='replace_keys',
        removed_when_null='session_number',
        on_schema_change='fail',
        post_hook="{{ close_replaced_keys_record('web_sessions_visitors_to_regroup', 'visitor_id') }}"
    )
}}
-- One row per web session: a visitor's (browser's) run of events with no gap longer than
-- 30 minutes, attributed to the golden customer the visitor was stitched to, including
-- the anonymous sessions before they identified (int_web__events_stitched).
-- Incremental per visitor, like int_web__events_sessionised, whose rows it groups: a run
-- re-groups only the visitors that model replaced since this one last ran (the record
-- `keys_to_regroup` reads, macros/incremental_delivery.sql) and swaps all of their
-- sessions (`replace_keys` on visitor_id; a visitor with no event left returns one row
-- with a NULL session_number, which removes it).
with
{% if is_incremental() %}
changed_visitors as (

    {{ keys_to_regroup('web_sessions_visitors_to_regroup', 'visitor_id', ref('int_web__events_sessionised')) }}

),
{% endif %}

events as (

    select * from {{ ref('int_web__events_sessionised') }}
    {% if is_incremental() %}
    where visitor_id in (select visitor_id from changed_visitors)
    {% endif %}

),

sessions as (

    select
        visitor_id,
        session_number,
        max(anonymous_id) as anonymous_id,
        max(customer_id) as customer_id,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) as n_events,
        sum(case when event_type = 'page' then 1 else 0 end) as n_page_views,
        sum(case when event_type = 'track' then 1 else 0 end) as n_track_events,
        sum(case when event_type = 'identify' then 1 else 0 end) as n_identifies,
        max(case when event_name = 'Signed Up' then 1 else 0 end) as has_signed_up,
        sum(case when event_name = 'Order Completed' then 1 else 0 end) as n_orders,
        sum(case when event_name = 'Order Completed' then coalesce(revenue, 0) else 0 end) as order_revenue,
        -- a session has exactly one first and one last event: conditional aggregation reads
        -- their attributes without joining the events back
        max(case when is_session_start = 1 then page_url end) as landing_page_url,
        max(case when is_session_start = 1 then page_path end) as landing_page_path,
        max(case when is_session_end = 1 then page_path end) as exit_page_path,
        max(case when is_session_start = 1 then page_referrer end) as referrer,
        max(case when is_session_start = 1 then campaign_source end) as utm_source,
        max(case when is_session_start = 1 then campaign_medium end) as utm_medium,
        max(case when is_session_start = 1 then campaign_name end) as utm_campaign
    from events
    group by visitor_id, session_number

)

select
    {{ dbt.hash(dbt.concat(['sessions.visitor_id', "'|'", dbt.cast('sessions.started_at', dbt.type_string())])) }} as session_id,
    {% if is_incremental() %}changed_visitors.visitor_id{% else %}sessions.visitor_id{% endif %},
    sessions.anonymous_id,
    sessions.customer_id,
    cast(sessions.session_number as {{ dbt.type_bigint() }}) as session_number,
    sessions.started_at,
    sessions.ended_at,
    cast(sessions.started_at as date) as session_date,
    cast({{ dbt.datediff('sessions.started_at', 'sessions.ended_at', 'second') }} as {{ dbt.type_bigint() }}) as duration_seconds,
    cast(sessions.n_events as {{ dbt.type_bigint() }}) as n_events,
    cast(sessions.n_page_views as {{ dbt.type_bigint() }}) as n_page_views,
    cast(sessions.n_track_events as {{ dbt.type_bigint() }}) as n_track_events,
    cast(sessions.n_identifies as {{ dbt.type_bigint() }}) as n_identifies,
    sessions.landing_page_url,
    sessions.landing_page_path,
    sessions.exit_page_path,
    sessions.referrer,
    sessions.utm_source,
    sessions.utm_medium,
    sessions.utm_campaign,
    sessions.has_signed_up = 1 as has_signed_up,
    cast(sessions.n_orders as {{ dbt.type_bigint() }}) as n_orders,
    cast(sessions.order_revenue as {{ type_double() }}) as order_revenue
{% if is_incremental() %}
from changed_visitors
left join sessions
    on sessions.visitor_id = changed_visitors.visitor_id
{% else %}
from sessions
{% endif %}
