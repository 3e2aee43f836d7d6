{#- Which raw rows an incremental event model reprocesses.

    Events and their re-deliveries arrive in daily landing partitions (_dt), up to
    `event_lookback_days` late. An incremental run re-reads
      * every partition within the lookback window of the newest delivery already built, and
      * any partition (re)loaded since the last build, however old (out-of-order backfills).
    Reading whole partitions keeps first-delivery-wins deduplication exact: a re-delivered
    event in the window meets its earlier copy there, and the model drops an event that the
    target already holds from an earlier partition (see `keep_first_delivery`). -#}
{% macro delivery_window_filter(delivered_dt_column='delivered_dt', loaded_at_column='loaded_at') -%}
    _dt >= (
        select coalesce(
            {{ dbt.dateadd('day', -1 * var('event_lookback_days'), 'max(' ~ delivered_dt_column ~ ')') }},
            cast('1900-01-01' as date)
        )
        from {{ this }}
    )
    or _loaded_at > (
        select coalesce(max({{ loaded_at_column }}), cast('1900-01-01' as {{ dbt.type_timestamp() }}))
        from {{ this }}
    )
{%- endmacro %}

{#- In an incremental run: drop a reprocessed event when the built table already holds a
    strictly earlier delivery of it (delete+insert on the unique key then leaves that row). -#}
{% macro keep_first_delivery(relation_alias, unique_key, delivered_dt_column='delivered_dt') -%}
    not exists (
        select 1
        from {{ this }} as already_built
        where already_built.{{ unique_key }} = {{ relation_alias }}.{{ unique_key }}
          and already_built.{{ delivered_dt_column }} < {{ relation_alias }}.{{ delivered_dt_column }}
    )
{%- endmacro %}
