-- Revenue in the marts equals paid-minus-refunded of the paid invoices in staging, to the
-- cent: in fct_invoices, and in customer_360 plus the invoices of customers the identity
-- engine does not know. Returns a row (= failure) for every figure that differs.
with staging_revenue as (

    select
        cast(coalesce(sum(coalesce(amount_paid_cents, 0) - coalesce(amount_refunded_cents, 0)), 0) as {{ dbt.type_bigint() }}) as cents
    from {{ ref('stg_billing__invoices') }}
    where status = 'paid'

),

invoice_revenue as (

    select cast(coalesce(sum(net_revenue_cents), 0) as {{ dbt.type_bigint() }}) as cents
    from {{ ref('fct_invoices') }}

),

unattributed_revenue as (

    select cast(coalesce(sum(net_revenue_cents), 0) as {{ dbt.type_bigint() }}) as cents
    from {{ ref('fct_invoices') }}
    where customer_id is null

),

customer_revenue as (

    select cast(coalesce(sum(lifetime_revenue_cents), 0) as {{ dbt.type_bigint() }}) as cents
    from {{ ref('customer_360') }}

),

comparisons as (

    select 'fct_invoices' as mart, invoice_revenue.cents as mart_cents, staging_revenue.cents as staging_cents
    from invoice_revenue cross join staging_revenue

    union all

    select 'customer_360 + unattributed invoices' as mart,
        customer_revenue.cents + unattributed_revenue.cents as mart_cents,
        staging_revenue.cents as staging_cents
    from customer_revenue cross join unattributed_revenue cross join staging_revenue

)

select * from comparisons where mart_cents <> staging_cents
