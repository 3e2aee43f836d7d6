-- MRR of every golden customer at the end of every month, from the month of their first
-- subscription to the as-of month (whose "end" is the as-of date). A subscription counts
-- with its mrr_cents while active or past_due; trialing, unpaid and canceled count 0.
-- MRR is in US cents at the static rates of seeds/fx_rates_to_usd.csv (constant currency:
-- a customer's MRR never moves with exchange rates).
-- Built from the subscription versions, so a mid-month upgrade shows at that month's end.
-- Each row also carries the MRR of the month before and after and the peak before it, in
-- one window pass: fct_mrr_movements and customer_lifetime_value read those instead of
-- each sorting these (customers x months) rows again.
with versions as (

    -- MRR converted once per version, before the versions fan out to months
    select
        versions.subscription_id,
        versions.customer_id,
        versions.status,
        versions.started_at,
        versions.canceled_at,
        versions.valid_from,
        versions.valid_to,
        {{ to_usd_cents('coalesce(versions.mrr_cents, 0)') }} as mrr_usd_cents
    from {{ ref('stg_billing__subscription_versions') }} as versions
    left join {{ ref('fx_rates_to_usd') }} as fx_rates
        on fx_rates.currency = versions.currency

),

billing_identities as (

    select source_record_id, customer_id
    from {{ ref('stg_identity__customer_map') }}
    where source_system = 'billing'

),

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

month_offsets as (

    {{ dbt.generate_series(600) }}

),

subscriptions as (

    select
        subscription_id,
        customer_id as billing_customer_id,
        cast({{ dbt.date_trunc('month', 'min(started_at)') }} as date) as first_month
    from versions
    group by subscription_id, customer_id

),

subscription_month_counts as (

    select
        subscriptions.*,
        {{ dbt.datediff('subscriptions.first_month', 'as_of.as_of_date', 'month') }} + 1 as n_months
    from subscriptions
    cross join as_of

),

subscription_months as (

    select
        subscription_month_counts.subscription_id,
        subscription_month_counts.billing_customer_id,
        cast({{ dbt.dateadd('month', 'month_offsets.generated_number - 1', 'subscription_month_counts.first_month') }} as date) as month_start
    from subscription_month_counts
    inner join month_offsets
        on month_offsets.generated_number <= subscription_month_counts.n_months

),

snapshot_points as (

    -- the instant whose state the month reports: the start of the next month, or the end of
    -- the as-of date for the current month (exclusive upper bounds)
    select
        subscription_months.*,
        case
            when {{ dbt.dateadd('month', 1, 'subscription_months.month_start') }} > as_of.as_of_date
                then {{ dbt.dateadd('day', 1, 'as_of.as_of_date') }}
            else {{ dbt.dateadd('month', 1, 'subscription_months.month_start') }}
        end as snapshot_at
    from subscription_months
    cross join as_of

),

subscription_mrr as (

    select
        snapshot_points.billing_customer_id,
        snapshot_points.month_start,
        snapshot_points.subscription_id,
        case
            when versions.status in ('active', 'past_due')
                and (versions.canceled_at is null or versions.canceled_at >= snapshot_points.snapshot_at)
                then versions.mrr_usd_cents
            else 0
        end as mrr_usd_cents
    from snapshot_points
    left join versions
        on versions.subscription_id = snapshot_points.subscription_id
        and versions.valid_from < snapshot_points.snapshot_at
        and (versions.valid_to is null or versions.valid_to >= snapshot_points.snapshot_at)

),

customer_months as (

    select
        billing_identities.customer_id,
        subscription_mrr.month_start,
        sum(subscription_mrr.mrr_usd_cents) as mrr_usd_cents,
        sum(case when subscription_mrr.mrr_usd_cents > 0 then 1 else 0 end) as n_paying_subscriptions
    from subscription_mrr
    inner join billing_identities
        on billing_identities.source_record_id = subscription_mrr.billing_customer_id
    group by billing_identities.customer_id, subscription_mrr.month_start

)

select
    customer_id,
    month_start,
    cast(mrr_usd_cents as {{ dbt.type_bigint() }}) as mrr_usd_cents,
    cast(n_paying_subscriptions as {{ dbt.type_bigint() }}) as n_paying_subscriptions,
    cast(lag(mrr_usd_cents) over (partition by customer_id order by month_start) as {{ dbt.type_bigint() }}) as previous_month_mrr_usd_cents,
    cast(lead(mrr_usd_cents) over (partition by customer_id order by month_start) as {{ dbt.type_bigint() }}) as next_month_mrr_usd_cents,
    cast(max(mrr_usd_cents) over (
        partition by customer_id
        order by month_start
        rows between unbounded preceding and 1 preceding
    ) as {{ dbt.type_bigint() }}) as peak_mrr_before_usd_cents
from customer_months
