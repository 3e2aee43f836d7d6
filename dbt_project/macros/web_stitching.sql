{#- The mappings int_web__events_stitched stitches web events with, as the last
    int_web__events_sessionised build used them: the next incremental run compares them
    with today's to find the events whose customer may have moved without any of their
    visitor's events changing (an identity merge or split, a new billing user_id).

      - dbt_incremental.web_stitching_user_customers: int_web__user_customers (userId ->
        customer);
      - dbt_incremental.web_stitching_identities: the identity engine's web mappings
        (anonymousId or userId -> customer).

    Written by the sessionised model's post-hook in its own transaction, so they always
    describe what its rows were stitched with. Run state, outside the built schemas; on
    Spark (where the model is a table rebuilt whole) there are none. -#}

{#- The keys whose mapping differs between the snapshot and `current`: added, removed or
    mapped to another customer. -#}
{% macro web_stitching_changes(name, key, current) -%}
    select coalesce(today.{{ key }}, stitched_with.{{ key }}) as {{ key }}
    from {{ current }} as today
    full outer join dbt_incremental.web_stitching_{{ name }} as stitched_with
        on stitched_with.{{ key }} = today.{{ key }}
    where today.{{ key }} is null
        or stitched_with.{{ key }} is null
        or {{ values_differ('today.customer_id', 'stitched_with.customer_id') }}
{%- endmacro %}

{% macro snapshot_web_stitching_inputs() -%}
    {%- if target.type != 'spark' -%}
    create or replace table dbt_incremental.web_stitching_user_customers as
    select user_id, customer_id from {{ ref('int_web__user_customers') }};
    create or replace table dbt_incremental.web_stitching_identities as
    select source_record_id, customer_id from {{ identity_map_of('web') }} as identities
    {%- endif -%}
{%- endmacro %}


{#- Every web event of `events` (stg_web__events or a subset of it holding ALL the events of
    each visitor it has) with the golden customer it belongs to: the SQL of
    int_web__events_stitched, which passes all of stg_web__events, and of the incremental
    int_web__events_sessionised, which passes the events of the visitors it re-sessionises
    (exact: a visitor's events are stitched from their own userIds, their visitor's mapping
    and the userId their anonymousId last identified with, which is one of that same
    visitor's events; the mappings are read whole). -#}
{% macro stitch_web_events(events) -%}
with events as (

    select * from {{ events }}

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
{%- endmacro %}
