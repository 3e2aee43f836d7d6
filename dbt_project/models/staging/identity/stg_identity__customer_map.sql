-- Source record -> golden customer, as the identity engine wrote it.
select
    source_system,
    source_record_id,
    customer_id,
    match_rule,
    match_weight,
    matched_record,
    first_assigned_at,
    updated_at
from {{ source('identity', 'customer_map') }}
