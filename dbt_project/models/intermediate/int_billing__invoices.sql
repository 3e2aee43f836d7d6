{{
    config(
        materialized=delivery_incremental_materialization(),
        unique_key='invoice_id',
        incremental_strategy='replace_keys',
        removed_when_null='status',
        on_schema_change='fail',
        record_replaced_keys_in='fct_invoices_to_regroup',
        pre_hook="{{ open_replaced_keys_record('fct_invoices_to_regroup', 'invoice_id') }}",
        post_hook=[
            "{{ close_replaced_keys_record('invoices_to_rejoin', 'invoice_id') }}",
            "{{ snapshot_invoices_inputs() }}",
        ]
    )
}}
-- Invoices with the golden customer of their billing customer and the revenue they count
-- for: net revenue = amount paid minus amount refunded, for paid invoices only (open,
-- draft, void and uncollectible invoices bring no revenue). An invoice whose billing
-- customer the identity engine does not know keeps customer_id NULL but still counts.
-- Amounts stay in the invoice's currency; the *_usd_cents columns convert them with the
-- static rates of seeds/fx_rates_to_usd.csv, for totals across currencies.
-- Incremental per invoice (macros/billing_invoices.sql): an invoice's row is a function of
-- its stg_billing__invoices row, its currency's rate and its billing customer's golden
-- customer. A run re-joins the invoices stg_billing__invoices replaced since this model
-- last ran (the record `keys_to_regroup` reads) and the held invoices of billing customers
-- remapped (an identity merge, split or new match) or of currencies whose rate changed
-- since (today's mapping and rates against the ones the last run joined with), and swaps
-- them (`replace_keys` on invoice_id; an invoice gone returns a NULL status, which removes
-- it). It records the invoices it replaced for fct_invoices. On Spark: a table rebuilt whole.
{%- set snapshot = run_state_relation('invoices_fx_rates') if is_incremental() else none %}
with
{% if is_incremental() %}
changed_invoices as (

    {{ keys_to_regroup('invoices_to_rejoin', 'invoice_id', ref('stg_billing__invoices')) }}
    union
    select invoice_id
    from {{ this }}
    {% if snapshot is not none %}
    where billing_customer_id in (
        {{ remapped_billing_customers() }}
    )
        or currency in (
            {{ changed_fx_currencies() }}
        )
    {% endif %}

),
{% endif %}

invoices as (

    select * from {{ ref('stg_billing__invoices') }}
    {% if is_incremental() %}
    where invoice_id in (select invoice_id from changed_invoices)
    {% endif %}

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

    select source_record_id, customer_id from {{ identity_map_of('billing') }} as identities

)

select
    {% if is_incremental() %}changed_invoices.invoice_id{% else %}invoices.invoice_id{% endif %},
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
{% if is_incremental() %}
from changed_invoices
-- NULL status: the invoice is gone from staging, the strategy removes it
left join net_revenue as invoices
    on invoices.invoice_id = changed_invoices.invoice_id
{% else %}
from net_revenue as invoices
{% endif %}
left join fx_rates
    on fx_rates.currency = invoices.currency
left join billing_identities
    on billing_identities.source_record_id = invoices.customer_id
