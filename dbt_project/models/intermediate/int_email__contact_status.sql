-- Each ESP contact's deliverability and consent, from its latest state and its events.
-- Marketable: subscribed, has an email, never complained of spam, no unsubscribe after its
-- latest consent update, and not bouncing (no bounce since the last successful delivery).
with contacts as (

    select * from {{ ref('stg_email__contacts') }}

),

event_dates as (

    select
        contact_id,
        max(case when event_type = 'unsubscribe' then occurred_at end) as last_unsubscribed_at,
        max(case when event_type = 'spam_complaint' then occurred_at end) as last_spam_complaint_at,
        max(case when event_type = 'bounce' then occurred_at end) as last_bounced_at,
        max(case when event_type = 'delivered' then occurred_at end) as last_delivered_at
    from {{ ref('stg_email__events') }}
    group by contact_id

)

select
    contacts.contact_id,
    contacts.email,
    coalesce(contacts.is_subscribed, false) as is_subscribed,
    event_dates.last_unsubscribed_at,
    event_dates.last_spam_complaint_at,
    event_dates.last_bounced_at,
    event_dates.last_delivered_at,
    (
        coalesce(contacts.is_subscribed, false)
        and contacts.email is not null
        and event_dates.last_spam_complaint_at is null
        and (event_dates.last_unsubscribed_at is null or event_dates.last_unsubscribed_at < contacts.updated_at)
        and (
            event_dates.last_bounced_at is null
            or event_dates.last_delivered_at > event_dates.last_bounced_at
        )
    ) as is_marketable
from contacts
left join event_dates
    on event_dates.contact_id = contacts.contact_id
