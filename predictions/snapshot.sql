-- Feature snapshot of every golden customer as of the end of day {as_of} (UTC).
--
-- Point in time, twice over: a row is used only when it was DELIVERED by then
-- (`_dt <= as_of`) AND it HAPPENED by then (its own timestamp < as_of + 1 day). A late
-- event that happened before `as_of` but landed after it is not used, so the snapshot is
-- the same whether or not later landing days are loaded -- what training on the past and
-- scoring today without leakage needs. Entity tables (subscriptions, invoices, tickets)
-- are read as the version that was latest at that moment, not today's.
--
-- Reads raw.* (the delivered rows with their landing day) and identity.customer_map (who
-- each source record is today). Each feature CTE returns its final columns; a customer
-- absent from one reads 0 / false there (predictions/snapshot.py fills them in), except
-- the `days_since_*`, `*_age_days` and `nps_*_score` columns, which stay NULL for "never".
-- The invoice CTEs (point_in_time_invoices.sql), the date and the rates file are filled
-- in by predictions/snapshot.py.
with {invoice_ctes},

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
        date_diff('day', max(paid_at) filter (where status = 'paid'), any_value(params.as_of_date)) as days_since_last_payment,
        date_diff('day', min(paid_at) filter (where status = 'paid'), any_value(params.as_of_date)) as days_since_first_payment,
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
        coalesce(sum(mrr_usd_cents) filter (where moment = 0 and status in ('active', 'past_due')), 0)
            - coalesce(sum(mrr_usd_cents) filter (
                where moment = 30 and status in ('active', 'past_due')
            ), 0) as mrr_change_30d_usd_cents,
        -- a live subscription that is not an explicitly free plan (an export without MRR counts)
        bool_or(status in ('trialing', 'active', 'past_due') and (mrr_cents is null or mrr_cents > 0)) filter (
            where moment = 0
        ) as is_subscribed,
        bool_or(status = 'trialing') filter (where moment = 0) as is_trialing,
        bool_or(status in ('past_due', 'unpaid')) filter (where moment = 0) as has_payment_problem,
        count(*) filter (where moment = 0 and status = 'canceled') as n_canceled_subscriptions,
        min(started_at) filter (where moment = 0) as first_subscription_started_at,
        date_diff('day', min(started_at) filter (where moment = 0), any_value(params.as_of_date)) as subscription_age_days
    from subscriptions_at, params
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

-- Each subscription's path to where it stands at the cutoff: a trial that converted, a
-- failed payment that was recovered, and when its latest change (after it started) was.
subscription_paths as (

    select
        customer_id,
        subscription_id,
        arg_max(status, updated_at) as current_status,
        bool_or(status = 'trialing') as was_trialing,
        bool_or(status in ('past_due', 'unpaid')) as had_payment_problem,
        count(distinct updated_at) as n_versions,
        max(updated_at) as last_changed_at
    from subscription_versions
    group by customer_id, subscription_id

),

subscription_path_features as (

    select
        customer_id,
        count(*) filter (
            where was_trialing and current_status in ('active', 'past_due')
        ) as n_converted_trials,
        count(*) filter (
            where had_payment_problem and current_status = 'active'
        ) as n_recovered_payments,
        date_diff(
            'day',
            max(last_changed_at) filter (
                where n_versions > 1 and current_status in ('trialing', 'active', 'past_due')
            ),
            any_value(params.as_of_date)
        ) as days_since_subscription_change
    from subscription_paths, params
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
    from {email_events_by_t} as events
    inner join email_contacts as contacts
        on contacts.contact_id = events.contact_id

),

-- One row per customer, campaign and event type: its latest time, and whether it happened
-- 31-90 days before the cutoff. The campaign counts below count these rows: the same
-- figures as distinct counts of campaign_id over every event, without seven distinct
-- aggregates over the whole history (most of what the email features cost).
email_campaign_events as (

    select
        customer_id,
        campaign_id,
        event_type,
        max(occurred_at) as last_occurred_at,
        bool_or(
            occurred_at >= params.cutoff - interval 90 day
            and occurred_at < params.cutoff - interval 30 day
        ) as happened_31_90d
    from email_events, params
    group by customer_id, campaign_id, event_type

),

email_features as (

    select
        customer_id,
        count(campaign_id) filter (where event_type = 'delivered') as email_delivered,
        count(campaign_id) filter (where event_type = 'open') as email_opened,
        count(campaign_id) filter (where event_type = 'click') as email_clicked,
        count(campaign_id) filter (
            where event_type = 'delivered' and last_occurred_at >= params.cutoff - interval 30 day
        ) as email_delivered_30d,
        count(campaign_id) filter (
            where event_type = 'open' and last_occurred_at >= params.cutoff - interval 30 day
        ) as email_opened_30d,
        count(campaign_id) filter (
            where event_type = 'open' and happened_31_90d
        ) as email_opened_31_90d,
        count(campaign_id) filter (
            where event_type = 'click' and last_occurred_at >= params.cutoff - interval 30 day
        ) as email_clicked_30d,
        bool_or(event_type in ('unsubscribe', 'spam_complaint')) as has_unsubscribed,
        date_diff(
            'day',
            max(last_occurred_at) filter (where event_type in ('open', 'click')),
            any_value(params.as_of_date)
        ) as days_since_email_engagement
    from email_campaign_events, params
    group by customer_id

),

{web_features},

-- Support load: tickets as they stood at the cutoff (the latest version of each).
support_requesters as (

    select source_record_id as ticket_id, customer_id from identity_map where source_system = 'support'

),

support_features as (

    select
        requesters.customer_id,
        count(*) as support_tickets,
        count(*) filter (where tickets.created_at >= params.cutoff - interval 30 day) as support_tickets_30d,
        count(*) filter (where lower(trim(tickets.status)) in ('new', 'open', 'pending')) as support_open_tickets,
        count(*) filter (where lower(trim(tickets.satisfaction)) = 'bad') as support_bad_ratings,
        date_diff('day', max(tickets.created_at), any_value(params.as_of_date)) as days_since_support_ticket,
        min(tickets.created_at) as first_ticket_at
    from {support_tickets_by_t} as tickets
    inner join support_requesters as requesters
        on requesters.ticket_id = tickets.ticket_id
    cross join params
    group by requesters.customer_id

),

-- NPS: survey responses submitted by the cutoff (first delivery of each), the latest score.
survey_respondents as (

    select source_record_id as response_id, customer_id from identity_map where source_system = 'survey'

),

nps_features as (

    select
        respondents.customer_id,
        count(*) as nps_responses,
        arg_max(responses.score, responses.submitted_at) as nps_latest_score,
        avg(responses.score) as nps_mean_score,
        min(responses.submitted_at) as first_response_at
    from {survey_responses_by_t} as responses
    inner join survey_respondents as respondents
        on respondents.response_id = responses.response_id
    group by respondents.customer_id

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
        union all
        select customer_id, first_ticket_at from support_features
        union all
        select customer_id, first_response_at from nps_features
    ) as sightings
    where first_seen_at is not null
    group by customer_id

)

select
    known.customer_id,
    params.as_of_date,
    date_diff('day', known.first_seen_at, params.as_of_date) as tenure_days,
    billing.* exclude (customer_id, first_paid_at),
    subs.* exclude (customer_id, first_subscription_started_at),
    changes.* exclude (customer_id),
    paths.* exclude (customer_id),
    email.* exclude (customer_id),
    web.* exclude (customer_id, first_web_seen_at),
    support.* exclude (customer_id, first_ticket_at),
    nps.* exclude (customer_id, first_response_at)
from known_customers as known
cross join params
left join billing_features as billing on billing.customer_id = known.customer_id
left join subscription_features as subs on subs.customer_id = known.customer_id
left join subscription_changes as changes on changes.customer_id = known.customer_id
left join subscription_path_features as paths on paths.customer_id = known.customer_id
left join email_features as email on email.customer_id = known.customer_id
left join web_features as web on web.customer_id = known.customer_id
left join support_features as support on support.customer_id = known.customer_id
left join nps_features as nps on nps.customer_id = known.customer_id
order by known.customer_id
