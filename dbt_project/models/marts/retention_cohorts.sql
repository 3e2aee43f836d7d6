-- Monthly purchase cohorts: customers grouped by the month of their first paid invoice,
-- and for every month since (up to the as-of month) how many of them paid again and what
-- they paid (US cents, static rates). Month 0 is the cohort month itself (retention 1.0).
with purchases as (

    select
        customer_id,
        cast({{ dbt.date_trunc('month', 'purchased_at') }} as date) as activity_month,
        net_revenue_usd_cents
    from {{ ref('int_billing__invoices') }}
    where is_paid and customer_id is not null

),

cohorts as (

    select customer_id, min(activity_month) as cohort_month
    from purchases
    group by customer_id

),

cohort_sizes as (

    select cohort_month, count(*) as cohort_customers
    from cohorts
    group by cohort_month

),

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

month_offsets as (

    {{ dbt.generate_series(600) }}

),

cohort_months as (

    select
        cohort_sizes.cohort_month,
        cohort_sizes.cohort_customers,
        month_offsets.generated_number - 1 as months_since_first_purchase,
        cast({{ dbt.dateadd('month', 'month_offsets.generated_number - 1', 'cohort_sizes.cohort_month') }} as date) as activity_month
    from cohort_sizes
    cross join as_of
    inner join month_offsets
        on month_offsets.generated_number - 1
            <= {{ dbt.datediff('cohort_sizes.cohort_month', 'as_of.as_of_date', 'month') }}

),

activity as (

    select
        cohorts.cohort_month,
        purchases.activity_month,
        count(distinct purchases.customer_id) as active_customers,
        sum(purchases.net_revenue_usd_cents) as revenue_usd_cents
    from purchases
    inner join cohorts
        on cohorts.customer_id = purchases.customer_id
    group by cohorts.cohort_month, purchases.activity_month

)

select
    cohort_months.cohort_month,
    cohort_months.activity_month,
    cast(cohort_months.months_since_first_purchase as {{ dbt.type_bigint() }}) as months_since_first_purchase,
    cast(cohort_months.cohort_customers as {{ dbt.type_bigint() }}) as cohort_customers,
    cast(coalesce(activity.active_customers, 0) as {{ dbt.type_bigint() }}) as active_customers,
    {{ safe_divide('coalesce(activity.active_customers, 0)', 'cohort_months.cohort_customers') }} as retention_rate,
    cast(coalesce(activity.revenue_usd_cents, 0) as {{ dbt.type_bigint() }}) as revenue_usd_cents
from cohort_months
left join activity
    on activity.cohort_month = cohort_months.cohort_month
    and activity.activity_month = cohort_months.activity_month
