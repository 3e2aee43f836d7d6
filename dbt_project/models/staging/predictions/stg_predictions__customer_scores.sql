{{ config(materialized='view') }}
-- depends_on: {{ source('predictions', 'customer_scores') }}
-- The Python scoring asset replaces predictions.customer_scores on every run; before the
-- first one the table does not exist and this view is an empty relation of the same shape,
-- so the marts build (with NULL predictions) on a warehouse that has never been scored.
{%- set scores = adapter.get_relation(
    database=target.database, schema='predictions', identifier='customer_scores'
) if execute else none %}
{%- set columns = [
    ('customer_id', dbt.type_string()),
    ('churn_probability', type_double()),
    ('predicted_clv_12m_usd_cents', dbt.type_bigint()),
    ('predicted_subscription_12m_usd_cents', dbt.type_bigint()),
    ('predicted_one_off_12m_usd_cents', dbt.type_bigint()),
    ('lead_score', type_double()),
    ('next_best_product', dbt.type_string()),
    ('next_best_product_score', type_double()),
    ('churn_probability_percentile', dbt.type_int()),
    ('predicted_clv_12m_percentile', dbt.type_int()),
    ('lead_score_percentile', dbt.type_int()),
    ('next_best_product_score_percentile', dbt.type_int()),
    ('clv_method', dbt.type_string()),
    ('model_version', dbt.type_string()),
    ('scoring_date', 'date'),
    ('scored_at', dbt.type_timestamp()),
] %}

select
{%- for name, data_type in columns %}
    cast({{ name if scores is not none else 'null' }} as {{ data_type }}) as {{ name }}{{ ',' if not loop.last }}
{%- endfor %}
{%- if scores is not none %}
from {{ source('predictions', 'customer_scores') }}
{%- else %}
where 1 = 0
{%- endif %}
