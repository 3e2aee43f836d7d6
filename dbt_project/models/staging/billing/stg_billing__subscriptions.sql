-- One row per subscription: its current state (latest version wins).
select
    subscription_id,
    customer_id,
    plan,
    status,
    mrr_cents,
    currency,
    started_at,
    updated_at,
    canceled_at
from {{ ref('stg_billing__subscription_versions') }}
where is_current_version
