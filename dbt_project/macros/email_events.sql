{#- The incremental fct_email_events and int_customer__email_metrics (their headers say why
    each is exact):

      - stg_email__events records the event ids its `replace_keys` runs replaced in
        dbt_incremental.email_events_to_rejoin (`keys_to_regroup`; one NULL, "every event",
        after a whole build of it); fct_email_events re-joins those events with the identity
        map and empties the record in its own transaction;
      - dbt_incremental.email_events_identities: the email mapping (contact -> golden
        customer) fct_email_events last joined with, written by its post-hook in its
        transaction: the next run re-joins the events of every contact mapped, unmapped or
        remapped since (an identity merge, split or new match) and nothing else;
      - fct_email_events' `replace_keys` records the customers of the rows it deleted and
        inserted in dbt_incremental.email_metrics_customers_to_regroup (one NULL after a
        whole build of it), which int_customer__email_metrics re-aggregates and empties.

    Run state, outside the built schemas; on Spark (where the models are tables rebuilt
    whole) there is none. -#}

{#- The contacts whose golden customer differs between the snapshot and today: mapped,
    unmapped or mapped to another customer. -#}
{% macro remapped_email_contacts() -%}
    {{ keys_changed_since(identity_map_of('email', 'contact_id'), 'dbt_incremental.email_events_identities',
                          'contact_id', ['customer_id']) }}
{%- endmacro %}

{% macro snapshot_email_events_identities() -%}
    {%- if target.type != 'spark' -%}
    create or replace table dbt_incremental.email_events_identities as
    select contact_id, customer_id from {{ identity_map_of('email', 'contact_id') }} as identities
    {%- endif -%}
{%- endmacro %}
