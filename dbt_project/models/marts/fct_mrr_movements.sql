-- One row per golden customer per month in which their MRR changed, classified the way
-- SaaS finance does: new (first MRR ever), expansion, contraction, churned (to zero) and
-- reactivation (back from zero after having paid before). MRR is the month-end state
-- (the as-of date for the current month), in US cents at static rates, see
-- int_billing__customer_mrr_monthly.
with monthly as (

    select
        customer_id,
        month_start,
        mrr_usd_cents as mrr_cents,
        previous_month_mrr_usd_cents as previous_mrr_cents,
        peak_mrr_before_usd_cents as peak_mrr_before_cents
    from {{ ref('int_billing__customer_mrr_monthly') }}

),

classified as (

    select
        customer_id,
        month_start,
        coalesce(previous_mrr_cents, 0) as mrr_before_cents,
        mrr_cents as mrr_after_cents,
        case
            when coalesce(previous_mrr_cents, 0) = 0 and mrr_cents > 0
                then case when coalesce(peak_mrr_before_cents, 0) > 0 then 'reactivation' else 'new' end
            when previous_mrr_cents > 0 and mrr_cents = 0 then 'churned'
            when previous_mrr_cents > 0 and mrr_cents > previous_mrr_cents then 'expansion'
            when previous_mrr_cents > 0 and mrr_cents < previous_mrr_cents then 'contraction'
        end as movement_type
    from monthly

)

select
    customer_id,
    month_start,
    movement_type,
    cast(mrr_before_cents as {{ dbt.type_bigint() }}) as mrr_before_usd_cents,
    cast(mrr_after_cents as {{ dbt.type_bigint() }}) as mrr_after_usd_cents,
    cast(mrr_after_cents - mrr_before_cents as {{ dbt.type_bigint() }}) as mrr_change_usd_cents
from classified
where movement_type is not null
