-- One row per segment, for each way of segmenting customers (RFM segment, lifecycle stage,
-- churn risk): how many customers, their revenue, MRR and average lifetime value (US cents).
with customers as (

    select
        segments.customer_id,
        segments.rfm_segment,
        segments.lifecycle_stage,
        segments.churn_risk,
        segments.is_email_marketable,
        segments.recency_days,
        clv.historical_clv_usd_cents,
        clv.predicted_12m_revenue_usd_cents,
        clv.current_mrr_usd_cents
    from {{ ref('customer_segments') }} as segments
    inner join {{ ref('customer_lifetime_value') }} as clv
        on clv.customer_id = segments.customer_id

),

by_segment as (

    select 'rfm_segment' as segment_type, rfm_segment as segment_name, customers.* from customers
    union all
    select 'lifecycle_stage' as segment_type, lifecycle_stage as segment_name, customers.* from customers
    union all
    select 'churn_risk' as segment_type, churn_risk as segment_name, customers.* from customers

),

summary as (

    select
        segment_type,
        segment_name,
        count(*) as customers,
        sum(case when is_email_marketable then 1 else 0 end) as email_marketable_customers,
        sum(historical_clv_usd_cents) as revenue_usd_cents,
        sum(current_mrr_usd_cents) as mrr_usd_cents,
        avg(cast(historical_clv_usd_cents as {{ type_double() }})) as average_clv_usd_cents,
        avg(cast(predicted_12m_revenue_usd_cents as {{ type_double() }})) as average_predicted_12m_revenue_usd_cents,
        avg(cast(recency_days as {{ type_double() }})) as average_recency_days
    from by_segment
    group by segment_type, segment_name

)

select
    segment_type,
    segment_name,
    cast(customers as {{ dbt.type_bigint() }}) as customers,
    cast(customers as {{ type_double() }}) / sum(customers) over (partition by segment_type) as share_of_customers,
    cast(email_marketable_customers as {{ dbt.type_bigint() }}) as email_marketable_customers,
    cast(revenue_usd_cents as {{ dbt.type_bigint() }}) as revenue_usd_cents,
    cast(mrr_usd_cents as {{ dbt.type_bigint() }}) as mrr_usd_cents,
    average_clv_usd_cents,
    average_predicted_12m_revenue_usd_cents,
    average_recency_days
from summary
