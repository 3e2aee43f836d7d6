{#- dbt's default safe_cast is a plain CAST, which fails the whole model on one bad value
    (e.g. a web event whose properties.revenue is "n/a"). DuckDB has TRY_CAST; dbt's
    dispatch finds this override in the root project. -#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}
