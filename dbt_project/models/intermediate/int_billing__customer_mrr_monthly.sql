{{
    config(
        materialized=delivery_incremental_materialization(),
        unique_key='customer_id',
        incremental_strategy='replace_keys',
        removed_when_null='month_start',
        on_schema_change='fail',
        post_hook="{{ snapshot_mrr_monthly_inputs() }}"
    )
}}
-- depends_on: {{ ref('stg_billing__subscription_versions') }}, {{ ref('fx_rates_to_usd') }}, {{ ref('stg_identity__customer_map') }}, {{ ref('int_as_of_date') }}
-- MRR of every golden customer at the end of every month, from the month of their first
-- subscription to the as-of month (whose "end" is the as-of date). A subscription counts
-- with its mrr_cents while active or past_due; trialing, unpaid and canceled count 0.
-- MRR is in US cents at the static rates of seeds/fx_rates_to_usd.csv (constant currency:
-- a customer's MRR never moves with exchange rates).
-- Built from the subscription versions, so a mid-month upgrade shows at that month's end.
-- Each row also carries the MRR of the month before and after and the peak before it, in
-- one window pass: fct_mrr_movements and customer_lifetime_value read those instead of
-- each sorting these (customers x months) rows again.
-- Incremental per golden customer: a customer's rows are a function of the versions of
-- their billing customers' subscriptions (with their MRR in US cents), which billing
-- customers map to them, and the as-of date. A run recomputes every customer for whom one
-- of those differs from what the last build used (its post-hook keeps them,
-- macros/mrr_monthly.sql): a version added, gone or changed; a billing customer mapped to
-- or away from them; and, when the as-of date moved within its month (only the as-of
-- month's row moves, and only where a version starts, ends or is canceled between the two
-- dates), the customers with such a version. An as-of date in another month, or no
-- snapshot, recomputes everyone. `replace_keys` on customer_id swaps all of a found
-- customer's rows (a customer with no row left returns one with a NULL month_start, which
-- removes it).
{%- set snapshot = run_state_relation('mrr_monthly_as_of') if is_incremental() else none %}
with all_versions as (

    -- MRR converted once per version, before the versions fan out to months
    select * from {{ mrr_subscription_versions() }} as versions

),

billing_identities as (

    select source_record_id, customer_id from {{ identity_map_of('billing') }} as identities

),

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),
{% if is_incremental() %}
{% if snapshot is not none %}
held_as_of as (

    select as_of_date from dbt_incremental.mrr_monthly_as_of

),

rebuild_everyone as (

    -- no as-of date held, or one in another month: every row can move
    select 1 as flag
    from as_of
    left join held_as_of
        on {{ dbt.date_trunc('month', 'held_as_of.as_of_date') }} = {{ dbt.date_trunc('month', 'as_of.as_of_date') }}
    where held_as_of.as_of_date is null

),

as_of_window as (

    -- the as-of month's row reports the state at the end of the as-of date: a version
    -- starting, ending or canceled between the held and today's date can change it
    select
        least(held_as_of.as_of_date, as_of.as_of_date) as window_start,
        {{ dbt.dateadd('day', 2, 'greatest(held_as_of.as_of_date, as_of.as_of_date)') }} as window_end
    from as_of
    cross join held_as_of
    where held_as_of.as_of_date <> as_of.as_of_date

),

changed_versions as (

    {{ mrr_changed_billing_customers('all_versions') }}

),

changed_billing_customers as (

    select today_billing_customer_id as billing_customer_id from changed_versions where today_billing_customer_id is not null
    union
    select held_billing_customer_id as billing_customer_id from changed_versions where held_billing_customer_id is not null
    union
    select all_versions.customer_id as billing_customer_id
    from all_versions
    cross join as_of_window
    where (all_versions.valid_from >= as_of_window.window_start and all_versions.valid_from < as_of_window.window_end)
        or (all_versions.valid_to >= as_of_window.window_start and all_versions.valid_to < as_of_window.window_end)
        or (all_versions.canceled_at >= as_of_window.window_start and all_versions.canceled_at < as_of_window.window_end)

),

remapped_records as (

    select today.customer_id as today_customer_id, held.customer_id as held_customer_id
    from billing_identities as today
    full outer join dbt_incremental.mrr_monthly_billing_identities as held
        on held.source_record_id = today.source_record_id
    where today.source_record_id is null
        or held.source_record_id is null
        or {{ values_differ('today.customer_id', 'held.customer_id') }}

),

changed_customers as (

    select billing_identities.customer_id
    from billing_identities
    inner join changed_billing_customers
        on changed_billing_customers.billing_customer_id = billing_identities.source_record_id
    union
    select held.customer_id
    from dbt_incremental.mrr_monthly_billing_identities as held
    inner join changed_billing_customers
        on changed_billing_customers.billing_customer_id = held.source_record_id
    union
    select today_customer_id as customer_id from remapped_records where today_customer_id is not null
    union
    select held_customer_id as customer_id from remapped_records where held_customer_id is not null
    union
    select customer_id from billing_identities where exists (select 1 from rebuild_everyone)
    union
    select customer_id from {{ this }} where exists (select 1 from rebuild_everyone)

),
{% else %}
changed_customers as (

    -- a table built before the snapshots: recompute everyone once
    select customer_id from billing_identities
    union
    select customer_id from {{ this }}

),
{% endif %}
{% endif %}

versions as (

    select * from all_versions
    {% if is_incremental() %}
    where customer_id in (
        select source_record_id
        from billing_identities
        where customer_id in (select customer_id from changed_customers)
    )
    {% endif %}

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

),

computed as (

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

)

select * from computed
{% if is_incremental() %}
union all
-- a found customer with no row left: one NULL row removes their rows
select
    changed_customers.customer_id,
    cast(null as date) as month_start,
    cast(null as {{ dbt.type_bigint() }}) as mrr_usd_cents,
    cast(null as {{ dbt.type_bigint() }}) as n_paying_subscriptions,
    cast(null as {{ dbt.type_bigint() }}) as previous_month_mrr_usd_cents,
    cast(null as {{ dbt.type_bigint() }}) as next_month_mrr_usd_cents,
    cast(null as {{ dbt.type_bigint() }}) as peak_mrr_before_usd_cents
from changed_customers
where changed_customers.customer_id not in (select customer_id from computed)
{% endif %}
