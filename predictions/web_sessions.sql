-- Web events with their golden customer and whether each starts a session, as of the
-- snapshot's cutoff: CTEs only (no leading `with`), after the invoice CTEs (params,
-- identity_map, billing_accounts). The known_web_events placeholder is the web events known
-- at the cutoff, the first delivery of each (predictions/snapshot.py): all of them for a
-- snapshot, or all of some visitors' (predictions/web_state.py keeps their per-day sums
-- between nights).
--
-- Web events with their golden customer: the event's userId via the billing account that
-- carries it, else the identity engine's mapping of the browser (anonymousId) or userId.
billing_user_ids as (

    select user_id, min(accounts.customer_id) as customer_id
    from (
        select customer_id as billing_customer_id, user_id
        from raw.billing_customers, params
        where raw.billing_customers._dt <= params.as_of_date
            and raw.billing_customers.updated_at < params.cutoff
            and user_id is not null
    ) as delivered
    inner join billing_accounts as accounts
        on accounts.billing_customer_id = delivered.billing_customer_id
    group by user_id

),

web_identities as (

    select source_record_id, customer_id from identity_map where source_system = 'web'

),

web_events as (

    select
        coalesce(by_user.customer_id, by_browser.customer_id, by_user_record.customer_id) as customer_id,
        coalesce(events.anonymous_id, 'user:' || events.user_id) as visitor_id,
        events.type,
        events.event,
        events.event_timestamp as occurred_at
    from {known_web_events} as events
    left join billing_user_ids as by_user
        on by_user.user_id = events.user_id
    left join web_identities as by_browser
        on by_browser.source_record_id = events.anonymous_id
    left join web_identities as by_user_record
        on by_user_record.source_record_id = events.user_id

),

-- A session starts after 30 minutes without an event from the same browser.
web_sessions as (

    select
        visitor_id,
        customer_id,
        occurred_at,
        type,
        event,
        case
            when lag(occurred_at) over (partition by visitor_id order by occurred_at) is null
                or occurred_at - lag(occurred_at) over (partition by visitor_id order by occurred_at)
                    > interval 30 minute
                then 1
            else 0
        end as starts_session
    from web_events
    where customer_id is not null

)
