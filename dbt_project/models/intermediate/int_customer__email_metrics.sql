-- Email consent and engagement per golden customer (customers with an ESP contact).
-- Opens and clicks count campaigns, not events: three opens of one newsletter are one.
with email_identities as (

    select source_record_id as contact_id, customer_id
    from {{ ref('stg_identity__customer_map') }}
    where source_system = 'email'

),

consent as (

    select
        email_identities.customer_id,
        cast(count(*) as {{ dbt.type_bigint() }}) as n_email_contacts,
        max(case when contact_status.is_subscribed then 1 else 0 end) = 1 as is_email_subscribed,
        max(case when contact_status.is_marketable then 1 else 0 end) = 1 as is_email_marketable
    from {{ ref('int_email__contact_status') }} as contact_status
    inner join email_identities
        on email_identities.contact_id = contact_status.contact_id
    group by email_identities.customer_id

),

engagement as (

    select
        email_identities.customer_id,
        cast(count(distinct case when events.event_type = 'delivered' then events.campaign_id end) as {{ dbt.type_bigint() }}) as campaigns_delivered,
        cast(count(distinct case when events.event_type = 'open' then events.campaign_id end) as {{ dbt.type_bigint() }}) as campaigns_opened,
        cast(count(distinct case when events.event_type = 'click' then events.campaign_id end) as {{ dbt.type_bigint() }}) as campaigns_clicked,
        cast(sum(case when events.event_type = 'bounce' then 1 else 0 end) as {{ dbt.type_bigint() }}) as n_bounces,
        cast(sum(case when events.event_type = 'unsubscribe' then 1 else 0 end) as {{ dbt.type_bigint() }}) as n_unsubscribes,
        cast(sum(case when events.event_type = 'spam_complaint' then 1 else 0 end) as {{ dbt.type_bigint() }}) as n_spam_complaints,
        max(case when events.event_type = 'open' then events.occurred_at end) as last_email_open_at,
        max(case when events.event_type = 'click' then events.occurred_at end) as last_email_click_at
    from {{ ref('stg_email__events') }} as events
    inner join email_identities
        on email_identities.contact_id = events.contact_id
    group by email_identities.customer_id

)

select
    consent.customer_id,
    consent.n_email_contacts,
    consent.is_email_subscribed,
    consent.is_email_marketable,
    coalesce(engagement.campaigns_delivered, 0) as campaigns_delivered,
    coalesce(engagement.campaigns_opened, 0) as campaigns_opened,
    coalesce(engagement.campaigns_clicked, 0) as campaigns_clicked,
    coalesce(engagement.n_bounces, 0) as n_bounces,
    coalesce(engagement.n_unsubscribes, 0) as n_unsubscribes,
    coalesce(engagement.n_spam_complaints, 0) as n_spam_complaints,
    engagement.last_email_open_at,
    engagement.last_email_click_at
from consent
left join engagement
    on engagement.customer_id = consent.customer_id
