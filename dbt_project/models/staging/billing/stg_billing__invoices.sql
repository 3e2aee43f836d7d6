-- One row per invoice: invoices are re-sent when their status changes, so the latest
-- version wins (updated_at, then later delivery). Rebuilt in full on every run: a re-sent
-- invoice can change any older invoice, and latest-wins over all versions is cheap.
with source as (

    select * from {{ source('billing', 'invoices') }}

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
        row_number() over (
            partition by invoice_id
            order by updated_at desc, _dt desc, _source_file desc, _line_number desc
        ) as version_rank
    from source

)

select
    invoice_id,
    customer_id,
    subscription_id,
    status,
    currency,
    amount_due_cents,
    amount_paid_cents,
    amount_refunded_cents,
    product,
    created_at,
    updated_at,
    paid_at
from versions
where version_rank = 1
