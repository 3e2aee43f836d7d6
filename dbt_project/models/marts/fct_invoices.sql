{{
    config(
        materialized=delivery_incremental_materialization(),
        unique_key='invoice_id',
        incremental_strategy='replace_keys',
        removed_when_null='status',
        on_schema_change='fail',
        post_hook="{{ close_replaced_keys_record('fct_invoices_to_regroup', 'invoice_id') }}"
    )
}}
-- One row per invoice (latest version), with its golden customer and the revenue it counts
-- for, in the invoice's own currency and in US dollars (static demo rates, see seeds/).
-- Incremental per invoice, a projection of int_billing__invoices: a run re-reads only the
-- invoices that model replaced since this one last ran (the record `keys_to_regroup`
-- reads, macros/billing_invoices.sql) and swaps them (`replace_keys` on invoice_id; an
-- invoice gone returns a NULL status, which removes it). On Spark: a table rebuilt whole.
with
{% if is_incremental() %}
changed_invoices as (

    {{ keys_to_regroup('fct_invoices_to_regroup', 'invoice_id', ref('int_billing__invoices')) }}

),
{% endif %}

invoices as (

    select * from {{ ref('int_billing__invoices') }}
    {% if is_incremental() %}
    where invoice_id in (select invoice_id from changed_invoices)
    {% endif %}

)

select
    {% if is_incremental() %}changed_invoices.invoice_id{% else %}invoices.invoice_id{% endif %},
    invoices.billing_customer_id,
    invoices.customer_id,
    invoices.subscription_id,
    invoices.status,
    invoices.currency,
    invoices.product,
    invoices.amount_due_cents,
    invoices.amount_paid_cents,
    invoices.amount_refunded_cents,
    cast(invoices.net_revenue_cents as {{ dbt.type_bigint() }}) as net_revenue_cents,
    cast(invoices.fx_usd_per_unit as {{ type_double() }}) as fx_usd_per_unit,
    invoices.net_revenue_usd_cents,
    invoices.is_paid,
    invoices.created_at,
    invoices.updated_at,
    invoices.paid_at,
    invoices.purchased_at,
    cast({{ dbt.date_trunc('month', 'invoices.purchased_at') }} as date) as revenue_month
{% if is_incremental() %}
from changed_invoices
-- NULL status: the invoice is gone, the strategy removes it
left join invoices
    on invoices.invoice_id = changed_invoices.invoice_id
{% else %}
from invoices
{% endif %}
