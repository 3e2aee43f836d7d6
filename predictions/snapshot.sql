-- Feature snapshot of every golden customer as of the end of day {as_of} (UTC).
--
-- Point in time, twice over: a row is used only when it was DELIVERED by then
-- (`_dt <= as_of`) AND it HAPPENED by then (its own timestamp < as_of + 1 day). A late
-- event that happened before `as_of` but landed after it is not used, so the snapshot is
-- the same whether or not later landing days are loaded -- what training on the past and
-- scoring today without leakage needs. Entity tables (subscriptions, invoices) are read as
-- the version that was latest at that moment, not today's.
--
-- Reads raw.* (the delivered rows with their landing day) and identity.customer_map (who
-- each source record is today). Money in US cents at the static rates of
-- dbt_project/seeds/fx_rates_to_usd.csv ({fx_rates}).
-- `{as_of}` and `{fx_rates}` are filled in by predictions/snapshot.py.
with params as (

    select
        cast('{as_of}' as date) as as_of_date,
        cast('{as_of}' as timestamp) + interval 1 day as cutoff

),

fx_rates as (

    select
        lower(trim(currency)) as currency,
        cast(usd_per_unit as double) * power(10, 2 - cast(minor_unit_decimals as integer)) as usd_cents_per_minor_unit
    from read_csv('{fx_rates}', header = true, auto_detect = true)

),

identity_map as (

    select source_system, source_record_id, customer_id from identity.customer_map

),

billing_accounts as (

    select source_record_id as billing_customer_id, customer_id
    from identity_map
    where source_system = 'billing'

),

-- Invoices as they stood at the cutoff: the latest version delivered and updated by then.
invoice_versions as (

    select
        invoices.*,
        row_number() over (
            partition by invoice_id
            order by updated_at desc, _dt desc, _source_file desc, _line_number desc
        ) as version_rank
    from raw.billing_invoices as invoices, params
    where invoices._dt <= params.as_of_date and invoices.updated_at < params.cutoff

),

invoices as (

    select
        accounts.customer_id,
        versions.invoice_id,
        versions.subscription_id,
        versions.status,
        nullif(trim(versions.product), '') as product,
        versions.created_at,
        coalesce(versions.paid_at, versions.updated_at) as paid_at,
        (coalesce(versions.amount_paid_cents, 0) - coalesce(versions.amount_refunded_cents, 0))
            * coalesce(fx_rates.usd_cents_per_minor_unit, 0) as net_paid_usd_cents
    from invoice_versions as versions
    inner join billing_accounts as accounts
        on accounts.billing_customer_id = versions.customer_id
    left join fx_rates
        on fx_rates.currency = lower(trim(versions.currency))
    where versions.version_rank = 1

),

billing_features as (

    select
        invoices.customer_id,
        count(*) filter (where status = 'paid') as n_paid_invoices,
        count(*) filter (where status = 'paid' and subscription_id is null) as n_one_off_purchases,
        sum(net_paid_usd_cents) filter (where status = 'paid') as revenue_usd_cents,
        sum(net_paid_usd_cents) filter (
            where status = 'paid' and paid_at >= params.cutoff - interval 30 day
        ) as revenue_30d_usd_cents,
        sum(net_paid_usd_cents) filter (
            where status = 'paid' and paid_at >= params.cutoff - interval 90 day
        ) as revenue_90d_usd_cents,
        count(*) filter (
            where status = 'paid' and paid_at >= params.cutoff - interval 30 day
        ) as n_paid_30d,
        min(paid_at) filter (where status = 'paid') as first_paid_at,
        max(paid_at) filter (where status = 'paid') as last_paid_at,
        count(*) filter (
            where status in ('open', 'uncollectible')
                and created_at < params.cutoff - interval 3 day
        ) as n_unpaid_invoices,
        count(*) filter (where status = 'uncollectible') as n_uncollectible_invoices,
        count(distinct product) filter (where status = 'paid') as n_products_bought
    from invoices, params
    group by invoices.customer_id

),

-- Subscriptions as they stood at the cutoff, and 30 days earlier (for the MRR trend).
subscription_versions as (

    select
        accounts.customer_id,
        subs.subscription_id,
        lower(trim(subs.status)) as status,
        subs.mrr_cents,
        coalesce(subs.mrr_cents, 0) * coalesce(fx_rates.usd_cents_per_minor_unit, 0) as mrr_usd_cents,
        subs.started_at,
        subs.updated_at,
        subs._dt,
        subs._source_file,
        subs._line_number
    from raw.billing_subscriptions as subs
    inner join billing_accounts as accounts
        on accounts.billing_customer_id = subs.customer_id
    left join fx_rates
        on fx_rates.currency = lower(trim(subs.currency))
    cross join params
    where subs._dt <= params.as_of_date and subs.updated_at < params.cutoff

),

subscriptions_at as (

    select
        moments.moment,
        versions.*,
        row_number() over (
            partition by moments.moment, versions.subscription_id
            order by versions.updated_at desc, versions._dt desc, versions._source_file desc,
                versions._line_number desc
        ) as version_rank
    from subscription_versions as versions
    cross join params
    cross join (select 0 as moment union all select 30) as moments
    where versions.updated_at < params.cutoff - moments.moment * interval 1 day

),

subscription_features as (

    select
        customer_id,
        count(distinct subscription_id) filter (where moment = 0) as n_subscriptions,
        sum(mrr_usd_cents) filter (
            where moment = 0 and status in ('active', 'past_due')
        ) as mrr_usd_cents,
        sum(mrr_usd_cents) filter (
            where moment = 30 and status in ('active', 'past_due')
        ) as mrr_30d_ago_usd_cents,
        -- a live subscription that is not an explicitly free plan (an export without MRR counts)
        bool_or(status in ('trialing', 'active', 'past_due') and (mrr_cents is null or mrr_cents > 0)) filter (
            where moment = 0
        ) as is_subscribed,
        bool_or(status = 'trialing') filter (where moment = 0) as is_trialing,
        bool_or(status in ('past_due', 'unpaid')) filter (where moment = 0) as has_payment_problem,
        count(*) filter (where moment = 0 and status = 'canceled') as n_canceled_subscriptions,
        min(started_at) filter (where moment = 0) as first_subscription_started_at
    from subscriptions_at
    where version_rank = 1
    group by customer_id

),

-- Each subscription's number of plan changes and downgrades up to the cutoff.
subscription_changes as (

    select
        customer_id,
        count(*) filter (where previous_mrr is not null and mrr_usd_cents < previous_mrr) as n_downgrades,
        count(*) filter (where previous_mrr is not null and mrr_usd_cents > previous_mrr) as n_upgrades
    from (
        select
            customer_id,
            mrr_usd_cents,
            lag(mrr_usd_cents) over (partition by subscription_id order by updated_at) as previous_mrr
        from (
            select distinct customer_id, subscription_id, mrr_usd_cents, updated_at
            from subscription_versions
        ) as distinct_versions
    ) as with_previous
    group by customer_id

),

email_contacts as (

    select source_record_id as contact_id, customer_id
    from identity_map
    where source_system = 'email'

),

email_events as (

    select
        contacts.customer_id,
        events.event_type,
        events.campaign_id,
        events.occurred_at
    from (
        select
            raw_events.*,
            row_number() over (
                partition by event_id order by _dt, _source_file, _line_number
            ) as delivery_rank
        from raw.email_events as raw_events, params
        where raw_events._dt <= params.as_of_date and raw_events.occurred_at < params.cutoff
    ) as events
    inner join email_contacts as contacts
        on contacts.contact_id = events.contact_id
    where events.delivery_rank = 1

),

email_features as (

    select
        customer_id,
        count(distinct campaign_id) filter (where event_type = 'delivered') as email_delivered,
        count(distinct campaign_id) filter (where event_type = 'open') as email_opened,
        count(distinct campaign_id) filter (where event_type = 'click') as email_clicked,
        count(distinct campaign_id) filter (
            where event_type = 'delivered' and occurred_at >= params.cutoff - interval 30 day
        ) as email_delivered_30d,
        count(distinct campaign_id) filter (
            where event_type = 'open' and occurred_at >= params.cutoff - interval 30 day
        ) as email_opened_30d,
        count(distinct campaign_id) filter (
            where event_type = 'open'
                and occurred_at >= params.cutoff - interval 90 day
                and occurred_at < params.cutoff - interval 30 day
        ) as email_opened_31_90d,
        count(distinct campaign_id) filter (
            where event_type = 'click' and occurred_at >= params.cutoff - interval 30 day
        ) as email_clicked_30d,
        bool_or(event_type in ('unsubscribe', 'spam_complaint')) as has_unsubscribed,
        max(occurred_at) filter (where event_type in ('open', 'click')) as last_email_engagement_at
    from email_events, params
    group by customer_id

),

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
    from (
        select
            raw_events.*,
            row_number() over (
                partition by message_id order by _dt, _source_file, _line_number
            ) as delivery_rank
        from raw.web_events as raw_events, params
        where raw_events._dt <= params.as_of_date and raw_events.event_timestamp < params.cutoff
    ) as events
    left join billing_user_ids as by_user
        on by_user.user_id = events.user_id
    left join web_identities as by_browser
        on by_browser.source_record_id = events.anonymous_id
    left join web_identities as by_user_record
        on by_user_record.source_record_id = events.user_id
    where events.delivery_rank = 1

),

-- A session starts after 30 minutes without an event from the same browser.
web_sessions as (

    select
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

),

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
        max(occurred_at) as last_web_seen_at,
        min(occurred_at) as first_web_seen_at
    from web_sessions, params
    group by customer_id

),

contact_created as (

    select contacts.customer_id, min(raw_contacts.created_at) as first_seen_at
    from raw.email_contacts as raw_contacts
    inner join email_contacts as contacts
        on contacts.contact_id = raw_contacts.contact_id
    cross join params
    where raw_contacts._dt <= params.as_of_date and raw_contacts.created_at < params.cutoff
    group by contacts.customer_id

),

account_created as (

    select accounts.customer_id, min(raw_accounts.created_at) as first_seen_at
    from raw.billing_customers as raw_accounts
    inner join billing_accounts as accounts
        on accounts.billing_customer_id = raw_accounts.customer_id
    cross join params
    where raw_accounts._dt <= params.as_of_date and raw_accounts.created_at < params.cutoff
    group by accounts.customer_id

),

known_customers as (

    select customer_id, min(first_seen_at) as first_seen_at
    from (
        select customer_id, first_seen_at from contact_created
        union all
        select customer_id, first_seen_at from account_created
        union all
        select customer_id, first_web_seen_at from web_features
        union all
        select customer_id, first_paid_at from billing_features
        union all
        select customer_id, first_subscription_started_at from subscription_features
    ) as sightings
    where first_seen_at is not null
    group by customer_id

)

select
    known.customer_id,
    params.as_of_date,
    date_diff('day', known.first_seen_at, params.as_of_date) as tenure_days,
    -- billing
    coalesce(billing.n_paid_invoices, 0) as n_paid_invoices,
    coalesce(billing.n_one_off_purchases, 0) as n_one_off_purchases,
    coalesce(billing.revenue_usd_cents, 0) as revenue_usd_cents,
    coalesce(billing.revenue_30d_usd_cents, 0) as revenue_30d_usd_cents,
    coalesce(billing.revenue_90d_usd_cents, 0) as revenue_90d_usd_cents,
    coalesce(billing.n_paid_30d, 0) as n_paid_30d,
    date_diff('day', billing.first_paid_at, params.as_of_date) as days_since_first_payment,
    date_diff('day', billing.last_paid_at, params.as_of_date) as days_since_last_payment,
    coalesce(billing.n_unpaid_invoices, 0) as n_unpaid_invoices,
    coalesce(billing.n_uncollectible_invoices, 0) as n_uncollectible_invoices,
    coalesce(billing.n_products_bought, 0) as n_products_bought,
    -- subscriptions
    coalesce(subs.n_subscriptions, 0) as n_subscriptions,
    coalesce(subs.mrr_usd_cents, 0) as mrr_usd_cents,
    coalesce(subs.mrr_usd_cents, 0) - coalesce(subs.mrr_30d_ago_usd_cents, 0) as mrr_change_30d_usd_cents,
    coalesce(subs.is_subscribed, false) as is_subscribed,
    coalesce(subs.is_trialing, false) as is_trialing,
    coalesce(subs.has_payment_problem, false) as has_payment_problem,
    coalesce(subs.n_canceled_subscriptions, 0) as n_canceled_subscriptions,
    date_diff('day', subs.first_subscription_started_at, params.as_of_date) as subscription_age_days,
    coalesce(changes.n_downgrades, 0) as n_downgrades,
    coalesce(changes.n_upgrades, 0) as n_upgrades,
    -- email
    coalesce(email.email_delivered, 0) as email_delivered,
    coalesce(email.email_opened, 0) as email_opened,
    coalesce(email.email_clicked, 0) as email_clicked,
    coalesce(email.email_delivered_30d, 0) as email_delivered_30d,
    coalesce(email.email_opened_30d, 0) as email_opened_30d,
    coalesce(email.email_opened_31_90d, 0) as email_opened_31_90d,
    coalesce(email.email_clicked_30d, 0) as email_clicked_30d,
    coalesce(email.has_unsubscribed, false) as has_unsubscribed,
    date_diff('day', email.last_email_engagement_at, params.as_of_date) as days_since_email_engagement,
    -- web
    coalesce(web.web_sessions, 0) as web_sessions,
    coalesce(web.web_sessions_30d, 0) as web_sessions_30d,
    coalesce(web.web_sessions_31_90d, 0) as web_sessions_31_90d,
    coalesce(web.web_page_views, 0) as web_page_views,
    coalesce(web.web_page_views_30d, 0) as web_page_views_30d,
    coalesce(web.web_shopping_events, 0) as web_shopping_events,
    coalesce(web.web_cart_events_30d, 0) as web_cart_events_30d,
    coalesce(web.has_signed_up, false) as has_signed_up,
    date_diff('day', web.last_web_seen_at, params.as_of_date) as days_since_web_visit
from known_customers as known
cross join params
left join billing_features as billing on billing.customer_id = known.customer_id
left join subscription_features as subs on subs.customer_id = known.customer_id
left join subscription_changes as changes on changes.customer_id = known.customer_id
left join email_features as email on email.customer_id = known.customer_id
left join web_features as web on web.customer_id = known.customer_id
order by known.customer_id
