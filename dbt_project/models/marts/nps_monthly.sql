-- NPS per calendar month of submission, across all surveys, over responses deduplicated by
-- response_id (matched to a customer or not), with a trailing three-month NPS that smooths
-- small monthly samples. Months without a response have no row.
with monthly as (

    select
        submitted_month,
        {{ nps_counts() }}
    from {{ ref('int_surveys__responses') }}
    group by submitted_month

),

trailing_3m as (

    select
        monthly.submitted_month,
        sum(earlier.responses) as responses_3m,
        sum(earlier.promoters) as promoters_3m,
        sum(earlier.detractors) as detractors_3m
    from monthly
    inner join monthly as earlier
        on earlier.submitted_month <= monthly.submitted_month
        and earlier.submitted_month > cast({{ dbt.dateadd('month', -3, 'monthly.submitted_month') }} as date)
    group by monthly.submitted_month

)

select
    monthly.submitted_month,
    monthly.responses,
    monthly.promoters,
    monthly.passives,
    monthly.detractors,
    cast({{ nps_score() }} as {{ type_double() }}) as nps,
    cast(trailing_3m.responses_3m as {{ dbt.type_bigint() }}) as responses_trailing_3m,
    cast({{ nps_score('trailing_3m.promoters_3m', 'trailing_3m.detractors_3m', 'trailing_3m.responses_3m') }} as {{ type_double() }}) as nps_trailing_3m
from monthly
inner join trailing_3m
    on trailing_3m.submitted_month = monthly.submitted_month
