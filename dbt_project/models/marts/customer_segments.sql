-- One row per golden customer: RFM scores and segment, lifecycle stage, churn risk and
-- whether marketing may email them, all as of int_as_of_date.
--   lifecycle_stage: churned / at-risk / active customer for those who have paid
--   (an invoice, or a subscription that had MRR) -- a customer who canceled and bought
--   nothing since is churned at once, others after `churned_after_days` without a purchase
--   (at-risk after `at_risk_after_days`, or at once on a past_due/unpaid subscription); lead (a billing account, a web sign-up or
--   identified web activity, but no payment) and subscriber (known only from the email
--   audience) for the rest.
with customers as (

    select customer_id from {{ ref('dim_customers') }}

),

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

facts as (

    select
        customers.customer_id,
        rfm.recency_days,
        rfm.frequency,
        rfm.monetary_usd_cents,
        rfm.recency_score,
        rfm.frequency_score,
        rfm.monetary_score,
        rfm.rfm_score,
        rfm.rfm_segment,
        billing.customer_id is not null as has_billing_invoices,
        coalesce(billing.n_paid_invoices, 0) > 0 as has_paid_invoice,
        billing.last_purchase_at,
        {{ dbt.datediff('billing.last_purchase_at', 'as_of.as_of_date', 'day') }} as days_since_last_purchase,
        subscriptions.last_subscription_canceled_at,
        subscriptions.customer_id is not null as has_subscription,
        coalesce(subscriptions.current_mrr_usd_cents, 0) > 0 as has_paying_subscription,
        coalesce(subscriptions.has_ever_paid_subscription, false) as has_ever_paid_subscription,
        coalesce(subscriptions.has_payment_problem, false) as has_payment_problem,
        billing_accounts.customer_id is not null as has_billing_account,
        web.customer_id is not null as has_web_activity,
        coalesce(web.has_signed_up, false) as has_signed_up,
        coalesce(email.is_email_marketable, false) as is_email_marketable,
        predictions.churn_probability
    from customers
    cross join as_of
    left join {{ ref('int_customer__rfm_scores') }} as rfm
        on rfm.customer_id = customers.customer_id
    left join {{ ref('int_customer__billing_metrics') }} as billing
        on billing.customer_id = customers.customer_id
    left join {{ ref('int_customer__subscription_metrics') }} as subscriptions
        on subscriptions.customer_id = customers.customer_id
    left join {{ ref('int_customer__web_metrics') }} as web
        on web.customer_id = customers.customer_id
    left join {{ ref('int_customer__email_metrics') }} as email
        on email.customer_id = customers.customer_id
    left join {{ ref('stg_predictions__customer_scores') }} as predictions
        on predictions.customer_id = customers.customer_id
    left join (
        select distinct customer_id
        from {{ ref('stg_identity__customer_map') }}
        where source_system = 'billing'
    ) as billing_accounts
        on billing_accounts.customer_id = customers.customer_id

),

staged as (

    select
        facts.*,
        case
            when not (has_paid_invoice or has_ever_paid_subscription) then
                case
                    when has_billing_account or has_web_activity or has_signed_up then 'lead'
                    else 'subscriber'
                end
            -- stopped paying for their subscription and bought nothing since
            when not has_paying_subscription
                and has_ever_paid_subscription
                and (
                    last_subscription_canceled_at is null
                    or last_purchase_at is null
                    or last_purchase_at <= last_subscription_canceled_at
                )
                then 'churned'
            -- no subscription and no purchase for churned_after_days
            when not has_paying_subscription
                and (
                    days_since_last_purchase is null
                    or days_since_last_purchase > {{ var('churned_after_days') }}
                )
                then 'churned'
            when has_payment_problem
                or (not has_paying_subscription and days_since_last_purchase > {{ var('at_risk_after_days') }})
                then 'at-risk'
            else 'active customer'
        end as lifecycle_stage
    from facts

)

select
    customer_id,
    cast(recency_days as {{ dbt.type_bigint() }}) as recency_days,
    cast(frequency as {{ dbt.type_bigint() }}) as frequency,
    cast(monetary_usd_cents as {{ dbt.type_bigint() }}) as monetary_usd_cents,
    cast(recency_score as {{ dbt.type_int() }}) as recency_score,
    cast(frequency_score as {{ dbt.type_int() }}) as frequency_score,
    cast(monetary_score as {{ dbt.type_int() }}) as monetary_score,
    rfm_score,
    coalesce(rfm_segment, 'No Purchases') as rfm_segment,
    lifecycle_stage,
    -- The churn model's probability where there is one (paying subscribers), with the
    -- thresholds of vars churn_probability_high / _medium; else the lifecycle rule.
    case
        when lifecycle_stage = 'churned' then 'churned'
        when lifecycle_stage not in ('active customer', 'at-risk') then 'not a customer'
        when churn_probability >= {{ var('churn_probability_high') }} then 'high'
        when churn_probability >= {{ var('churn_probability_medium') }} then 'medium'
        when churn_probability is not null then 'low'
        when lifecycle_stage = 'at-risk' then 'high'
        when recency_score <= 2 then 'medium'
        else 'low'
    end as churn_risk,
    is_email_marketable,
    has_paying_subscription,
    (select as_of_date from as_of) as as_of_date
from staged
