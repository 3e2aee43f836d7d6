-- Web activity per golden customer (customers with at least one stitched web event).
select
    customer_id,
    cast(sum(is_session_start) as {{ dbt.type_bigint() }}) as n_web_sessions,
    cast(sum(case when event_type = 'page' then 1 else 0 end) as {{ dbt.type_bigint() }}) as n_page_views,
    cast(sum(case when event_name = 'Order Completed' then 1 else 0 end) as {{ dbt.type_bigint() }}) as n_web_orders,
    cast(sum(case when event_name = 'Order Completed' then coalesce(revenue, 0) else 0 end) as {{ type_double() }}) as web_order_revenue,
    max(case when event_name = 'Signed Up' then 1 else 0 end) = 1 as has_signed_up,
    min(occurred_at) as first_web_seen_at,
    max(occurred_at) as last_web_seen_at
from {{ ref('int_web__events_sessionised') }}
where customer_id is not null
group by customer_id
