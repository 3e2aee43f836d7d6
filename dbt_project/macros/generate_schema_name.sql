{#- Use the custom schema literally (staging, intermediate, marts) instead of dbt's
    default "<target_schema>_<custom_schema>": the identity engine and BI tools read
    these schema names, and they must not change with the target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
