"""Model inputs derived from a snapshot: rates that compare across snapshot dates.

A snapshot taken 30 days into the loaded history has seen 30 days of email and web
activity; one taken after 120 days has seen 120. All-time counts would drift with the
date and a model trained on early snapshots would misread today's; so counts become
rates per 30 days over the days actually observed for that customer (the smaller of the
loaded history and their tenure), next to the fixed-width 30-day and 31-90-day windows.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

# Days without activity stand in for "never" (a missing recency) in tree and linear models.
NEVER_DAYS = 365.0

CHURN_FEATURES = [
    "tenure_days",
    "subscription_age_days",
    "mrr_usd_cents",
    "mrr_change_30d_usd_cents",
    "is_trialing",
    "has_payment_problem",
    "n_unpaid_invoices",
    "n_uncollectible_invoices",
    "n_canceled_subscriptions",
    "n_downgrades",
    "n_upgrades",
    # the subscription's path so far: a converted trial, a recovered payment, a recent change
    "n_converted_trials",
    "n_recovered_payments",
    "days_since_subscription_change",
    "payments_per_30d",
    "revenue_per_30d_usd_cents",
    "days_since_last_payment",
    "email_open_rate",
    "email_opens_per_30d",
    "email_clicks_per_30d",
    "email_opened_30d",
    "email_open_trend",
    "has_unsubscribed",
    "days_since_email_engagement",
    "web_sessions_per_30d",
    "web_sessions_30d",
    "web_session_trend",
    "web_page_views_per_30d",
    "days_since_web_visit",
    # raw engagement counts (what customer_360 shows), beside their rates
    "engagement_count",
    "engagement_count_rank",
    # engagement estimated from the evidence there is (shrunk to the average when thin)
    "email_engagement",
    "web_engagement",
    "has_email_deliveries",
    "has_web_activity",
    "engagement_estimate",
    # customer experience: support load and NPS
    "support_tickets_per_30d",
    "support_tickets_30d",
    "support_open_tickets",
    "support_bad_ratings",
    "nps_responses",
    "nps_latest_score",
    "is_nps_detractor",
    "is_nps_promoter",
]

LEAD_FEATURES = [
    # the naive count itself (web sessions + half the email opens, all-time, as
    # customer_360 shows them), its rank within the snapshot (immune to the history's
    # length), and its parts
    "engagement_count",
    "engagement_count_rank",
    "web_sessions",
    "email_opened",
    "engagement_count_per_30d",
    "web_sessions_per_30d",
    "web_sessions_30d",
    "web_page_views_per_30d",
    "web_cart_events_30d",
    "email_opens_per_30d",
    "email_clicks_per_30d",
    "email_open_rate",
    "has_signed_up",
    "has_billing_subscription",
    "is_trialing",
    "has_unsubscribed",
    "recently_on_web",
    "days_since_web_visit",
    "tenure_days",
    "support_tickets",
    "nps_latest_score",
    "email_engagement",
    "web_engagement",
    "has_email_deliveries",
    "has_web_activity",
    "engagement_estimate",
]


def observed_days(snapshot: pd.DataFrame, history_start: date) -> pd.Series:
    """Days of activity the snapshot could have seen for each customer (at least 1)."""
    as_of = pd.to_datetime(snapshot["as_of_date"])
    history = (as_of - pd.Timestamp(history_start)).dt.days + 1
    tenure = snapshot["tenure_days"].fillna(history)
    return np.maximum(1, np.minimum(history, tenure)).astype(float)


def naive_engagement_count(snapshot: pd.DataFrame) -> pd.Series:
    """The issue's naive lead score: web sessions plus half the campaigns opened."""
    return snapshot["web_sessions"] + 0.5 * snapshot["email_opened"]


# Prior strength of the shrunk engagement estimates: as many campaigns delivered, and as
# many web sessions, as an average customer's evidence must outweigh.
EMAIL_PRIOR_CAMPAIGNS = 4.0
WEB_PRIOR_SESSIONS = 2.0


def add_engagement_estimates(df: pd.DataFrame, days: pd.Series) -> None:
    """How engaged each customer is relative to the snapshot's average (1 = average), from
    the evidence there is, in place.

    A raw open rate reads a customer who was never sent a campaign as one who never opens,
    and a per-30-day session rate reads a customer whose device was never linked as one
    who never visits: both look disengaged. Shrinking to the average (a beta-binomial
    posterior mean for opens per delivered campaign, a gamma-Poisson one for sessions per
    observed day) lets thin evidence say little and no evidence say nothing; the
    `has_*` flags keep "no evidence" apart. `engagement_estimate` pools the two channels'
    logs, weighted by the evidence each one has.
    """
    delivered = df["email_delivered"].astype(float).fillna(0)
    opened = df["email_opened"].astype(float).fillna(0).clip(upper=delivered)
    open_rate = opened.sum() / delivered.sum() if delivered.sum() > 0 else 0.0
    if open_rate > 0:
        df["email_engagement"] = (
            (opened + EMAIL_PRIOR_CAMPAIGNS * open_rate) / (delivered + EMAIL_PRIOR_CAMPAIGNS)
        ) / open_rate
    else:
        df["email_engagement"] = 1.0
    sessions = df["web_sessions"].astype(float).fillna(0)
    on_web = sessions > 0
    session_rate = sessions[on_web].sum() / days[on_web].sum() if on_web.any() else 0.0
    if session_rate > 0:
        df["web_engagement"] = (sessions + WEB_PRIOR_SESSIONS) / (
            days * session_rate + WEB_PRIOR_SESSIONS
        )
    else:
        df["web_engagement"] = 1.0
    df["has_email_deliveries"] = delivered > 0
    df["has_web_activity"] = on_web
    email_weight = delivered * open_rate
    web_weight = np.where(on_web, sessions, 0.0)
    df["engagement_estimate"] = np.exp(
        (
            np.log(df["email_engagement"]) * email_weight
            + np.where(on_web, np.log(df["web_engagement"]), 0.0) * web_weight
        )
        / (email_weight + web_weight + 2.0)
    )


def add_model_features(snapshot: pd.DataFrame, history_start: date) -> pd.DataFrame:
    """The snapshot plus the derived columns CHURN_FEATURES and LEAD_FEATURES name."""
    df = snapshot.copy()
    days = observed_days(df, history_start)
    per_30d = 30.0 / days
    df["payments_per_30d"] = df["n_paid_invoices"] * per_30d
    df["revenue_per_30d_usd_cents"] = df["revenue_usd_cents"] * per_30d
    df["email_opens_per_30d"] = df["email_opened"] * per_30d
    df["email_clicks_per_30d"] = df["email_clicked"] * per_30d
    df["email_open_rate"] = np.where(
        df["email_delivered"] > 0, df["email_opened"] / df["email_delivered"].clip(lower=1), 0.0
    )
    df["email_open_trend"] = df["email_opened_30d"] - df["email_opened_31_90d"] / 2.0
    df["web_sessions_per_30d"] = df["web_sessions"] * per_30d
    df["web_page_views_per_30d"] = df["web_page_views"] * per_30d
    df["web_session_trend"] = df["web_sessions_30d"] - df["web_sessions_31_90d"] / 2.0
    add_engagement_estimates(df, days)
    for column in (
        "days_since_last_payment",
        "days_since_email_engagement",
        "days_since_web_visit",
        "days_since_subscription_change",
        "subscription_age_days",
    ):
        df[column] = df[column].astype(float).fillna(NEVER_DAYS).clip(upper=NEVER_DAYS)
    df["tenure_days"] = df["tenure_days"].astype(float).fillna(0).clip(lower=0)
    df["has_billing_subscription"] = df["n_subscriptions"] > 0
    df["recently_on_web"] = df["days_since_web_visit"] <= 14
    # The naive lead score (sessions + half the opens) as a rate, so that the model can
    # always reproduce it and does not drift with the length of the history.
    df["engagement_count"] = naive_engagement_count(df)
    df["engagement_count_per_30d"] = df["engagement_count"] * per_30d
    df["engagement_count_rank"] = df["engagement_count"].rank(pct=True)
    df["support_tickets_per_30d"] = df["support_tickets"] * per_30d
    # NPS: no answer reads as a passive 7.5 (between the detractor and promoter bands)
    answered = df["nps_latest_score"].notna()
    df["is_nps_detractor"] = answered & (df["nps_latest_score"] <= 6)
    df["is_nps_promoter"] = answered & (df["nps_latest_score"] >= 9)
    df["nps_latest_score"] = df["nps_latest_score"].astype(float).fillna(7.5)
    for column in set(CHURN_FEATURES + LEAD_FEATURES):
        df[column] = df[column].astype(float).fillna(0.0)
    return df


__all__ = [
    "CHURN_FEATURES",
    "LEAD_FEATURES",
    "add_engagement_estimates",
    "add_model_features",
    "naive_engagement_count",
    "observed_days",
]
