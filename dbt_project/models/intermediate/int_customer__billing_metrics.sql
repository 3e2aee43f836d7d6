-- Billing totals per golden customer (customers with at least one invoice). Money is summed
-- in US cents: a customer can pay in several currencies (static rates, seeds/fx_rates_to_usd.csv).
select
    customer_id,
    cast(sum(net_revenue_usd_cents) as {{ dbt.type_bigint() }}) as lifetime_revenue_usd_cents,
    cast(sum(gross_paid_usd_cents) as {{ dbt.type_bigint() }}) as gross_paid_usd_cents,
    cast(sum(refunded_usd_cents) as {{ dbt.type_bigint() }}) as refunded_usd_cents,
    cast(count(*) as {{ dbt.type_bigint() }}) as n_invoices,
    cast(sum(case when is_paid then 1 else 0 end) as {{ dbt.type_bigint() }}) as n_paid_invoices,
    min(purchased_at) as first_purchase_at,
    max(purchased_at) as last_purchase_at
from {{ ref('int_billing__invoices') }}
where customer_id is not null
group by customer_id
