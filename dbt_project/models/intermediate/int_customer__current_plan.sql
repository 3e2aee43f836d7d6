-- The plan each golden customer is on: the plan of their most engaged subscription that
-- is not canceled (active, then past_due, trialing, unpaid; then the latest started), or
-- 'none' for customers without one. Segments NPS and support load by plan.
with subscriptions as (

    select
        identity_map.customer_id,
        coalesce(subscriptions.plan, 'unknown') as plan,
        row_number() over (
            partition by identity_map.customer_id
            order by
                case subscriptions.status
                    when 'active' then 1
                    when 'past_due' then 2
                    when 'trialing' then 3
                    when 'unpaid' then 4
                    else 5
                end,
                subscriptions.started_at desc,
                subscriptions.subscription_id
        ) as plan_rank
    from {{ ref('stg_billing__subscriptions') }} as subscriptions
    inner join {{ ref('stg_identity__customer_map') }} as identity_map
        on identity_map.source_system = 'billing'
        and identity_map.source_record_id = subscriptions.customer_id
    where subscriptions.status <> 'canceled'

)

select
    customers.customer_id,
    coalesce(subscriptions.plan, 'none') as plan
from {{ ref('dim_customers') }} as customers
left join subscriptions
    on subscriptions.customer_id = customers.customer_id
    and subscriptions.plan_rank = 1
