-- Every identified source record and the golden customer it belongs to (the BI contract table).
select
    source_system,
    source_record_id,
    customer_id,
    match_rule,
    cast(match_weight as {{ type_double() }}) as match_weight,
    matched_record,
    first_assigned_at,
    updated_at
from {{ ref('stg_identity__customer_map') }}
