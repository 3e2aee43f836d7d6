-- Support load and satisfaction per customer segment (the same segments as nps_by_segment):
-- how many customers filed tickets, tickets per customer and per 1,000 US dollars of
-- lifetime revenue, open tickets, median resolution time and the CSAT good share. The row
-- segment_type = 'all' covers every ticket, matched to a customer or not.
with tickets as (

    select * from {{ ref('int_support__tickets') }}

),

segment_customers as (

    select
        segments.segment_type,
        segments.segment_name,
        count(*) as customers,
        sum(clv.historical_clv_usd_cents) as revenue_usd_cents
    from {{ ref('int_customer__experience_segments') }} as segments
    inner join {{ ref('customer_lifetime_value') }} as clv
        on clv.customer_id = segments.customer_id
    group by segments.segment_type, segments.segment_name

),

all_customers as (

    select
        'all' as segment_type,
        'all' as segment_name,
        count(*) as customers,
        sum(historical_clv_usd_cents) as revenue_usd_cents
    from {{ ref('customer_lifetime_value') }}

),

segment_tickets as (

    select
        segments.segment_type,
        segments.segment_name,
        tickets.*
    from tickets
    inner join {{ ref('int_customer__experience_segments') }} as segments
        on segments.customer_id = tickets.customer_id
    union all
    select 'all' as segment_type, 'all' as segment_name, tickets.*
    from tickets

),

ticket_metrics as (

    select
        segment_type,
        segment_name,
        count(*) as tickets,
        count(distinct customer_id) as customers_with_tickets,
        sum(case when is_open then 1 else 0 end) as open_tickets,
        sum(case when is_reopened then 1 else 0 end) as reopened_tickets,
        percentile_cont(0.5) within group (order by first_response_hours) as median_first_response_hours,
        percentile_cont(0.5) within group (order by resolution_hours) as median_resolution_hours,
        sum(case when satisfaction = 'good' then 1 else 0 end) as csat_good,
        sum(case when satisfaction in ('good', 'bad') then 1 else 0 end) as csat_ratings
    from segment_tickets
    group by segment_type, segment_name

),

customers as (

    select * from segment_customers
    union all
    select * from all_customers

)

select
    customers.segment_type,
    customers.segment_name,
    cast(customers.customers as {{ dbt.type_bigint() }}) as customers,
    cast(coalesce(ticket_metrics.customers_with_tickets, 0) as {{ dbt.type_bigint() }}) as customers_with_tickets,
    cast(coalesce(ticket_metrics.tickets, 0) as {{ dbt.type_bigint() }}) as tickets,
    {{ safe_divide('coalesce(ticket_metrics.tickets, 0)', 'customers.customers') }} as tickets_per_customer,
    {{ safe_divide('1000.0 * 100 * coalesce(ticket_metrics.tickets, 0)', 'customers.revenue_usd_cents') }} as tickets_per_1000_usd_revenue,
    cast(coalesce(ticket_metrics.open_tickets, 0) as {{ dbt.type_bigint() }}) as open_tickets,
    cast(coalesce(ticket_metrics.reopened_tickets, 0) as {{ dbt.type_bigint() }}) as reopened_tickets,
    cast(ticket_metrics.median_first_response_hours as {{ type_double() }}) as median_first_response_hours,
    cast(ticket_metrics.median_resolution_hours as {{ type_double() }}) as median_resolution_hours,
    cast(coalesce(ticket_metrics.csat_ratings, 0) as {{ dbt.type_bigint() }}) as csat_ratings,
    {{ safe_divide('ticket_metrics.csat_good', 'ticket_metrics.csat_ratings') }} as csat_good_share
from customers
left join ticket_metrics
    on ticket_metrics.segment_type = customers.segment_type
    and ticket_metrics.segment_name = customers.segment_name
