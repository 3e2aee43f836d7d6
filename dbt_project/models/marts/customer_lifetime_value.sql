-- One row per golden customer: historical lifetime value (net revenue to date) and a
-- deliberately simple predicted 12-month subscription revenue, both in US cents (invoices
-- and subscriptions of any currency, at the static rates of seeds/fx_rates_to_usd.csv).
--
-- Prediction method (a documented heuristic, not a fitted model): current MRR x the
-- expected number of the next 12 months the subscription survives, using ONE pooled
-- monthly logo churn rate c observed in the data (paying customers at the end of a month
-- who pay nothing at the end of the next):  predicted = MRR * sum_{k=1..12} (1 - c)^k.
-- Limits: every customer gets the same churn rate (no per-customer model such as BG/NBD
-- or Pareto/NBD, which is out of scope); one-off purchases are not predicted (0 for
-- customers without MRR); expansion and contraction are not projected.
with customers as (

    select customer_id from {{ ref('dim_customers') }}

),

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

monthly_mrr as (

    select customer_id, month_start, mrr_usd_cents, next_month_mrr_usd_cents
    from {{ ref('int_billing__customer_mrr_monthly') }}

),

churn_rate as (

    select
        coalesce(
            {{ safe_divide(
                'sum(case when next_month_mrr_usd_cents = 0 then 1 else 0 end)',
                'sum(case when next_month_mrr_usd_cents is not null then 1 else 0 end)'
            ) }},
            0
        ) as monthly_churn_rate
    from monthly_mrr
    where mrr_usd_cents > 0

)

select
    customers.customer_id,
    billing.first_purchase_at,
    billing.last_purchase_at,
    cast({{ dbt.datediff('billing.first_purchase_at', 'as_of.as_of_date', 'day') }} as {{ dbt.type_bigint() }}) as tenure_days,
    cast(coalesce(billing.n_paid_invoices, 0) as {{ dbt.type_bigint() }}) as n_paid_invoices,
    cast(coalesce(billing.lifetime_revenue_usd_cents, 0) as {{ dbt.type_bigint() }}) as historical_clv_usd_cents,
    {{ safe_divide('billing.lifetime_revenue_usd_cents', 'billing.n_paid_invoices') }} as average_order_value_usd_cents,
    cast(coalesce(subscriptions.current_mrr_usd_cents, 0) as {{ dbt.type_bigint() }}) as current_mrr_usd_cents,
    cast(churn_rate.monthly_churn_rate as {{ type_double() }}) as monthly_churn_rate,
    cast(
        case
            when churn_rate.monthly_churn_rate = 0 then 12
            else (1 - churn_rate.monthly_churn_rate)
                * (1 - power(1 - churn_rate.monthly_churn_rate, 12))
                / churn_rate.monthly_churn_rate
        end
    as {{ type_double() }}) as expected_paying_months_next_12,
    cast(round(
        coalesce(subscriptions.current_mrr_usd_cents, 0)
        * case
            when churn_rate.monthly_churn_rate = 0 then 12
            else (1 - churn_rate.monthly_churn_rate)
                * (1 - power(1 - churn_rate.monthly_churn_rate, 12))
                / churn_rate.monthly_churn_rate
        end
    , 0) as {{ dbt.type_bigint() }}) as predicted_12m_revenue_usd_cents,
    cast('current MRR x expected paying months over the next 12 at one pooled monthly churn rate' as {{ dbt.type_string() }}) as prediction_method,
    as_of.as_of_date
from customers
cross join as_of
cross join churn_rate
left join {{ ref('int_customer__billing_metrics') }} as billing
    on billing.customer_id = customers.customer_id
left join {{ ref('int_customer__subscription_metrics') }} as subscriptions
    on subscriptions.customer_id = customers.customer_id
