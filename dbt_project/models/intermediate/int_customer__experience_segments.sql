-- Every golden customer once per way of segmenting them (RFM segment, lifecycle stage,
-- churn risk, plan): the shared spine of nps_by_segment and support_by_segment.
with customers as (

    select
        segments.customer_id,
        segments.rfm_segment,
        segments.lifecycle_stage,
        segments.churn_risk,
        plans.plan
    from {{ ref('customer_segments') }} as segments
    inner join {{ ref('int_customer__current_plan') }} as plans
        on plans.customer_id = segments.customer_id

)

select customer_id, 'rfm_segment' as segment_type, rfm_segment as segment_name from customers
union all
select customer_id, 'lifecycle_stage' as segment_type, lifecycle_stage as segment_name from customers
union all
select customer_id, 'churn_risk' as segment_type, churn_risk as segment_name from customers
union all
select customer_id, 'plan' as segment_type, plan as segment_name from customers
