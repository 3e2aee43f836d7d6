{%- set columns = [
    'customer_id', 'full_name', 'first_name', 'last_name', 'email', 'phone', 'address_line1',
    'address_city', 'address_postal_code', 'address_country', 'billing_user_id',
    'email_source_record', 'phone_source_record', 'address_source_record', 'n_source_records',
    'n_emails', 'n_phones', 'first_seen_at', 'last_seen_at', 'created_at', 'updated_at',
] -%}
{{
    config(
        materialized=delivery_incremental_materialization(),
        unique_key='customer_id',
        incremental_strategy='replace_keys',
        removed_when_null='n_source_records',
        on_schema_change='fail'
    )
}}
-- One row per golden customer with the surviving best values (the BI contract table).
-- Incremental per customer: a night's identity step rewrites a few golden customers, so a
-- run compares every column of identity's golden customers with the rows held here and
-- swaps only the customers that differ, are new or are gone (`replace_keys` on
-- customer_id; a customer gone returns one row with a NULL n_source_records, which
-- removes it) instead of rewriting every row. On Spark it is a table rebuilt whole.
with golden as (

    select
        customer_id,
        full_name,
        first_name,
        last_name,
        email,
        phone,
        address_line1,
        address_city,
        address_postal_code,
        address_country,
        billing_user_id,
        email_source_record,
        phone_source_record,
        address_source_record,
        cast(n_source_records as {{ dbt.type_bigint() }}) as n_source_records,
        cast(n_emails as {{ dbt.type_bigint() }}) as n_emails,
        cast(n_phones as {{ dbt.type_bigint() }}) as n_phones,
        first_seen_at,
        last_seen_at,
        created_at,
        updated_at
    from {{ ref('stg_identity__golden_customers') }}

){% if is_incremental() %},

changed_customers as (

    select coalesce(today.customer_id, held.customer_id) as customer_id
    from golden as today
    full outer join {{ this }} as held
        on held.customer_id = today.customer_id
    where today.customer_id is null
        or held.customer_id is null
        {%- for column in columns[1:] %}
        or {{ values_differ('today.' ~ column, 'held.' ~ column) }}
        {%- endfor %}

){% endif %}

select * from golden
{% if is_incremental() %}
where customer_id in (select customer_id from changed_customers)
union all
-- a customer gone (merged away or erased): one NULL row removes theirs
select
    customer_id,
    {%- for column in columns[1:] %}
    null as {{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
from changed_customers
where customer_id not in (select customer_id from golden)
{% endif %}
