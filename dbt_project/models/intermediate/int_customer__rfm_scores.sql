-- RFM scores 1-5 for every golden customer who has paid at least once, and the named
-- segment they fall in. Recency: days from the last purchase to the as-of date (fewer is
-- better); frequency: paid invoices; monetary: net revenue in US cents. Scores are quintiles of the
-- customer's rank (macros/quintile_score.sql: ties share a score, deterministic).
-- Segments: the standard recency x frequency grid.
with buyers as (

    select
        billing.customer_id,
        {{ dbt.datediff('billing.last_purchase_at', 'as_of.as_of_date', 'day') }} as recency_days,
        billing.n_paid_invoices as frequency,
        billing.lifetime_revenue_usd_cents as monetary_usd_cents
    from {{ ref('int_customer__billing_metrics') }} as billing
    cross join {{ ref('int_as_of_date') }} as as_of
    where billing.n_paid_invoices > 0

),

scored as (

    select
        customer_id,
        recency_days,
        frequency,
        monetary_usd_cents,
        {{ quintile_score('recency_days desc') }} as recency_score,
        {{ quintile_score('frequency') }} as frequency_score,
        {{ quintile_score('monetary_usd_cents') }} as monetary_score
    from buyers

)

select
    customer_id,
    cast(recency_days as {{ dbt.type_bigint() }}) as recency_days,
    frequency,
    monetary_usd_cents,
    recency_score,
    frequency_score,
    monetary_score,
    {{ dbt.concat([
        dbt.cast('recency_score', dbt.type_string()),
        dbt.cast('frequency_score', dbt.type_string()),
        dbt.cast('monetary_score', dbt.type_string())
    ]) }} as rfm_score,
    case
        when recency_score = 5 and frequency_score >= 4 then 'Champions'
        when recency_score >= 3 and frequency_score >= 4 then 'Loyal'
        when recency_score >= 4 and frequency_score between 2 and 3 then 'Potential Loyalist'
        when recency_score = 5 and frequency_score = 1 then 'New'
        when recency_score = 4 and frequency_score = 1 then 'Promising'
        when recency_score = 3 and frequency_score = 3 then 'Need Attention'
        when recency_score = 3 and frequency_score <= 2 then 'About to Sleep'
        when recency_score <= 2 and frequency_score = 5 then 'Cannot Lose Them'
        when recency_score <= 2 and frequency_score between 3 and 4 then 'At Risk'
        when recency_score = 1 and frequency_score = 1 then 'Lost'
        else 'Hibernating'
    end as rfm_segment
from scored
