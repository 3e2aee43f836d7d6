"""What happened after a snapshot date: the labels the models learn and are tested on.

Every outcome compares the snapshot at T with the snapshot at T + horizon, both built by
the same point-in-time SQL, so a label uses exactly the rows delivered by T + horizon.

- churn (population: customers with a paying subscription at T -- trialing, active or
  past_due, not an explicitly free plan (MRR 0)): churned = at T + horizon they have none (every subscription
  canceled, unpaid or gone). One-off buyers are not in this population: when they will
  buy again is what the CLV model's BG/NBD part predicts.
- first payment (population: known people with no paid invoice by T): converted = a
  paid invoice by T + horizon.
- revenue: net paid revenue (USD cents) in (T, T + horizon].
- new products: products paid for in (T, T + horizon] that were not paid for by T.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import pandas as pd

from predictions.features import add_model_features
from predictions.snapshot import History, build_snapshot, products_owned
from predictions.web_state import WEB_FEATURES_FROM_STATE

HORIZON_DAYS = 30


@dataclass
class SnapshotCache:
    """Snapshots (with model features) and product ownership per date, computed once.

    The snapshot of `web_state_day` reads its web features from the web state
    (predictions/web_state.py), which the caller refreshed to that date."""

    con: duckdb.DuckDBPyConnection
    history: History
    web_state_day: date | None = None
    _snapshots: dict[date, pd.DataFrame] = field(default_factory=dict)
    _products: dict[date, pd.DataFrame] = field(default_factory=dict)
    _transactions: dict[date, pd.DataFrame] = field(default_factory=dict)

    def _cached(self, store: dict, day: date, build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        if day not in store:
            store[day] = build()
        return store[day]

    def snapshot(self, day: date) -> pd.DataFrame:
        return self._cached(
            self._snapshots,
            day,
            lambda: add_model_features(
                build_snapshot(
                    self.con,
                    day,
                    web_features=WEB_FEATURES_FROM_STATE if day == self.web_state_day else None,
                ),
                self.history.first_day,
            ),
        )

    def products(self, day: date) -> pd.DataFrame:
        return self._cached(self._products, day, lambda: products_owned(self.con, day))

    def transactions(self, day: date) -> pd.DataFrame:
        from predictions.clv import one_off_transactions

        return self._cached(self._transactions, day, lambda: one_off_transactions(self.con, day))


def _later(cache: SnapshotCache, day: date, horizon: int) -> pd.DataFrame:
    return cache.snapshot(day + timedelta(days=horizon)).set_index("customer_id")


def churn_examples(cache: SnapshotCache, day: date, horizon: int = HORIZON_DAYS) -> pd.DataFrame:
    """Paying subscribers at `day` with `churned` (bool) over the next `horizon` days."""
    now = cache.snapshot(day)
    now = now[now["is_subscribed"] > 0].copy()
    later = _later(cache, day, horizon)
    still = later["is_subscribed"].reindex(now["customer_id"]).fillna(0).to_numpy() > 0
    now["churned"] = ~still
    return now


def lead_examples(cache: SnapshotCache, day: date, horizon: int = HORIZON_DAYS) -> pd.DataFrame:
    """People with no payment by `day`, with `converted` (bool): a first payment within `horizon`."""
    now = cache.snapshot(day)
    now = now[now["n_paid_invoices"] == 0].copy()
    later = _later(cache, day, horizon)
    paid = later["n_paid_invoices"].reindex(now["customer_id"]).fillna(0).to_numpy()
    now["converted"] = paid > 0
    return now


def realised_revenue(cache: SnapshotCache, day: date, horizon: int = HORIZON_DAYS) -> pd.Series:
    """Net revenue (USD cents) each customer of the snapshot at `day` paid in the next `horizon` days."""
    now = cache.snapshot(day).set_index("customer_id")["revenue_usd_cents"]
    later = _later(cache, day, horizon)["revenue_usd_cents"].reindex(now.index).fillna(0)
    return (later - now).clip(lower=0)


def new_products(cache: SnapshotCache, day: date, horizon: int = HORIZON_DAYS) -> pd.DataFrame:
    """(customer_id, product) pairs first paid for in (day, day + horizon]."""
    before = cache.products(day)[["customer_id", "product"]]
    after = cache.products(day + timedelta(days=horizon))[["customer_id", "product"]]
    merged = after.merge(before, how="left", on=["customer_id", "product"], indicator=True)
    return merged.loc[merged["_merge"] == "left_only", ["customer_id", "product"]]


__all__ = [
    "HORIZON_DAYS",
    "SnapshotCache",
    "churn_examples",
    "lead_examples",
    "new_products",
    "realised_revenue",
]
