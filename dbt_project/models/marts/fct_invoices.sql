-- One row per invoice (latest version), with its golden customer and the revenue it counts
-- for, in the invoice's own currency and in US dollars (static demo rates, see seeds/).
select
    invoice_id,
    billing_customer_id,
    customer_id,
    subscription_id,
    status,
    currency,
    product,
    amount_due_cents,
    amount_paid_cents,
    amount_refunded_cents,
    cast(net_revenue_cents as {{ dbt.type_bigint() }}) as net_revenue_cents,
    cast(fx_usd_per_unit as {{ type_double() }}) as fx_usd_per_unit,
    net_revenue_usd_cents,
    is_paid,
    created_at,
    updated_at,
    paid_at,
    purchased_at,
    cast({{ dbt.date_trunc('month', 'purchased_at') }} as date) as revenue_month
from {{ ref('int_billing__invoices') }}
