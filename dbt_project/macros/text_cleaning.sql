{#- Free text from sources: surrounding spaces dropped, empty becomes NULL. -#}
{% macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{#- Emails compare case-insensitively and arrive with stray spaces. -#}
{% macro clean_email(column) -%}
    nullif({{ lower_text('trim(' ~ column ~ ')') }}, '')
{%- endmacro %}

{#- lower() as DuckDB's: a letter at a time. Spark's (Java's) lowers a word-final capital
    sigma to 'ς' and a dotted capital I to 'i' plus a combining dot, where DuckDB gives
    'σ' and 'i'; both are mapped first, so an email or a free-text value lowers the same
    on both engines (ingestion's typing does the same: `_spark_meaning`,
    ingestion/column_typing.py; tests/ingestion/test_spark_reading.py checks both). -#}
{% macro lower_text(column) -%}
    {{ return(adapter.dispatch('lower_text', 'cdp')(column)) }}
{%- endmacro %}

{% macro default__lower_text(column) -%}lower({{ column }}){%- endmacro %}

{% macro spark__lower_text(column) -%}
    lower(replace(replace({{ column }}, 'İ', 'i'), 'Σ', 'σ'))
{%- endmacro %}

{% macro clean_code(column) -%}
    nullif(upper(trim({{ column }})), '')
{%- endmacro %}
