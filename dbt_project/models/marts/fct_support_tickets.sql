-- One row per support ticket, its latest version: the golden customer, state, timings in
-- hours, reopened or not, and the CSAT rating. Every ticket the helpdesk delivered is here,
-- whether or not its requester could be matched to a customer.
select
    ticket_id,
    customer_id,
    status,
    is_open,
    priority,
    channel,
    satisfaction,
    is_reopened,
    n_versions,
    created_at,
    first_responded_at,
    solved_at,
    updated_at,
    cast(first_response_hours as {{ type_double() }}) as first_response_hours,
    cast(resolution_hours as {{ type_double() }}) as resolution_hours,
    cast({{ dbt.date_trunc('month', 'created_at') }} as date) as created_month
from {{ ref('int_support__tickets') }}
