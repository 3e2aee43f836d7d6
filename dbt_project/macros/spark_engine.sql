{#- What the project needs to build on Spark (CDP_ENGINE=spark, docs/spark.md). The other
    engine-specific spellings sit next to their DuckDB ones (safe_cast.sql, types.sql,
    json_extract_text.sql). -#}

{#- Spark reads the tables the Python steps wrote (raw.*, identity.*, predictions.*) from
    the Parquet folders warehouse_engine/parquet_handoff.py writes under
    $CDP_SPARK_WAREHOUSE/handoff/<schema>/<table>/. Every run re-registers every declared
    source as an external table over its folder: dropping an external table keeps its
    files, and re-creating it picks up a changed schema. A source without a folder fails
    here, naming the folder. On DuckDB this does nothing. -#}
{% macro register_handoff_tables() -%}
    {%- if execute and target.type == 'spark' -%}
        {%- set handoff_root = env_var('CDP_SPARK_WAREHOUSE', '../data/spark_warehouse') ~ '/handoff' -%}
        {%- set schemas = [] -%}
        {%- for source in graph.sources.values() | sort(attribute='unique_id') -%}
            {%- if source.schema not in schemas -%}
                {%- do schemas.append(source.schema) -%}
                {%- do run_query('create database if not exists ' ~ source.schema) -%}
            {%- endif -%}
            {%- set folder = handoff_root ~ '/' ~ source.schema ~ '/' ~ source.identifier -%}
            {%- do run_query('drop table if exists ' ~ source.schema ~ '.' ~ source.identifier) -%}
            {%- do run_query("create table " ~ source.schema ~ "." ~ source.identifier ~ " using parquet location '" ~ folder ~ "'") -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- The two incremental event models delete and re-insert the keys a redelivery touches
    (incremental_strategy='replace_keys', incremental_delivery.sql). Spark's Parquet tables
    cannot delete rows, and dbt-spark accepts no custom strategy, so on Spark they are
    rebuilt whole (the result a full rebuild gives, which the incremental run equals). -#}
{% macro delivery_incremental_materialization() -%}
    {{- 'table' if target.type == 'spark' else 'incremental' -}}
{%- endmacro %}

{#- A Parquet table on Spark cannot hold a NOT NULL constraint (dbt-spark sets them on Delta
    tables only), so on Spark the contract's not_null constraints are checked here, right
    after the build: a NULL fails the model, as DuckDB's constraint does. The column
    names and types of the contract are checked by dbt before the build on both engines. -#}
{% macro spark__persist_constraints(relation, model) -%}
    {%- set contract_config = config.get('contract') -%}
    {%- if contract_config and contract_config.enforced -%}
        {%- set not_null_columns = [] -%}
        {%- for name, column in model.columns.items() -%}
            {%- for constraint in column.constraints if constraint.type == 'not_null' -%}
                {%- do not_null_columns.append(name) -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- if not_null_columns -%}
            {%- set counts -%}
                select
                {%- for name in not_null_columns %}
                    sum(case when {{ adapter.quote(name) }} is null then 1 else 0 end) as {{ adapter.quote(name) }}{{ ',' if not loop.last }}
                {%- endfor %}
                from {{ relation }}
            {%- endset -%}
            {%- set row = run_query(counts).rows[0] -%}
            {%- for name in not_null_columns -%}
                {%- if row[loop.index0] is not none and row[loop.index0] > 0 -%}
                    {{ exceptions.raise_compiler_error(
                        'Contract of ' ~ relation ~ ': ' ~ row[loop.index0] ~ ' rows have NULL in the not_null column '
                        ~ name ~ ' (checked after the build on Spark, whose Parquet tables cannot hold the constraint)') }}
                {%- endif -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
