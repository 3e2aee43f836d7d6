{{
    config(
        materialized=delivery_incremental_materialization(),
        unique_key='response_id',
        incremental_strategy='replace_keys',
        removed_when_null='delivered_dt',
        on_schema_change='fail'
    )
}}
-- One row per NPS response: the first delivery of each response_id (at-least-once source),
-- with its NPS category. The comment is kept exactly as delivered.
with
{% if is_incremental() %}
affected_keys as (

    {{ keys_affected_by_redelivery(source('surveys', 'responses'), 'response_id') }}

),
{% endif %}

source as (

    select * from {{ source('surveys', 'responses') }}
    {% if is_incremental() %}
    where response_id in (select response_id from affected_keys)
    {% endif %}

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
        _loaded_at as loaded_at,
        row_number() over (
            partition by response_id
            order by _dt, _source_file, _line_number
        ) as delivery_rank
    from source

),

first_delivery as (

    select * from deliveries where delivery_rank = 1

)

select
    {% if is_incremental() %}affected_keys.response_id{% else %}first_delivery.response_id{% endif %},
    first_delivery.survey_id,
    first_delivery.respondent_email,
    cast(first_delivery.score as {{ dbt.type_int() }}) as score,
    {{ nps_category('first_delivery.score') }} as nps_category,
    first_delivery.comment,
    first_delivery.submitted_at,
    -- NULL in an incremental run: the response vanished from raw, the strategy removes it
    first_delivery.delivered_dt,
    first_delivery.loaded_at
{% if is_incremental() %}
from affected_keys
left join first_delivery
    on first_delivery.response_id = affected_keys.response_id
{% else %}
from first_delivery
{% endif %}
