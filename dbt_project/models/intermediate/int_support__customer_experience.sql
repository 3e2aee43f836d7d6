-- Customer-experience figures per golden customer who filed a ticket or answered a survey:
-- ticket load (last 90 days before int_as_of_date, open now), median resolution time, the
-- share of CSAT ratings that are good, and their latest NPS answer.
with as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

tickets as (

    select * from {{ ref('int_support__tickets') }}
    where customer_id is not null

),

ticket_metrics as (

    select
        tickets.customer_id,
        count(*) as n_tickets,
        sum(
            case
                when tickets.created_at >= {{ dbt.dateadd('day', -90, 'as_of.as_of_date') }}
                    and cast(tickets.created_at as date) <= as_of.as_of_date
                    then 1
                else 0
            end
        ) as tickets_90d,
        sum(case when tickets.is_open then 1 else 0 end) as open_tickets,
        percentile_cont(0.5) within group (order by tickets.resolution_hours) as median_resolution_hours,
        sum(case when tickets.satisfaction = 'good' then 1 else 0 end) as csat_good,
        sum(case when tickets.satisfaction in ('good', 'bad') then 1 else 0 end) as csat_rated,
        max(tickets.created_at) as last_ticket_at
    from tickets
    cross join as_of
    group by tickets.customer_id

),

ranked_responses as (

    select
        customer_id,
        score,
        nps_category,
        submitted_at,
        row_number() over (
            partition by customer_id
            order by submitted_at desc, response_id desc
        ) as response_rank,
        count(*) over (partition by customer_id) as n_responses
    from {{ ref('int_surveys__responses') }}
    where customer_id is not null

),

latest_response as (

    select * from ranked_responses where response_rank = 1

),

customers as (

    select customer_id from ticket_metrics
    union
    select customer_id from latest_response

)

select
    customers.customer_id,
    cast(coalesce(ticket_metrics.n_tickets, 0) as {{ dbt.type_bigint() }}) as n_tickets,
    cast(coalesce(ticket_metrics.tickets_90d, 0) as {{ dbt.type_bigint() }}) as tickets_90d,
    cast(coalesce(ticket_metrics.open_tickets, 0) as {{ dbt.type_bigint() }}) as open_tickets,
    cast(ticket_metrics.median_resolution_hours as {{ type_double() }}) as median_resolution_hours,
    cast(coalesce(ticket_metrics.csat_rated, 0) as {{ dbt.type_bigint() }}) as csat_ratings,
    {{ safe_divide('ticket_metrics.csat_good', 'ticket_metrics.csat_rated') }} as csat_good_share,
    ticket_metrics.last_ticket_at,
    cast(coalesce(latest_response.n_responses, 0) as {{ dbt.type_bigint() }}) as nps_responses,
    latest_response.score as latest_nps_score,
    latest_response.nps_category as latest_nps_category,
    latest_response.submitted_at as latest_nps_submitted_at
from customers
left join ticket_metrics
    on ticket_metrics.customer_id = customers.customer_id
left join latest_response
    on latest_response.customer_id = customers.customer_id
