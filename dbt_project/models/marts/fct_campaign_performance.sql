-- One row per email campaign: reach and engagement counted in recipients (contacts), so a
-- contact opening three times is one unique open. Rates are over delivered recipients
-- (click-to-open over unique openers) and NULL when the denominator is zero.
with events as (

    select * from {{ ref('stg_email__events') }}
    where campaign_id is not null

),

per_campaign as (

    select
        campaign_id,
        max(campaign_name) as campaign_name,
        min(case when event_type = 'sent' then occurred_at end) as first_sent_at,
        max(occurred_at) as last_event_at,
        count(distinct case when event_type = 'sent' then contact_id end) as recipients_sent,
        count(distinct case when event_type = 'delivered' then contact_id end) as recipients_delivered,
        count(distinct case when event_type = 'bounce' then contact_id end) as recipients_bounced,
        count(distinct case when event_type = 'open' then contact_id end) as unique_opens,
        count(distinct case when event_type = 'click' then contact_id end) as unique_clicks,
        sum(case when event_type = 'open' then 1 else 0 end) as total_opens,
        sum(case when event_type = 'click' then 1 else 0 end) as total_clicks,
        count(distinct case when event_type = 'unsubscribe' then contact_id end) as unsubscribes,
        count(distinct case when event_type = 'spam_complaint' then contact_id end) as spam_complaints
    from events
    group by campaign_id

)

select
    campaign_id,
    campaign_name,
    first_sent_at,
    last_event_at,
    cast(recipients_sent as {{ dbt.type_bigint() }}) as recipients_sent,
    cast(recipients_delivered as {{ dbt.type_bigint() }}) as recipients_delivered,
    cast(recipients_bounced as {{ dbt.type_bigint() }}) as recipients_bounced,
    cast(unique_opens as {{ dbt.type_bigint() }}) as unique_opens,
    cast(unique_clicks as {{ dbt.type_bigint() }}) as unique_clicks,
    cast(total_opens as {{ dbt.type_bigint() }}) as total_opens,
    cast(total_clicks as {{ dbt.type_bigint() }}) as total_clicks,
    cast(unsubscribes as {{ dbt.type_bigint() }}) as unsubscribes,
    cast(spam_complaints as {{ dbt.type_bigint() }}) as spam_complaints,
    {{ safe_divide('recipients_delivered', 'recipients_sent') }} as delivery_rate,
    {{ safe_divide('recipients_bounced', 'recipients_sent') }} as bounce_rate,
    {{ safe_divide('unique_opens', 'recipients_delivered') }} as unique_open_rate,
    {{ safe_divide('unique_clicks', 'recipients_delivered') }} as unique_click_rate,
    {{ safe_divide('unique_clicks', 'unique_opens') }} as click_to_open_rate,
    {{ safe_divide('unsubscribes', 'recipients_delivered') }} as unsubscribe_rate,
    {{ safe_divide('spam_complaints', 'recipients_delivered') }} as spam_complaint_rate
from per_campaign
