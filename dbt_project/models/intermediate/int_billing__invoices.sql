-- Invoices with the golden customer of their billing customer and the revenue they count
-- for: net revenue = amount paid minus amount refunded, for paid invoices only (open,
-- draft, void and uncollectible invoices bring no revenue). An invoice whose billing
-- customer the identity engine does not know keeps customer_id NULL but still counts.
-- Amounts stay in the invoice's currency; the *_usd_cents columns convert them with the
-- static rates of seeds/fx_rates_to_usd.csv, for totals across currencies.
with invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

fx_rates as (

    select * from {{ ref('fx_rates_to_usd') }}

),

net_revenue as (

    select
        invoices.*,
        case
            when invoices.status = 'paid'
                then coalesce(invoices.amount_paid_cents, 0) - coalesce(invoices.amount_refunded_cents, 0)
            else 0
        end as net_revenue_cents,
        case when invoices.status = 'paid' then coalesce(invoices.amount_paid_cents, 0) else 0 end as gross_paid_cents,
        case when invoices.status = 'paid' then coalesce(invoices.amount_refunded_cents, 0) else 0 end as refunded_cents
    from invoices

),

billing_identities as (

    select source_record_id, customer_id
    from {{ ref('stg_identity__customer_map') }}
    where source_system = 'billing'

)

select
    invoices.invoice_id,
    invoices.customer_id as billing_customer_id,
    billing_identities.customer_id,
    invoices.subscription_id,
    invoices.status,
    invoices.currency,
    invoices.product,
    invoices.amount_due_cents,
    invoices.amount_paid_cents,
    invoices.amount_refunded_cents,
    invoices.status = 'paid' as is_paid,
    invoices.net_revenue_cents,
    fx_rates.usd_per_unit as fx_usd_per_unit,
    {{ to_usd_cents('invoices.net_revenue_cents') }} as net_revenue_usd_cents,
    {{ to_usd_cents('invoices.gross_paid_cents') }} as gross_paid_usd_cents,
    {{ to_usd_cents('invoices.refunded_cents') }} as refunded_usd_cents,
    invoices.created_at,
    invoices.updated_at,
    invoices.paid_at,
    -- when the revenue was earned: payment time, else (paid without a paid_at) the last update
    case when invoices.status = 'paid' then coalesce(invoices.paid_at, invoices.updated_at) end as purchased_at
from net_revenue as invoices
left join fx_rates
    on fx_rates.currency = invoices.currency
left join billing_identities
    on billing_identities.source_record_id = invoices.customer_id
