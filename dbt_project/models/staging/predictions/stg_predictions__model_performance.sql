{{ config(materialized='view') }}
-- depends_on: {{ source('predictions', 'model_performance') }}
-- Every training run's backtest rows (appended by the Python training asset); an empty
-- relation of the same shape before the first training. A column the table does not have
-- yet (written by an older version, before the lift columns) reads as NULL.
{%- set performance = adapter.get_relation(
    database=target.database, schema='predictions', identifier='model_performance'
) if execute else none %}
{%- set columns = [
    ('model_name', dbt.type_string()), ('model_version', dbt.type_string()),
    ('trained_at', dbt.type_timestamp()), ('scoring_date', 'date'),
    ('status', dbt.type_string()), ('reason', dbt.type_string()),
    ('production_status', dbt.type_string()), ('horizon_days', dbt.type_int()),
    ('train_window_start', 'date'), ('train_window_end', 'date'), ('test_date', 'date'),
    ('production_train_rows_from', 'date'),
    ('train_rows', dbt.type_bigint()), ('train_positives', dbt.type_bigint()),
    ('test_rows', dbt.type_bigint()), ('test_positives', dbt.type_bigint()),
    ('auc', type_double()), ('precision_at_top_decile', type_double()),
    ('brier', type_double()), ('rmse_usd_cents', type_double()),
    ('mae_usd_cents', type_double()),
    ('hit_rate_at_1', type_double()), ('baseline_name', dbt.type_string()),
    ('baseline_auc', type_double()), ('baseline_precision_at_top_decile', type_double()),
    ('baseline_brier', type_double()), ('baseline_rmse_usd_cents', type_double()),
    ('baseline_mae_usd_cents', type_double()),
    ('baseline_hit_rate_at_1', type_double()), ('lift', type_double()),
    ('lift_ci_low', type_double()), ('lift_ci_high', type_double()),
    ('worse_than_baseline', dbt.type_boolean()),
] %}

{%- set present = adapter.get_columns_in_relation(performance) | map(attribute='name') | map('lower') | list
    if performance is not none else [] %}

select
{%- for name, data_type in columns %}
    cast({{ name if name in present else 'null' }} as {{ data_type }}) as {{ name }}{{ ',' if not loop.last }}
{%- endfor %}
{% if performance is not none %}
from {{ source('predictions', 'model_performance') }}
{% else %}
where 1 = 0
{% endif %}
