{#- The incremental int_billing__invoices and fct_invoices (their headers say why each is
    exact):

      - stg_billing__invoices records the invoice ids its `replace_keys` runs replaced in
        dbt_incremental.invoices_to_rejoin (one NULL, "every invoice", after a whole build);
        int_billing__invoices re-joins those invoices and empties the record;
      - dbt_incremental.invoices_billing_identities and invoices_fx_rates: the billing mapping
        (billing customer -> golden customer) and the FX rates int_billing__invoices last
        joined with, written by its post-hook in its transaction;
      - int_billing__invoices' `replace_keys` records the invoices it replaced in
        dbt_incremental.fct_invoices_to_regroup (one NULL after a whole build of it), which
        fct_invoices re-reads and empties.

    Run state, outside the built schemas; on Spark (tables rebuilt whole) there is none. -#}

{#- Billing customers mapped, unmapped or mapped to another golden customer since the
    snapshot. -#}
{% macro remapped_billing_customers() -%}
    {{ keys_changed_since(identity_map_of('billing'), 'dbt_incremental.invoices_billing_identities',
                          'source_record_id', ['customer_id'], as_name='billing_customer_id') }}
{%- endmacro %}

{#- Currencies whose rate row was added, removed or changed since the snapshot. -#}
{% macro changed_fx_currencies() -%}
    {{ keys_changed_since(ref('fx_rates_to_usd'), 'dbt_incremental.invoices_fx_rates',
                          'currency', ['usd_per_unit', 'minor_unit_decimals']) }}
{%- endmacro %}

{% macro snapshot_invoices_inputs() -%}
    {%- if target.type != 'spark' -%}
    create or replace table dbt_incremental.invoices_billing_identities as
    select source_record_id, customer_id from {{ identity_map_of('billing') }} as identities;
    create or replace table dbt_incremental.invoices_fx_rates as
    select currency, usd_per_unit, minor_unit_decimals from {{ ref('fx_rates_to_usd') }}
    {%- endif -%}
{%- endmacro %}
