{{ config(meta={'dagster': {'ref': {'name': 'fct_invoices'}}}) }}
-- Revenue in the marts reconciles to the cent with the paid invoices in staging
-- (paid minus refunded). The project's one revenue reconciliation (the GX marts suite
-- keeps only checks dbt cannot express as its own tests):
--   * per billing customer and currency, fct_invoices' invoice count and net_revenue_cents
--     against staging (a full outer join also catches invoices on one side only; amounts of
--     different currencies are never added together), so a failure names the customers;
--   * in US cents, customer_360 plus the invoices of customers the identity engine does not
--     know against fct_invoices.net_revenue_usd_cents (the per-invoice conversion every
--     cross-currency total is built from).
-- Returns a row (= failure) for every figure that differs.
with staging_revenue as (

    select
        customer_id as billing_customer_id,
        currency,
        count(*) as invoices,
        sum(
            case when status = 'paid'
                then coalesce(amount_paid_cents, 0) - coalesce(amount_refunded_cents, 0)
                else 0
            end
        ) as cents
    from {{ ref('stg_billing__invoices') }}
    group by customer_id, currency

),

invoice_revenue as (

    select billing_customer_id, currency, count(*) as invoices, sum(net_revenue_cents) as cents
    from {{ ref('fct_invoices') }}
    group by billing_customer_id, currency

),

per_customer_and_currency as (

    select
        {{ dbt.concat([
            "'fct_invoices, '",
            "coalesce(invoice_revenue.billing_customer_id, staging_revenue.billing_customer_id)",
            "', '",
            "coalesce(invoice_revenue.currency, staging_revenue.currency)",
        ]) }} as figure,
        cast(coalesce(invoice_revenue.cents, 0) as {{ dbt.type_bigint() }}) as mart_cents,
        cast(coalesce(staging_revenue.cents, 0) as {{ dbt.type_bigint() }}) as expected_cents,
        cast(coalesce(invoice_revenue.invoices, 0) as {{ dbt.type_bigint() }}) as mart_invoices,
        cast(coalesce(staging_revenue.invoices, 0) as {{ dbt.type_bigint() }}) as expected_invoices
    from invoice_revenue
    full outer join staging_revenue
        on staging_revenue.billing_customer_id = invoice_revenue.billing_customer_id
        and staging_revenue.currency = invoice_revenue.currency

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

    select figure, mart_cents, expected_cents, mart_invoices, expected_invoices
    from per_customer_and_currency

    union all

    select
        'customer_360 + unattributed invoices, usd' as figure,
        customer_usd.cents + invoice_usd.unattributed_cents as mart_cents,
        invoice_usd.all_cents as expected_cents,
        cast(0 as {{ dbt.type_bigint() }}) as mart_invoices,
        cast(0 as {{ dbt.type_bigint() }}) as expected_invoices
    from customer_usd
    cross join invoice_usd

)

select * from comparisons
where mart_cents <> expected_cents or mart_invoices <> expected_invoices
