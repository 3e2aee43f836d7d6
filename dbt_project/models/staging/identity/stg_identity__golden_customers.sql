-- Golden customers with the survivorship-chosen values, as the identity engine wrote them.
select
    customer_id,
    first_name,
    last_name,
    full_name,
    email,
    email_source_record,
    phone,
    phone_source_record,
    address_line1,
    address_city,
    address_postal_code,
    address_country,
    address_source_record,
    billing_user_id,
    n_source_records,
    n_emails,
    n_phones,
    first_seen_at,
    last_seen_at,
    created_at,
    updated_at
from {{ source('identity', 'golden_customers') }}
