{#- The mappings int_web__events_stitched stitches web events with, as the last
    int_web__events_sessionised build used them: the next incremental run compares them
    with today's to find the events whose customer may have moved without any of their
    visitor's events changing (an identity merge or split, a new billing user_id).

      - dbt_incremental.web_stitching_user_customers: int_web__user_customers (userId ->
        customer);
      - dbt_incremental.web_stitching_identities: the identity engine's web mappings
        (anonymousId or userId -> customer).

    Written by the sessionised model's post-hook in its own transaction, so they always
    describe what its rows were stitched with. Run state, outside the built schemas; on
    Spark (where the model is a table rebuilt whole) there are none. -#}

{% macro web_stitching_identities() -%}
    (select source_record_id, customer_id from {{ ref('stg_identity__customer_map') }} where source_system = 'web')
{%- endmacro %}

{% macro web_stitching_snapshot_relation(name) -%}
    {%- if not execute or target.type == 'spark' -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(adapter.get_relation(database=this.database, schema='dbt_incremental', identifier='web_stitching_' ~ name)) }}
{%- endmacro %}

{#- The keys whose mapping differs between the snapshot and `current`: added, removed or
    mapped to another customer. -#}
{% macro web_stitching_changes(name, key, current) -%}
    select coalesce(today.{{ key }}, stitched_with.{{ key }}) as {{ key }}
    from {{ current }} as today
    full outer join dbt_incremental.web_stitching_{{ name }} as stitched_with
        on stitched_with.{{ key }} = today.{{ key }}
    where today.{{ key }} is null
        or stitched_with.{{ key }} is null
        or {{ values_differ('today.customer_id', 'stitched_with.customer_id') }}
{%- endmacro %}

{% macro snapshot_web_stitching_inputs() -%}
    {%- if target.type != 'spark' -%}
    create schema if not exists dbt_incremental;
    create or replace table dbt_incremental.web_stitching_user_customers as
    select user_id, customer_id from {{ ref('int_web__user_customers') }};
    create or replace table dbt_incremental.web_stitching_identities as
    select source_record_id, customer_id from {{ web_stitching_identities() }} as identities
    {%- endif -%}
{%- endmacro %}
