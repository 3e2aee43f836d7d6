-- Every distinct version of every subscription, with the interval it was valid for.
-- The billing export re-sends a subscription whenever it changes, so raw holds its
-- history; MRR movements are computed from it. A version re-delivered unchanged
-- collapses to one row (latest delivery wins for identical updated_at).
with source as (

    select * from {{ source('billing', 'subscriptions') }}

),

deliveries as (

    select
        subscription_id,
        customer_id,
        {{ clean_text('plan') }} as plan,
        lower(trim(status)) as status,
        mrr_cents,
        lower(trim(currency)) as currency,
        started_at,
        updated_at,
        canceled_at,
        row_number() over (
            partition by subscription_id, updated_at
            order by _dt desc, _source_file desc, _line_number desc
        ) as delivery_rank
    from source

),

versions as (

    select
        subscription_id,
        customer_id,
        plan,
        status,
        mrr_cents,
        currency,
        started_at,
        updated_at,
        canceled_at,
        updated_at as valid_from,
        lead(updated_at) over (partition by subscription_id order by updated_at) as valid_to
    from deliveries
    where delivery_rank = 1

)

select
    subscription_id,
    customer_id,
    plan,
    status,
    mrr_cents,
    currency,
    started_at,
    updated_at,
    canceled_at,
    valid_from,
    valid_to,
    valid_to is null as is_current_version
from versions
