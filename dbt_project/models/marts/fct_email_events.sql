{{
    config(
        materialized=delivery_incremental_materialization(),
        unique_key='event_id',
        incremental_strategy='replace_keys',
        removed_when_null='delivered_dt',
        on_schema_change='fail',
        record_replaced_keys_in='email_metrics_customers_to_regroup',
        record_replaced_column='customer_id',
        pre_hook="{{ open_replaced_keys_record('email_metrics_customers_to_regroup', 'customer_id') }}",
        post_hook=[
            "{{ close_replaced_keys_record('email_events_to_rejoin', 'event_id') }}",
            "{{ snapshot_email_events_identities() }}",
        ]
    )
}}
-- One row per email event (deduplicated), with the golden customer of its contact.
-- Incremental per event (macros/email_events.sql): an event's row is a function of its
-- stg_email__events row and its contact's customer in the identity map, nothing else. A
-- run re-joins only the events stg_email__events replaced since this model last ran (new,
-- re-kept from another delivery, reloaded or gone: the record `keys_to_regroup` reads)
-- and the events of the contacts whose customer changed since (an identity merge, split
-- or new match: today's email mapping against the one the last run joined with), and
-- swaps them (`replace_keys` on event_id; an event gone returns one row with a NULL
-- delivered_dt, which removes it). It records the customers of the rows it replaced for
-- int_customer__email_metrics. On Spark it is a table rebuilt whole.
{%- set identities_snapshot = run_state_relation('email_events_identities') if is_incremental() else none %}
with
{% if is_incremental() %}
changed_events as (

    {{ keys_to_regroup('email_events_to_rejoin', 'event_id', ref('stg_email__events')) }}
    union
    select event_id
    from {{ this }}
    {% if identities_snapshot is not none %}
    where contact_id in (
        {{ remapped_email_contacts() }}
    )
    {% endif %}

),
{% endif %}

events as (

    select * from {{ ref('stg_email__events') }}
    {% if is_incremental() %}
    where event_id in (select event_id from changed_events)
    {% endif %}

)

select
    {% if is_incremental() %}changed_events.event_id{% else %}events.event_id{% endif %},
    events.contact_id,
    email_identities.customer_id,
    events.campaign_id,
    events.campaign_name,
    events.event_type,
    events.occurred_at,
    cast(events.occurred_at as date) as occurred_date,
    events.url,
    -- NULL in an incremental run: the event is gone from staging, the strategy removes it
    events.delivered_dt
{% if is_incremental() %}
from changed_events
left join events
    on events.event_id = changed_events.event_id
{% else %}
from events
{% endif %}
left join {{ identity_map_of('email', 'contact_id') }} as email_identities
    on email_identities.contact_id = events.contact_id
