-- One row per email event (deduplicated), with the golden customer of its contact.
select
    events.event_id,
    events.contact_id,
    email_identities.customer_id,
    events.campaign_id,
    events.campaign_name,
    events.event_type,
    events.occurred_at,
    cast(events.occurred_at as date) as occurred_date,
    events.url,
    events.delivered_dt
from {{ ref('stg_email__events') }} as events
left join {{ ref('stg_identity__customer_map') }} as email_identities
    on email_identities.source_system = 'email'
    and email_identities.source_record_id = events.contact_id
