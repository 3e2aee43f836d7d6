-- Golden customers' paid-for invoices as they stood at the end of day {as_of} (UTC):
-- the CTEs every point-in-time query of predictions/ starts from (the feature snapshot,
-- products owned, one-off transactions), so that "as of" means the same in each.
--
-- A row is used only when it was DELIVERED by then (`_dt <= as_of`) AND it HAPPENED by
-- then (its own timestamp < as_of + 1 day); an invoice is read as the version that was
-- latest at that moment. Money in US cents at the static rates of {fx_rates}.
-- CTEs only (no leading `with`): a query puts them after its own `with`.
params as (

    select
        cast('{as_of}' as date) as as_of_date,
        cast('{as_of}' as timestamp) + interval 1 day as cutoff

),

fx_rates as (

    select
        lower(trim(currency)) as currency,
        cast(usd_per_unit as double) * power(10, 2 - cast(minor_unit_decimals as integer)) as usd_cents_per_minor_unit
    from read_csv('{fx_rates}', header = true, auto_detect = true)

),

identity_map as (

    select source_system, source_record_id, customer_id from identity.customer_map

),

billing_accounts as (

    select source_record_id as billing_customer_id, customer_id
    from identity_map
    where source_system = 'billing'

),

-- Invoices as they stood at the cutoff: the latest version delivered and updated by then.
invoice_versions as (

    select * from {billing_invoices_by_t}

),

invoices as (

    select
        accounts.customer_id,
        versions.invoice_id,
        nullif(trim(versions.subscription_id), '') as subscription_id,
        versions.status,
        nullif(trim(versions.product), '') as product,
        versions.created_at,
        coalesce(versions.paid_at, versions.updated_at) as paid_at,
        (coalesce(versions.amount_paid_cents, 0) - coalesce(versions.amount_refunded_cents, 0))
            * coalesce(fx_rates.usd_cents_per_minor_unit, 0) as net_paid_usd_cents
    from invoice_versions as versions
    inner join billing_accounts as accounts
        on accounts.billing_customer_id = versions.customer_id
    left join fx_rates
        on fx_rates.currency = lower(trim(versions.currency))

)
