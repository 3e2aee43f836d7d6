{#- What the project needs to build on Spark (CDP_ENGINE=spark, docs/spark.md). The other
    engine-specific spellings sit next to their DuckDB ones (safe_cast.sql, types.sql,
    json_extract_text.sql). -#}

{#- Spark reads the tables the Python steps wrote (raw.*, identity.*, predictions.*) from
    the Parquet folders warehouse_engine/parquet_handoff.py writes under
    $CDP_SPARK_WAREHOUSE/handoff/<schema>/<table>/. Every run re-registers every declared
    source as an external table over its folder: dropping an external table keeps its
    files, and re-creating it picks up a changed schema. A source without a folder fails
    here, naming the folder. On DuckDB this does nothing.
    Within `CDP_ENGINE=spark cdp run`, a step may run before some Python step has written
    its tables (the first run's source tests come before identity exists): the run sets
    CDP_SPARK_HANDOFF_TABLES to the `schema.table` folders present, and only those are
    registered (a model reading another fails on its missing table, naming it).
    CDP_SPARK_SOURCE_LOCATIONS (JSON, `schema.table` -> path) names the sources Spark reads
    from somewhere else: in that run, `raw.*` from the days Spark loaded itself
    (`<spark warehouse>/raw/<table>/dt=*/rows`, a glob; ingestion/spark_days.py). -#}
{% macro register_handoff_tables() -%}
    {%- if execute and target.type == 'spark' -%}
        {%- set handoff_root = env_var('CDP_SPARK_WAREHOUSE', '../data/spark_warehouse') ~ '/handoff' -%}
        {%- set present = env_var('CDP_SPARK_HANDOFF_TABLES', '') -%}
        {%- set only = present.split(',') if present else none -%}
        {%- set locations = fromjson(env_var('CDP_SPARK_SOURCE_LOCATIONS', '{}')) -%}
        {%- set schemas = [] -%}
        {%- for source in graph.sources.values() | sort(attribute='unique_id')
            if only is none or (source.schema ~ '.' ~ source.identifier) in only -%}
            {%- if source.schema not in schemas -%}
                {%- do schemas.append(source.schema) -%}
                {%- do run_query('create database if not exists ' ~ source.schema) -%}
            {%- endif -%}
            {%- set folder = locations.get(source.schema ~ '.' ~ source.identifier)
                or handoff_root ~ '/' ~ source.schema ~ '/' ~ source.identifier -%}
            {%- do run_query('drop table if exists ' ~ source.schema ~ '.' ~ source.identifier) -%}
            {%- do run_query("create table " ~ source.schema ~ "." ~ source.identifier ~ " using parquet location '" ~ folder ~ "'") -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- The incremental models (six staging models, int_web__events_sessionised and
    fct_web_sessions) delete and re-insert the keys a redelivery or an identity change touches
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

{#- dbt's date arithmetic with DuckDB's meaning. dbt-spark's own dateadd goes through
    to_timestamp(unix seconds), which yields NULL for the TIMESTAMP_NTZ type the profile
    uses for naive timestamps (a cohort month came out NULL); timestampadd keeps the type
    and clips to the month's end as DuckDB's `+ interval` does. -#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart | upper }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro %}

{#- DuckDB's date_diff counts the boundaries crossed (31 Jan -> 1 Feb is one month, 23:59:59
    -> 00:00:00 one day); dbt-spark's rounds elapsed time instead (ceil for seconds). These
    count boundaries, for the dateparts the models use. -#}
{% macro spark__datediff(first_date, second_date, datepart) -%}
    {%- if datepart == 'day' -%}
        datediff(cast({{ second_date }} as date), cast({{ first_date }} as date))
    {%- elif datepart == 'month' -%}
        ((year({{ second_date }}) * 12 + month({{ second_date }})) - (year({{ first_date }}) * 12 + month({{ first_date }})))
    {%- elif datepart == 'quarter' -%}
        ((year({{ second_date }}) * 4 + quarter({{ second_date }})) - (year({{ first_date }}) * 4 + quarter({{ first_date }})))
    {%- elif datepart == 'year' -%}
        (year({{ second_date }}) - year({{ first_date }}))
    {%- elif datepart in ('hour', 'minute', 'second') -%}
        {%- set seconds = {'hour': 3600, 'minute': 60, 'second': 1}[datepart] -%}
        (floor(to_unix_timestamp({{ second_date }}) / {{ seconds }}) - floor(to_unix_timestamp({{ first_date }}) / {{ seconds }}))
    {%- else -%}
        {{ exceptions.raise_compiler_error("datediff by " ~ datepart ~ " is not written for Spark yet (macros/spark_engine.sql)") }}
    {%- endif -%}
{%- endmacro %}
