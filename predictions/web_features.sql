-- The web features of a snapshot, from the web_sessions CTE (predictions/web_sessions.sql).
-- predictions/web_state.py computes the same columns from the per-visitor, per-day sums it
-- keeps (WEB_FEATURES_FROM_STATE); tests/predictions/test_web_state.py holds them equal.
web_features as (

    select
        customer_id,
        sum(starts_session) as web_sessions,
        sum(starts_session) filter (where occurred_at >= params.cutoff - interval 30 day) as web_sessions_30d,
        sum(starts_session) filter (
            where occurred_at >= params.cutoff - interval 90 day
                and occurred_at < params.cutoff - interval 30 day
        ) as web_sessions_31_90d,
        count(*) filter (where type = 'page') as web_page_views,
        count(*) filter (where type = 'page' and occurred_at >= params.cutoff - interval 30 day) as web_page_views_30d,
        count(*) filter (
            where type = 'track' and event in ('Product Viewed', 'Added to Cart', 'Checkout Started')
        ) as web_shopping_events,
        count(*) filter (
            where type = 'track'
                and event in ('Added to Cart', 'Checkout Started')
                and occurred_at >= params.cutoff - interval 30 day
        ) as web_cart_events_30d,
        bool_or(type = 'track' and event = 'Signed Up') as has_signed_up,
        date_diff('day', max(occurred_at), any_value(params.as_of_date)) as days_since_web_visit,
        min(occurred_at) as first_web_seen_at
    from web_sessions, params
    group by customer_id

)
