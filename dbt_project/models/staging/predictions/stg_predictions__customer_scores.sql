{{ config(materialized='view') }}
-- depends_on: {{ source('predictions', 'customer_scores') }}
-- The Python scoring asset replaces predictions.customer_scores on every run; before the
-- first one the table does not exist and this view is an empty relation of the same shape,
-- so the marts build (with NULL predictions) on a warehouse that has never been scored.
{%- set scores = adapter.get_relation(
    database=target.database, schema='predictions', identifier='customer_scores'
) if execute else none %}

{% if scores is not none %}

select
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(churn_probability as {{ type_double() }}) as churn_probability,
    cast(predicted_clv_12m_usd_cents as {{ dbt.type_bigint() }}) as predicted_clv_12m_usd_cents,
    cast(predicted_subscription_12m_usd_cents as {{ dbt.type_bigint() }}) as predicted_subscription_12m_usd_cents,
    cast(predicted_one_off_12m_usd_cents as {{ dbt.type_bigint() }}) as predicted_one_off_12m_usd_cents,
    cast(lead_score as {{ type_double() }}) as lead_score,
    cast(next_best_product as {{ dbt.type_string() }}) as next_best_product,
    cast(next_best_product_score as {{ type_double() }}) as next_best_product_score,
    cast(churn_probability_percentile as {{ dbt.type_int() }}) as churn_probability_percentile,
    cast(predicted_clv_12m_percentile as {{ dbt.type_int() }}) as predicted_clv_12m_percentile,
    cast(lead_score_percentile as {{ dbt.type_int() }}) as lead_score_percentile,
    cast(next_best_product_score_percentile as {{ dbt.type_int() }}) as next_best_product_score_percentile,
    cast(clv_method as {{ dbt.type_string() }}) as clv_method,
    cast(model_version as {{ dbt.type_string() }}) as model_version,
    cast(scoring_date as date) as scoring_date,
    cast(scored_at as {{ dbt.type_timestamp() }}) as scored_at
from {{ source('predictions', 'customer_scores') }}

{% else %}

select
    cast(null as {{ dbt.type_string() }}) as customer_id,
    cast(null as {{ type_double() }}) as churn_probability,
    cast(null as {{ dbt.type_bigint() }}) as predicted_clv_12m_usd_cents,
    cast(null as {{ dbt.type_bigint() }}) as predicted_subscription_12m_usd_cents,
    cast(null as {{ dbt.type_bigint() }}) as predicted_one_off_12m_usd_cents,
    cast(null as {{ type_double() }}) as lead_score,
    cast(null as {{ dbt.type_string() }}) as next_best_product,
    cast(null as {{ type_double() }}) as next_best_product_score,
    cast(null as {{ dbt.type_int() }}) as churn_probability_percentile,
    cast(null as {{ dbt.type_int() }}) as predicted_clv_12m_percentile,
    cast(null as {{ dbt.type_int() }}) as lead_score_percentile,
    cast(null as {{ dbt.type_int() }}) as next_best_product_score_percentile,
    cast(null as {{ dbt.type_string() }}) as clv_method,
    cast(null as {{ dbt.type_string() }}) as model_version,
    cast(null as date) as scoring_date,
    cast(null as {{ dbt.type_timestamp() }}) as scored_at
where 1 = 0

{% endif %}
