{{ config(meta={'dagster': {'ref': {'name': 'fx_rates_to_usd'}}}) }}
-- Every currency billing uses has a rate in seeds/fx_rates_to_usd.csv; otherwise its
-- amounts would silently drop out of the US-dollar totals. Returns one row per missing
-- currency: add it to the seed.
with used as (

    select currency, 'stg_billing__invoices' as used_in from {{ ref('stg_billing__invoices') }}
    union
    select currency, 'stg_billing__subscriptions' as used_in from {{ ref('stg_billing__subscriptions') }}

)

select used.currency, used.used_in
from used
left join {{ ref('fx_rates_to_usd') }} as fx_rates
    on fx_rates.currency = used.currency
where fx_rates.currency is null
