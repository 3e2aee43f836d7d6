{#- Incremental event models that stay exact when a delivery partition is reloaded.

    Raw event tables hold every delivered row, one landing partition (_dt) at a time, and
    ingestion replaces a whole partition when a day is re-run: rows can appear, change or
    vanish in any partition, however old. A full rebuild keeps each event's first delivery
    (earliest _dt, then file, then line). An incremental run reaches the same result by
    rebuilding only the events a changed partition can affect:

      1. `reprocessed_delivery_partitions`: the partitions whose raw rows may differ from
         what the last build read -- those (re)loaded since (their _loaded_at is newer than
         any row the model holds), those the model holds rows of but raw has emptied, and
         the newest partition it holds (plus `delivery_lookback_days` before it, 0 by default);
      2. `keys_affected_by_redelivery`: every event id delivered in one of them now, or
         whose kept copy came from one of them (an event that vanished from a reloaded
         partition may survive in another one, or nowhere);
      3. the model recomputes first delivery for exactly those ids from ALL their raw rows,
         and returns an ids-only row (NULL delivery partition) for an id raw no longer has;
      4. the `replace_keys` strategy deletes every returned id from the table and inserts
         the rows that are not removals.

    Events outside step 2 have all their raw rows in partitions that did not change, so
    their kept row is still right: the result equals a full rebuild
    (tests/dbt/test_dbt_incremental.py proves it for late, re-sent, changed, vanished and
    emptied deliveries). -#}

{% macro reprocessed_delivery_partitions(source_relation, delivered_dt_column='delivered_dt', loaded_at_column='loaded_at') -%}
    select _dt as delivery_dt
    from {{ source_relation }}
    where _dt >= (
            select coalesce(
                {{ dbt.dateadd('day', -1 * var('delivery_lookback_days'), 'max(' ~ delivered_dt_column ~ ')') }},
                cast('1900-01-01' as date)
            )
            from {{ this }}
        )
        or _loaded_at > (
            select coalesce(max({{ loaded_at_column }}), cast('1900-01-01' as {{ dbt.type_timestamp() }}))
            from {{ this }}
        )
    union
    select {{ delivered_dt_column }} as delivery_dt
    from {{ this }}
    where {{ delivered_dt_column }} not in (select distinct _dt from {{ source_relation }})
{%- endmacro %}

{% macro keys_affected_by_redelivery(source_relation, unique_key, delivered_dt_column='delivered_dt', loaded_at_column='loaded_at') -%}
    with reprocessed as (

        {{ reprocessed_delivery_partitions(source_relation, delivered_dt_column, loaded_at_column) }}

    )

    select {{ unique_key }}
    from {{ source_relation }}
    where _dt in (select delivery_dt from reprocessed)
    union
    select {{ unique_key }}
    from {{ this }}
    where {{ delivered_dt_column }} in (select delivery_dt from reprocessed)
{%- endmacro %}

{#- Custom incremental strategy (config incremental_strategy='replace_keys'): delete every
    `unique_key` the model returned, then insert the returned rows except removals, i.e.
    rows whose `removed_when_null` column is NULL. dbt's delete+insert cannot remove a key
    the model no longer returns, which is what a partition reloaded with fewer rows needs.
    With `record_replaced_keys_in` it records the keys it replaced (below); with
    `record_replaced_column` too, it records that column's values instead, of the rows it
    deletes and of the rows it inserts (fct_email_events records the customers whose events
    it replaced, old and new, for the per-customer email metrics; NULLs are not recorded). -#}
{% macro get_incremental_replace_keys_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- set removal_marker = config.require('removed_when_null') -%}
    {%- set record = config.get('record_replaced_keys_in') -%}
    {%- set record_column = config.get('record_replaced_column') -%}
    {%- set columns_csv = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- if record and record_column %}
    insert into {{ replaced_keys_record(record) }} ({{ record_column }})
    select distinct {{ record_column }}
    from {{ target }}
    where {{ unique_key }} in (select {{ unique_key }} from {{ source }})
        and {{ record_column }} is not null;
    {% endif -%}
    delete from {{ target }}
    where {{ unique_key }} in (select {{ unique_key }} from {{ source }});

    insert into {{ target }} ({{ columns_csv }})
    select {{ columns_csv }}
    from {{ source }}
    where {{ removal_marker }} is not null
    {%- if record and record_column %};

    insert into {{ replaced_keys_record(record) }} ({{ record_column }})
    select distinct {{ record_column }}
    from {{ source }}
    where {{ removal_marker }} is not null
        and {{ record_column }} is not null
    {%- elif record %};

    insert into {{ replaced_keys_record(record) }} ({{ unique_key }})
    select distinct {{ unique_key }}
    from {{ source }}
    {%- endif %}
{%- endmacro %}

{#- A record of the keys an incremental model replaced, for a model downstream that groups
    that model's rows by the same key (fct_web_sessions groups int_web__events_sessionised
    by visitor_id): the downstream model re-groups only the recorded keys and clears the
    record in the same transaction as its own update. So the record holds exactly the keys
    replaced since the downstream model last ran, however many runs that spans (a run
    that stops between the two models leaves them for the next one).

      - the upstream model's pre-hook `open_replaced_keys_record` creates the record; when
        the model is built whole (first build, --full-refresh), or the record did not exist
        yet (a warehouse upgraded to it, whose earlier runs recorded nothing), it sets it to
        one NULL key, meaning every key;
      - its `replace_keys` run adds the keys it replaced (config `record_replaced_keys_in`);
      - the downstream model's incremental run reads `keys_to_regroup`, and its post-hook
        `close_replaced_keys_record` empties the record (also after a full build of it).

    The record is `dbt_incremental.<name>`, a table outside the dbt-built schemas (it is run
    state, not a model; an empty table after every complete run). Without a record (a
    warehouse built before it existed) the downstream model re-groups every key. On Spark
    both models are tables rebuilt whole and there is no record. -#}
{% macro replaced_keys_record(name) -%}
    dbt_incremental.{{ name }}
{%- endmacro %}

{#- The schema of the incremental models' run state (`dbt_incremental.*`: the replaced-keys
    records, the web stitching and monthly MRR snapshots), created by `on-run-start`, before
    any model runs. dbt runs two models at once; on a fresh warehouse two post-hooks
    creating it in concurrent transactions failed one model with DuckDB's "Catalog
    write-write conflict on create" (a retry of the whole step hid it). The models write
    their run state into it and create no schema themselves. -#}
{% macro create_run_state_schema() -%}
    {%- if target.type != 'spark' -%}
    create schema if not exists dbt_incremental
    {%- endif -%}
{%- endmacro %}

{#- The run-state table `dbt_incremental.<name>`, or none: when it does not exist yet (a
    warehouse built before it), at parse time, and on Spark (which keeps no run state). -#}
{% macro run_state_relation(name) -%}
    {%- if not execute or target.type == 'spark' -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(adapter.get_relation(database=this.database, schema='dbt_incremental', identifier=name)) }}
{%- endmacro %}

{#- The identity map's records of one source system with their golden customer, the source
    record id named `key`: what a snapshot of the mapping an incremental model joined with
    holds. -#}
{% macro identity_map_of(source_system, key='source_record_id') -%}
    (select source_record_id{% if key != 'source_record_id' %} as {{ key }}{% endif %}, customer_id from {{ ref('stg_identity__customer_map') }} where source_system = '{{ source_system }}')
{%- endmacro %}

{% macro _create_replaced_keys_record(name, key) -%}
    create table if not exists {{ replaced_keys_record(name) }} ({{ key }} {{ dbt.type_string() }})
{%- endmacro %}

{% macro open_replaced_keys_record(name, key) -%}
    {%- if target.type != 'spark' -%}
        {%- set existing = run_state_relation(name) -%}
        {{ _create_replaced_keys_record(name, key) }}
        {%- if not is_incremental() or existing is none %};
        delete from {{ replaced_keys_record(name) }};
        insert into {{ replaced_keys_record(name) }} ({{ key }}) values (null)
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro keys_to_regroup(name, key, upstream) -%}
    {%- set record = run_state_relation(name) -%}
    {%- if record is none -%}
    select {{ key }} from {{ upstream }}
    union
    select {{ key }} from {{ this }}
    {%- else -%}
    select {{ key }} from {{ record }} where {{ key }} is not null
    union
    select {{ key }} from {{ upstream }} where exists (select 1 from {{ record }} where {{ key }} is null)
    union
    select {{ key }} from {{ this }} where exists (select 1 from {{ record }} where {{ key }} is null)
    {%- endif -%}
{%- endmacro %}

{% macro close_replaced_keys_record(name, key) -%}
    {%- if target.type != 'spark' -%}
        {{ _create_replaced_keys_record(name, key) }};
        delete from {{ replaced_keys_record(name) }}
    {%- endif -%}
{%- endmacro %}

{#- The keys of `today` added, removed or with another value in any of `columns` since
    `snapshot` (a table the model's post-hook wrote from the same select), as one column
    named `as_name` (default: the key). -#}
{% macro keys_changed_since(today, snapshot, key, columns, as_name=none) -%}
    select coalesce(today.{{ key }}, joined_with.{{ key }}) as {{ as_name or key }}
    from {{ today }} as today
    full outer join {{ snapshot }} as joined_with
        on joined_with.{{ key }} = today.{{ key }}
    where today.{{ key }} is null
        or joined_with.{{ key }} is null
        {%- for column in columns %}
        or {{ values_differ('today.' ~ column, 'joined_with.' ~ column) }}
        {%- endfor %}
{%- endmacro %}

{#- True when two values differ, a NULL against a value counting as a difference (the
    portable spelling of `is distinct from`): how incremental models tell a changed
    customer_id, which an identity merge, split or new match can set or clear. -#}
{% macro values_differ(left, right) -%}
    ({{ left }} <> {{ right }} or ({{ left }} is null and {{ right }} is not null) or ({{ left }} is not null and {{ right }} is null))
{%- endmacro %}
