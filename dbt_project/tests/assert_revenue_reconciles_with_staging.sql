{{ config(meta={'dagster': {'ref': {'name': 'fct_invoices'}}}) }}
-- Revenue in the marts reconciles to the cent with the paid invoices in staging
-- (paid minus refunded):
--   * per currency, fct_invoices.net_revenue_cents against staging (amounts of different
--     currencies are never added together);
--   * in US cents, customer_360 plus the invoices of customers the identity engine does not
--     know against fct_invoices.net_revenue_usd_cents (the per-invoice conversion every
--     cross-currency total is built from).
-- Returns a row (= failure) for every figure that differs.
with staging_revenue as (

    select
        currency,
        sum(coalesce(amount_paid_cents, 0) - coalesce(amount_refunded_cents, 0)) as cents
    from {{ ref('stg_billing__invoices') }}
    where status = 'paid'
    group by currency

),

invoice_revenue as (

    select currency, sum(net_revenue_cents) as cents
    from {{ ref('fct_invoices') }}
    group by currency

),

per_currency as (

    select
        {{ dbt.concat(["'fct_invoices, '", "coalesce(invoice_revenue.currency, staging_revenue.currency)"]) }} as figure,
        cast(coalesce(invoice_revenue.cents, 0) as {{ dbt.type_bigint() }}) as mart_cents,
        cast(coalesce(staging_revenue.cents, 0) as {{ dbt.type_bigint() }}) as expected_cents
    from invoice_revenue
    full outer join staging_revenue
        on staging_revenue.currency = invoice_revenue.currency

),

invoice_usd as (

    select
        cast(coalesce(sum(net_revenue_usd_cents), 0) as {{ dbt.type_bigint() }}) as all_cents,
        cast(coalesce(sum(case when customer_id is null then net_revenue_usd_cents end), 0) as {{ dbt.type_bigint() }}) as unattributed_cents
    from {{ ref('fct_invoices') }}

),

customer_usd as (

    select cast(coalesce(sum(lifetime_revenue_usd_cents), 0) as {{ dbt.type_bigint() }}) as cents
    from {{ ref('customer_360') }}

),

comparisons as (

    select figure, mart_cents, expected_cents from per_currency

    union all

    select
        'customer_360 + unattributed invoices, usd' as figure,
        customer_usd.cents + invoice_usd.unattributed_cents as mart_cents,
        invoice_usd.all_cents as expected_cents
    from customer_usd
    cross join invoice_usd

)

select * from comparisons where mart_cents <> expected_cents
