-- One row per golden customer: the predictive traits of docs/predictions.md, as scored by
-- the latest run of the models (predictions/ in Python). Customers the models have not
-- scored (not known by the scoring date, or a warehouse never scored) keep NULL scores.
--   churn_probability: a paying subscriber's chance of having no paying subscription in 30 days
--   predicted_clv_12m_usd_cents: one-off purchases (BG/NBD + Gamma-Gamma) + MRR x survival
--   lead_score: a not-yet-paying person's chance of a first payment in 30 days
--   next_best_product: the product they do not own that owners of their products buy next
with customers as (

    select customer_id from {{ ref('dim_customers') }}

),

scores as (

    select * from {{ ref('stg_predictions__customer_scores') }}

)

select
    customers.customer_id,
    scores.churn_probability,
    scores.churn_probability_percentile,
    scores.predicted_clv_12m_usd_cents,
    scores.predicted_subscription_12m_usd_cents,
    scores.predicted_one_off_12m_usd_cents,
    scores.predicted_clv_12m_percentile,
    scores.lead_score,
    scores.lead_score_percentile,
    scores.next_best_product,
    scores.next_best_product_score,
    scores.next_best_product_score_percentile,
    scores.clv_method,
    scores.model_version,
    scores.scoring_date,
    scores.scored_at
from customers
left join scores
    on scores.customer_id = customers.customer_id
