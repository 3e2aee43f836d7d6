{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'stg_identity__customer_map'}}}) }}
-- MRR is reported per golden customer, so a subscription whose billing customer the identity
-- engine has not mapped (the engine maps every delivered billing customer; this happens
-- when billing sends a subscription before, or without, its customer) is left out of
-- fct_mrr_movements and customer_360 until the customer arrives. Lists those
-- subscriptions; an invoice in the same situation still counts, as unattributed revenue.
select
    subscriptions.subscription_id,
    subscriptions.customer_id as billing_customer_id,
    subscriptions.status,
    subscriptions.mrr_cents,
    subscriptions.currency
from {{ ref('stg_billing__subscriptions') }} as subscriptions
left join {{ ref('stg_identity__customer_map') }} as identity_map
    on identity_map.source_system = 'billing'
    and identity_map.source_record_id = subscriptions.customer_id
where identity_map.customer_id is null
