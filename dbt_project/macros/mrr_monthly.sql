{#- What int_billing__customer_mrr_monthly's rows are a function of, and the snapshots of
    them its incremental run compares with today's to find the customers whose rows can
    have changed (the model's header says why that is exact):

      - dbt_incremental.mrr_monthly_versions: every subscription version with its MRR in
        US cents (`mrr_subscription_versions`; stg_billing__subscription_versions is rebuilt
        whole and keeps no record of what changed, and an FX rate change shows here too);
      - dbt_incremental.mrr_monthly_billing_identities: billing customer -> golden customer;
      - dbt_incremental.mrr_monthly_as_of: the as-of date the rows were computed for.

    Written by the model's post-hook, in the model's transaction, so they always describe
    what its rows were computed from. Run state, outside the built schemas; on Spark (where
    the model is a table rebuilt whole) there are none. -#}

{% macro mrr_subscription_versions() -%}
    (
        select
            versions.subscription_id,
            versions.customer_id,
            versions.status,
            versions.started_at,
            versions.canceled_at,
            versions.valid_from,
            versions.valid_to,
            {{ to_usd_cents('coalesce(versions.mrr_cents, 0)') }} as mrr_usd_cents
        from {{ ref('stg_billing__subscription_versions') }} as versions
        left join {{ ref('fx_rates_to_usd') }} as fx_rates
            on fx_rates.currency = versions.currency
    )
{%- endmacro %}

{#- The billing customers whose versions differ between the snapshot and today: a version
    added, gone or changed in any column the MRR reads (both billing customers when a
    version moved from one to another). -#}
{% macro mrr_changed_billing_customers(current) -%}
    select today.customer_id as today_billing_customer_id, held.customer_id as held_billing_customer_id
    from {{ current }} as today
    full outer join dbt_incremental.mrr_monthly_versions as held
        on held.subscription_id = today.subscription_id
        and held.valid_from = today.valid_from
    where held.subscription_id is null
        or today.subscription_id is null
        or {{ values_differ('today.customer_id', 'held.customer_id') }}
        or {{ values_differ('today.status', 'held.status') }}
        or {{ values_differ('today.started_at', 'held.started_at') }}
        or {{ values_differ('today.canceled_at', 'held.canceled_at') }}
        or {{ values_differ('today.valid_to', 'held.valid_to') }}
        or {{ values_differ('today.mrr_usd_cents', 'held.mrr_usd_cents') }}
{%- endmacro %}

{% macro snapshot_mrr_monthly_inputs() -%}
    {%- if target.type != 'spark' -%}
    create or replace table dbt_incremental.mrr_monthly_versions as
    select * from {{ mrr_subscription_versions() }} as versions;
    create or replace table dbt_incremental.mrr_monthly_billing_identities as
    select source_record_id, customer_id from {{ identity_map_of('billing') }} as identities;
    create or replace table dbt_incremental.mrr_monthly_as_of as
    select as_of_date from {{ ref('int_as_of_date') }}
    {%- endif -%}
{%- endmacro %}
