-- Web activity per golden customer (customers with at least one stitched web session):
-- the sum of their sessions in fct_web_sessions, so the 360 view and the sessions mart
-- always agree. A session belongs to the customer its visitor was stitched to.
select
    customer_id,
    cast(count(*) as {{ dbt.type_bigint() }}) as n_web_sessions,
    cast(sum(n_page_views) as {{ dbt.type_bigint() }}) as n_page_views,
    cast(sum(n_orders) as {{ dbt.type_bigint() }}) as n_web_orders,
    cast(sum(order_revenue) as {{ type_double() }}) as web_order_revenue,
    max(case when has_signed_up then 1 else 0 end) = 1 as has_signed_up,
    min(started_at) as first_web_seen_at,
    max(ended_at) as last_web_seen_at
from {{ ref('fct_web_sessions') }}
where customer_id is not null
group by customer_id
