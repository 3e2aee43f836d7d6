{%- set consent_columns = ['n_email_contacts', 'is_email_subscribed', 'is_email_marketable'] -%}
{{
    config(
        materialized=delivery_incremental_materialization(),
        unique_key='customer_id',
        incremental_strategy='replace_keys',
        removed_when_null='n_email_contacts',
        on_schema_change='fail',
        post_hook="{{ close_replaced_keys_record('email_metrics_customers_to_regroup', 'customer_id') }}"
    )
}}
-- Email consent and engagement per golden customer (customers with an ESP contact).
-- Opens and clicks count campaigns, not events: three opens of one newsletter are one.
-- Engagement groups fct_email_events (an event's customer is its contact's, as joined there).
-- Incremental per golden customer: a customer's row is a function of the consent of their
-- contacts (int_email__contact_status, one row per contact) and of their rows in
-- fct_email_events. A run re-aggregates the customers whose events fct_email_events
-- replaced since this model last ran (the customers of the rows it deleted and inserted:
-- the record `keys_to_regroup` reads, macros/email_events.sql) and those whose consent,
-- computed for every customer from the contacts alone (no event read), differs from the
-- row held, is new or is gone; it swaps their rows (`replace_keys` on customer_id; a
-- customer gone returns one row with a NULL n_email_contacts, which removes it).
-- On Spark it is a table rebuilt whole.
with email_identities as (

    select contact_id, customer_id from {{ identity_map_of('email', 'contact_id') }} as identities

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
{% if is_incremental() %}
changed_customers as (

    {{ keys_to_regroup('email_metrics_customers_to_regroup', 'customer_id', ref('fct_email_events')) }}
    union
    select coalesce(today.customer_id, held.customer_id) as customer_id
    from consent as today
    full outer join {{ this }} as held
        on held.customer_id = today.customer_id
    where today.customer_id is null
        or held.customer_id is null
        {%- for column in consent_columns %}
        or {{ values_differ('today.' ~ column, 'held.' ~ column) }}
        {%- endfor %}

),
{% endif %}

engagement as (

    select
        customer_id,
        cast(count(distinct case when event_type = 'delivered' then campaign_id end) as {{ dbt.type_bigint() }}) as campaigns_delivered,
        cast(count(distinct case when event_type = 'open' then campaign_id end) as {{ dbt.type_bigint() }}) as campaigns_opened,
        cast(count(distinct case when event_type = 'click' then campaign_id end) as {{ dbt.type_bigint() }}) as campaigns_clicked,
        cast(sum(case when event_type = 'bounce' then 1 else 0 end) as {{ dbt.type_bigint() }}) as n_bounces,
        cast(sum(case when event_type = 'unsubscribe' then 1 else 0 end) as {{ dbt.type_bigint() }}) as n_unsubscribes,
        cast(sum(case when event_type = 'spam_complaint' then 1 else 0 end) as {{ dbt.type_bigint() }}) as n_spam_complaints,
        max(case when event_type = 'open' then occurred_at end) as last_email_open_at,
        max(case when event_type = 'click' then occurred_at end) as last_email_click_at
    from {{ ref('fct_email_events') }}
    where customer_id is not null
    {% if is_incremental() %}
        and customer_id in (select customer_id from changed_customers)
    {% endif %}
    group by customer_id

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
{% if is_incremental() %}
where consent.customer_id in (select customer_id from changed_customers)
union all
-- a customer with no ESP contact left (merged away, split off, erased): one NULL row
-- removes theirs
select
    customer_id,
    null as n_email_contacts,
    null as is_email_subscribed,
    null as is_email_marketable,
    null as campaigns_delivered,
    null as campaigns_opened,
    null as campaigns_clicked,
    null as n_bounces,
    null as n_unsubscribes,
    null as n_spam_complaints,
    null as last_email_open_at,
    null as last_email_click_at
from changed_customers
where customer_id is not null
    and customer_id not in (select customer_id from consent)
{% endif %}
