-- One row per golden customer with the surviving best values (the BI contract table).
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
