-- Subscription state per golden customer (customers with at least one subscription):
-- MRR in the as-of month (US cents at static rates), and the most engaged current status across their subscriptions.
with subscriptions as (

    select
        identity_map.customer_id,
        subscriptions.status,
        subscriptions.started_at,
        subscriptions.canceled_at,
        case subscriptions.status
            when 'active' then 1
            when 'past_due' then 2
            when 'trialing' then 3
            when 'unpaid' then 4
            when 'canceled' then 5
            else 6
        end as status_priority
    from {{ ref('stg_billing__subscriptions') }} as subscriptions
    inner join {{ ref('stg_identity__customer_map') }} as identity_map
        on identity_map.source_system = 'billing'
        and identity_map.source_record_id = subscriptions.customer_id

),

per_customer as (

    select
        customer_id,
        min(status_priority) as best_status_priority,
        cast(count(*) as {{ dbt.type_bigint() }}) as n_subscriptions,
        min(started_at) as first_subscription_started_at,
        max(canceled_at) as last_subscription_canceled_at,
        max(case when status in ('past_due', 'unpaid') then 1 else 0 end) as has_payment_problem
    from subscriptions
    group by customer_id

),

current_month_mrr as (

    select mrr.customer_id, mrr.mrr_usd_cents, mrr.n_paying_subscriptions
    from {{ ref('int_billing__customer_mrr_monthly') }} as mrr
    inner join {{ ref('int_as_of_date') }} as as_of
        on mrr.month_start = cast({{ dbt.date_trunc('month', 'as_of.as_of_date') }} as date)

),

ever_paying as (

    select customer_id, max(mrr_usd_cents) as peak_mrr_usd_cents
    from {{ ref('int_billing__customer_mrr_monthly') }}
    group by customer_id

)

select
    per_customer.customer_id,
    case per_customer.best_status_priority
        when 1 then 'active'
        when 2 then 'past_due'
        when 3 then 'trialing'
        when 4 then 'unpaid'
        when 5 then 'canceled'
        else 'unknown'
    end as subscription_status,
    per_customer.n_subscriptions,
    cast(coalesce(current_month_mrr.mrr_usd_cents, 0) as {{ dbt.type_bigint() }}) as current_mrr_usd_cents,
    cast(coalesce(current_month_mrr.n_paying_subscriptions, 0) as {{ dbt.type_bigint() }}) as n_paying_subscriptions,
    coalesce(ever_paying.peak_mrr_usd_cents, 0) > 0 as has_ever_paid_subscription,
    per_customer.has_payment_problem = 1 as has_payment_problem,
    per_customer.first_subscription_started_at,
    per_customer.last_subscription_canceled_at
from per_customer
left join current_month_mrr
    on current_month_mrr.customer_id = per_customer.customer_id
left join ever_paying
    on ever_paying.customer_id = per_customer.customer_id
