-- Which golden customer a web userId (the product's account id) belongs to. The billing
-- customer carrying that user_id is authoritative; else a web identity the identity engine
-- keyed by the userId itself (a web visitor seen only with a userId).
with billing_user_ids as (

    select
        billing.user_id,
        identity_map.customer_id,
        1 as priority
    from {{ ref('stg_billing__customers') }} as billing
    inner join {{ ref('stg_identity__customer_map') }} as identity_map
        on identity_map.source_system = 'billing'
        and identity_map.source_record_id = billing.customer_id
    where billing.user_id is not null

),

web_user_ids as (

    select
        identity_map.source_record_id as user_id,
        identity_map.customer_id,
        2 as priority
    from {{ ref('stg_identity__customer_map') }} as identity_map
    where identity_map.source_system = 'web'
        and identity_map.source_record_id in (
            select user_id from {{ ref('stg_web__events') }} where user_id is not null
        )

),

candidates as (

    select * from billing_user_ids
    union all
    select * from web_user_ids

),

ranked as (

    select
        user_id,
        customer_id,
        row_number() over (partition by user_id order by priority, customer_id) as candidate_rank
    from candidates

)

select user_id, customer_id
from ranked
where candidate_rank = 1
