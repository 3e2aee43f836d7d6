-- The one date every mart treats as "today" (recency, churn, tenure, the current month).
-- Deterministic: the `as_of_date` var when set, else the latest event date in the data, so a
-- rebuild of the same data gives the same marts whatever day it runs. Events dated after
-- the day they were delivered (clock skew, bad data) cannot move it into the future.
{%- set as_of_date = var('as_of_date') %}

{% if as_of_date %}

select cast('{{ as_of_date }}' as date) as as_of_date

{% else %}

with latest_dates as (

    select
        max(cast(occurred_at as date)) as latest_event_date,
        cast(null as date) as latest_invoice_date
    from {{ ref('stg_web__events') }}
    where cast(occurred_at as date) <= delivered_dt

    union all

    select
        max(cast(occurred_at as date)) as latest_event_date,
        cast(null as date) as latest_invoice_date
    from {{ ref('stg_email__events') }}
    where cast(occurred_at as date) <= delivered_dt

    union all

    select
        cast(null as date) as latest_event_date,
        max(cast(updated_at as date)) as latest_invoice_date
    from {{ ref('stg_billing__invoices') }}

)

select
    cast(coalesce(max(latest_event_date), max(latest_invoice_date), current_date) as date) as as_of_date
from latest_dates

{% endif %}
