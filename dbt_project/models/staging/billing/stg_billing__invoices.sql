{{
    config(
        materialized=delivery_incremental_materialization(),
        unique_key='invoice_id',
        incremental_strategy='replace_keys',
        removed_when_null='delivered_dt',
        on_schema_change='fail',
        record_replaced_keys_in='invoices_to_rejoin',
        pre_hook="{{ open_replaced_keys_record('invoices_to_rejoin', 'invoice_id') }}"
    )
}}
-- One row per invoice: invoices are re-sent when their status changes, so the latest
-- version wins (updated_at, then later delivery). Incremental
-- (macros/incremental_delivery.sql); it records the invoice ids it replaced for
-- int_billing__invoices (macros/billing_invoices.sql).
with
{% if is_incremental() %}
affected_keys as (

    {{ keys_affected_by_redelivery(source('billing', 'invoices'), 'invoice_id') }}

),
{% endif %}

source as (

    select * from {{ source('billing', 'invoices') }}
    {% if is_incremental() %}
    where invoice_id in (select invoice_id from affected_keys)
    {% endif %}

),

versions as (

    select
        invoice_id,
        customer_id,
        {{ clean_text('subscription_id') }} as subscription_id,
        lower(trim(status)) as status,
        lower(trim(currency)) as currency,
        amount_due_cents,
        amount_paid_cents,
        amount_refunded_cents,
        {{ clean_text('product') }} as product,
        created_at,
        updated_at,
        paid_at,
        _dt as delivered_dt,
        _loaded_at as loaded_at,
        row_number() over (
            partition by invoice_id
            order by updated_at desc, _dt desc, _source_file desc, _line_number desc
        ) as version_rank
    from source

),

latest as (

    select * from versions where version_rank = 1

)

select
    {% if is_incremental() %}affected_keys.invoice_id{% else %}latest.invoice_id{% endif %},
    latest.customer_id,
    latest.subscription_id,
    latest.status,
    latest.currency,
    latest.amount_due_cents,
    latest.amount_paid_cents,
    latest.amount_refunded_cents,
    latest.product,
    latest.created_at,
    latest.updated_at,
    latest.paid_at,
    -- the kept version's delivery; NULL in an incremental run when the invoice_id vanished
    -- from raw, which the strategy removes
    latest.delivered_dt,
    latest.loaded_at
{% if is_incremental() %}
from affected_keys
left join latest
    on latest.invoice_id = affected_keys.invoice_id
{% else %}
from latest
{% endif %}
