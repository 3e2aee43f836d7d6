-- One row per support ticket with its golden customer (NULL when the requester gave
-- neither an email nor a phone, or the identity engine found nobody) and its timings in
-- hours: to the first response, and to the last solve (NULL while not solved or closed).
select
    tickets.ticket_id,
    identity_map.customer_id,
    tickets.status,
    tickets.is_open,
    tickets.priority,
    tickets.channel,
    tickets.subject,
    tickets.satisfaction,
    tickets.is_reopened,
    tickets.n_versions,
    tickets.created_at,
    tickets.first_responded_at,
    tickets.solved_at,
    tickets.updated_at,
    cast({{ dbt.datediff('tickets.created_at', 'tickets.first_responded_at', 'second') }} as {{ type_double() }}) / 3600 as first_response_hours,
    cast({{ dbt.datediff('tickets.created_at', 'tickets.solved_at', 'second') }} as {{ type_double() }}) / 3600 as resolution_hours
from {{ ref('stg_support__tickets') }} as tickets
left join {{ ref('stg_identity__customer_map') }} as identity_map
    on identity_map.source_system = 'support'
    and identity_map.source_record_id = tickets.ticket_id
