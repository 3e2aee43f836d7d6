-- One row per NPS response: the first delivery of each response_id (at-least-once source),
-- with its NPS category. The comment is kept exactly as delivered.
with source as (

    select * from {{ source('surveys', 'responses') }}

),

deliveries as (

    select
        response_id,
        trim(survey_id) as survey_id,
        {{ clean_email('respondent_email') }} as respondent_email,
        score,
        comment,
        submitted_at,
        _dt as delivered_dt,
        row_number() over (
            partition by response_id
            order by _dt, _source_file, _line_number
        ) as delivery_rank
    from source

)

select
    response_id,
    survey_id,
    respondent_email,
    cast(score as {{ dbt.type_int() }}) as score,
    {{ nps_category('score') }} as nps_category,
    comment,
    submitted_at,
    delivered_dt
from deliveries
where delivery_rank = 1
