-- One wide row per golden customer: who they are, whether we may email them, what they
-- paid, their subscription, how they engage by email and on the web, how support treats
-- them and how likely they are to recommend us, and their segment.
-- Money is in US cents (any billing currency, at the static rates of seeds/fx_rates_to_usd.csv).
select
    customers.customer_id,
    customers.full_name,
    customers.first_name,
    customers.last_name,
    customers.email,
    customers.phone,
    customers.address_city,
    customers.address_country,
    customers.first_seen_at,
    customers.last_seen_at,
    customers.n_source_records,
    email.customer_id is not null as has_email_contact,
    coalesce(email.is_email_subscribed, false) as is_email_subscribed,
    segments.is_email_marketable,
    cast(coalesce(billing.lifetime_revenue_usd_cents, 0) as {{ dbt.type_bigint() }}) as lifetime_revenue_usd_cents,
    cast(coalesce(billing.gross_paid_usd_cents, 0) as {{ dbt.type_bigint() }}) as gross_paid_usd_cents,
    cast(coalesce(billing.refunded_usd_cents, 0) as {{ dbt.type_bigint() }}) as refunded_usd_cents,
    cast(coalesce(billing.n_invoices, 0) as {{ dbt.type_bigint() }}) as n_invoices,
    cast(coalesce(billing.n_paid_invoices, 0) as {{ dbt.type_bigint() }}) as n_paid_invoices,
    billing.first_purchase_at,
    billing.last_purchase_at,
    clv.average_order_value_usd_cents,
    coalesce(subscriptions.subscription_status, 'none') as subscription_status,
    cast(coalesce(subscriptions.current_mrr_usd_cents, 0) as {{ dbt.type_bigint() }}) as current_mrr_usd_cents,
    cast(coalesce(subscriptions.n_paying_subscriptions, 0) as {{ dbt.type_bigint() }}) as n_paying_subscriptions,
    cast(coalesce(email.campaigns_delivered, 0) as {{ dbt.type_bigint() }}) as email_campaigns_delivered,
    cast(coalesce(email.campaigns_opened, 0) as {{ dbt.type_bigint() }}) as email_campaigns_opened,
    cast(coalesce(email.campaigns_clicked, 0) as {{ dbt.type_bigint() }}) as email_campaigns_clicked,
    {{ safe_divide('email.campaigns_opened', 'email.campaigns_delivered') }} as email_open_rate,
    email.last_email_open_at,
    email.last_email_click_at,
    cast(coalesce(web.n_web_sessions, 0) as {{ dbt.type_bigint() }}) as n_web_sessions,
    cast(coalesce(web.n_page_views, 0) as {{ dbt.type_bigint() }}) as n_page_views,
    cast(coalesce(web.n_web_orders, 0) as {{ dbt.type_bigint() }}) as n_web_orders,
    cast(coalesce(web.web_order_revenue, 0) as {{ type_double() }}) as web_order_revenue,
    coalesce(web.has_signed_up, false) as has_signed_up,
    web.first_web_seen_at,
    web.last_web_seen_at,
    -- customer experience (int_support__customer_experience)
    cast(coalesce(experience.tickets_90d, 0) as {{ dbt.type_bigint() }}) as tickets_90d,
    cast(coalesce(experience.open_tickets, 0) as {{ dbt.type_bigint() }}) as open_tickets,
    experience.median_resolution_hours,
    experience.csat_good_share,
    experience.latest_nps_score,
    experience.latest_nps_category,
    segments.recency_days,
    segments.recency_score,
    segments.frequency_score,
    segments.monetary_score,
    segments.rfm_score,
    segments.rfm_segment,
    segments.lifecycle_stage,
    segments.churn_risk,
    clv.historical_clv_usd_cents,
    clv.predicted_12m_revenue_usd_cents,
    -- predictive traits (marts.customer_predictions, docs/predictions.md)
    predictions.churn_probability,
    predictions.predicted_clv_12m_usd_cents,
    predictions.lead_score,
    predictions.next_best_product,
    predictions.next_best_product_score,
    predictions.model_version as prediction_model_version,
    segments.as_of_date
from {{ ref('dim_customers') }} as customers
inner join {{ ref('customer_segments') }} as segments
    on segments.customer_id = customers.customer_id
inner join {{ ref('customer_lifetime_value') }} as clv
    on clv.customer_id = customers.customer_id
left join {{ ref('int_customer__billing_metrics') }} as billing
    on billing.customer_id = customers.customer_id
left join {{ ref('int_customer__subscription_metrics') }} as subscriptions
    on subscriptions.customer_id = customers.customer_id
left join {{ ref('int_support__customer_experience') }} as experience
    on experience.customer_id = customers.customer_id
left join {{ ref('int_customer__email_metrics') }} as email
    on email.customer_id = customers.customer_id
left join {{ ref('int_customer__web_metrics') }} as web
    on web.customer_id = customers.customer_id
left join {{ ref('customer_predictions') }} as predictions
    on predictions.customer_id = customers.customer_id
