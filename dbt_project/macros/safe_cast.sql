{#- dbt's default safe_cast is a plain CAST, which fails the whole model on one bad value
    (e.g. a web event whose properties.revenue is "n/a"). DuckDB and Spark have TRY_CAST
    (Spark's CAST fails under its default ANSI mode); dbt's dispatch finds these overrides
    in the root project. -#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}

{% macro spark__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}
