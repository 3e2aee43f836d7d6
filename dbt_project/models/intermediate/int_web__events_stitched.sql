{{ config(materialized='view') }}
-- Every web event with the golden customer it belongs to, stitched retroactively: the
-- anonymous page views before an identify get the customer the browser later identified as.
-- Precedence: the event's own userId; else the identity engine's mapping of its
-- anonymousId; else the userId that anonymousId last identified with (a device the
-- engine has not seen yet). visitor_id is the browser (anonymousId, else the userId).
-- A view: only int_web__events_sessionised reads it, and copying every web event costs more
-- than it saves.
with events as (

    select * from {{ ref('stg_web__events') }}

),

web_identities as (

    select source_record_id, customer_id
    from {{ ref('stg_identity__customer_map') }}
    where source_system = 'web'

),

user_customers as (

    select * from {{ ref('int_web__user_customers') }}

),

anonymous_id_last_user as (

    select anonymous_id, user_id
    from (
        select
            anonymous_id,
            user_id,
            row_number() over (
                partition by anonymous_id order by occurred_at desc, message_id desc
            ) as recency_rank
        from events
        where anonymous_id is not null and user_id is not null
    ) as identified
    where recency_rank = 1

),

stitched as (

    select
        events.*,
        {{ web_visitor_id('events.anonymous_id', 'events.user_id') }} as visitor_id,
        coalesce(
            own_user.customer_id, engine_mapped.customer_id, device_user.customer_id
        ) as customer_id,
        case
            when own_user.customer_id is not null then 'user_id'
            when engine_mapped.customer_id is not null then 'identity_map'
            when device_user.customer_id is not null then 'anonymous_id_to_user_id'
        end as stitched_by
    from events
    left join user_customers as own_user
        on own_user.user_id = events.user_id
    left join web_identities as engine_mapped
        on engine_mapped.source_record_id = coalesce(events.anonymous_id, events.user_id)
    left join anonymous_id_last_user
        on anonymous_id_last_user.anonymous_id = events.anonymous_id
    left join user_customers as device_user
        on device_user.user_id = anonymous_id_last_user.user_id

)

select * from stitched
