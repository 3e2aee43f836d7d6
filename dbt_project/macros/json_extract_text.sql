{#- The one place where SQL touches the JSON dialect of the engine: read a top-level key
    of a JSON column as text (NULL when absent). Add a <adapter>__json_extract_text to
    run the project on another warehouse. -#}
{% macro json_extract_text(json_column, key) -%}
    {{ return(adapter.dispatch('json_extract_text', 'cdp')(json_column, key)) }}
{%- endmacro %}

{% macro default__json_extract_text(json_column, key) -%}
    json_extract_path_text({{ json_column }}, '{{ key }}')
{%- endmacro %}

{% macro duckdb__json_extract_text(json_column, key) -%}
    json_extract_string({{ json_column }}, '$.{{ key }}')
{%- endmacro %}

{% macro spark__json_extract_text(json_column, key) -%}
    get_json_object({{ json_column }}, '$.{{ key }}')
{%- endmacro %}
