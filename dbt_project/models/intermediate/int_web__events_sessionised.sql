{{
    config(
        materialized=delivery_incremental_materialization(),
        unique_key='visitor_id',
        incremental_strategy='replace_keys',
        removed_when_null='message_id',
        on_schema_change='fail',
        record_replaced_keys_in='web_sessions_visitors_to_regroup',
        pre_hook="{{ open_replaced_keys_record('web_sessions_visitors_to_regroup', 'visitor_id') }}",
        post_hook=[
            "{{ close_replaced_keys_record('web_events_to_resessionise', 'message_id') }}",
            "{{ snapshot_web_stitching_inputs() }}",
        ]
    )
}}
-- depends_on: {{ ref('stg_web__events') }}, {{ ref('int_web__user_customers') }}, {{ ref('stg_identity__customer_map') }}
-- Web events cut into sessions per visitor (browser): a session ends after
-- `session_inactivity_minutes` (30) without an event; an event exactly 30 minutes after the
-- previous one continues the session. Events of one timestamp are ordered by message_id.
-- Incremental per visitor: a visitor's sessions depend on that visitor's events and the
-- customer each was stitched to, nothing else. A run re-sessionises every visitor one of
-- whose events is new, gone, re-kept from another delivery, reloaded or stitched to
-- another customer (an identity merge or split, a new billing user_id), and replaces all
-- of that visitor's rows (`replace_keys` on visitor_id; a visitor with no event left
-- returns one row with a NULL message_id, which removes it). The visitors it replaced are
-- recorded for fct_web_sessions (keys_to_regroup).
-- Finding and stitching them reads no other event in full (macros/web_stitching.sql):
--   * events: stg_web__events records the event ids it replaced since this model last ran
--     (keys_to_regroup; every event after a whole build of it). Their delivery and load
--     times there against the ones held here find every event new, gone, re-kept or
--     reloaded, with the visitor it belongs to now and the one held here. Staging also
--     re-keeps its newest day's events unchanged every night: they are not changes;
--   * stitching: an event's customer is a function of its own userId, its visitor's
--     identity-engine mapping and the userId its anonymousId last identified with (one of
--     that visitor's own events). So the customer of an event whose visitor has no changed
--     event changes only if the mapping of a userId it carries or of its visitor changed:
--     each run keeps the mappings it stitched with (post-hook snapshot_web_stitching_inputs,
--     dbt_incremental.web_stitching_*), the next one compares them with today's;
--   * only the found visitors' events are stitched (stitch_web_events, the SQL of
--     int_web__events_stitched), sorted and windowed.
-- Without those snapshots (a warehouse built before them) a run stitches every event and
-- compares it with this table instead, which finds the same visitors.
{%- set stitching_snapshot = run_state_relation('web_stitching_user_customers') if is_incremental() else none %}
with
{% if is_incremental() and stitching_snapshot is not none %}
replaced_events as (

    {{ keys_to_regroup('web_events_to_resessionise', 'message_id', ref('stg_web__events')) }}

),

changed_events as (

    -- an event new, gone, re-kept from another delivery or reloaded: the kept row of an
    -- event is named by its delivery and load time (no stitching here)
    select
        {{ web_visitor_id('today.anonymous_id', 'today.user_id') }} as current_visitor_id,
        held.visitor_id as held_visitor_id
    from replaced_events
    left join {{ ref('stg_web__events') }} as today
        on today.message_id = replaced_events.message_id
    left join {{ this }} as held
        on held.message_id = replaced_events.message_id
    where held.message_id is null
        or today.message_id is null
        or {{ web_visitor_id('today.anonymous_id', 'today.user_id') }} <> held.visitor_id
        or today.delivered_dt <> held.delivered_dt
        or today.loaded_at <> held.loaded_at

),

restitched_users as (

    {{ web_stitching_changes('user_customers', 'user_id', ref('int_web__user_customers')) }}

),

restitched_records as (

    {{ web_stitching_changes('identities', 'source_record_id', identity_map_of('web')) }}

),

changed_visitors as (

    select current_visitor_id as visitor_id from changed_events where current_visitor_id is not null
    union
    select held_visitor_id as visitor_id from changed_events where held_visitor_id is not null
    union
    -- an event whose customer may have moved with a mapping (see above)
    select {{ web_visitor_id('anonymous_id', 'user_id') }} as visitor_id
    from {{ ref('stg_web__events') }}
    where user_id in (select user_id from restitched_users)
        or coalesce(anonymous_id, user_id) in (select source_record_id from restitched_records)

),

changed_visitor_events as (

    -- all the events of each changed visitor, so stitching them alone is exact
    select *
    from {{ ref('stg_web__events') }}
    where {{ web_visitor_id('anonymous_id', 'user_id') }} in (select visitor_id from changed_visitors)

),

changed_visitors_stitched as (

    {{ stitch_web_events('changed_visitor_events') }}

),
{% endif %}

stitched as (

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
        occurred_at,
        delivered_dt,
        loaded_at
    {% if is_incremental() and stitching_snapshot is not none %}
    from changed_visitors_stitched
    {% else %}
    from {{ ref('int_web__events_stitched') }}
    {% endif %}

),

{% if is_incremental() and stitching_snapshot is none %}
changed_events as (

    select
        stitched.visitor_id as current_visitor_id,
        held.visitor_id as held_visitor_id
    from stitched
    full outer join {{ this }} as held
        on held.message_id = stitched.message_id
    where held.message_id is null
        or stitched.message_id is null
        or stitched.visitor_id <> held.visitor_id
        or stitched.delivered_dt <> held.delivered_dt
        or stitched.loaded_at <> held.loaded_at
        or {{ values_differ('stitched.customer_id', 'held.customer_id') }}

),

changed_visitors as (

    select current_visitor_id as visitor_id from changed_events where current_visitor_id is not null
    union
    select held_visitor_id as visitor_id from changed_events where held_visitor_id is not null

),
{% endif %}

events as (

    select * from stitched
    {% if is_incremental() %}
    where visitor_id in (select visitor_id from changed_visitors)
    {% endif %}

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

),

sessionised as (

    select
        boundaries.*,
        sum(is_session_start) over (
            partition by visitor_id
            order by occurred_at, message_id
            rows between unbounded preceding and current row
        ) as session_number
    from boundaries

)

select
    {% if is_incremental() %}changed_visitors.visitor_id{% else %}sessionised.visitor_id{% endif %},
    -- NULL in an incremental run: the visitor has no event left, the strategy removes it
    sessionised.message_id,
    sessionised.anonymous_id,
    sessionised.customer_id,
    sessionised.event_type,
    sessionised.event_name,
    sessionised.revenue,
    sessionised.page_url,
    sessionised.page_path,
    sessionised.page_referrer,
    sessionised.campaign_source,
    sessionised.campaign_medium,
    sessionised.campaign_name,
    sessionised.occurred_at,
    sessionised.delivered_dt,
    sessionised.loaded_at,
    sessionised.previous_occurred_at,
    sessionised.next_occurred_at,
    sessionised.is_session_start,
    sessionised.is_session_end,
    sessionised.session_number
{% if is_incremental() %}
from changed_visitors
left join sessionised
    on sessionised.visitor_id = changed_visitors.visitor_id
{% else %}
from sessionised
{% endif %}
