"""Predictive customer lifetime value: one-off purchases by BG/NBD + Gamma-Gamma
(`lifetimes`), recurring revenue by MRR x survival from the churn model.

    predicted revenue over n months =
        E[one-off purchases in n months]   (BG/NBD, per customer)
      x E[value of a purchase]             (Gamma-Gamma, shrunk to the population mean)
      + current MRR x sum_{k=1..n} (1 - p)^k

each part scaled by a weight learnt on the training snapshots (calibrate_revenue_weights):
what billing really collected after them, by least squares.

where p is the customer's churn probability over the next 30 days (read as a constant
monthly hazard). Subscription invoices are left out of BG/NBD: their timing is the
billing cycle, not buying behaviour. When there are too few repeat one-off buyers to fit
BG/NBD (fewer than MIN_REPEAT_BUYERS), one-off revenue is projected at each customer's own
run rate instead, and the method says so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pandas as pd

MIN_REPEAT_BUYERS = 20
DAYS_PER_MONTH = 30

TRANSACTIONS_SQL = """
with {invoice_ctes}
select customer_id, cast(paid_at as date) as paid_date, net_paid_usd_cents as net_usd_cents
from invoices
where status = 'paid' and subscription_id is null
"""


def one_off_transactions(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    """Paid one-off invoices (no subscription) by the end of `as_of`: the BG/NBD input."""
    from predictions.snapshot import point_in_time_sql

    return con.execute(point_in_time_sql(TRANSACTIONS_SQL, as_of)).df()


@dataclass
class TransactionalModel:
    """Fitted BG/NBD + Gamma-Gamma, or the run-rate fallback with the reason for it."""

    method: str
    reason: str | None
    # Fitted parameters (r, alpha, a, b and p, q, v): the fitters themselves do not pickle.
    bgf_params: dict | None = None
    ggf_params: dict | None = None

    def expected_purchases(
        self, t: float, frequency: pd.Series, recency: pd.Series, age: pd.Series
    ) -> pd.Series:
        """BG/NBD's expected repeat purchases in the next `t` days (equation 10 of Fader,
        Hardie and Lee 2005), as `BetaGeoFitter.conditional_expected_number_of_purchases_
        up_to_time` computes it (tests/predictions compare the two). Written out here, so
        that scoring needs scipy's hypergeometric function, not `lifetimes` (whose import
        pulls in scipy.stats and autograd, ~0.6-1.1 s a night); fitting still uses it."""
        from scipy.special import hyp2f1

        p = self.bgf_params
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        x = frequency
        _a = r + x
        _b = b + x
        _c = a + b + x - 1
        _z = t / (alpha + age + t)
        ln_hyp_term = np.log(hyp2f1(_a, _b, _c, _z))
        # where it overflows, the equivalent form lifetimes falls back to
        ln_hyp_term_alt = np.log(hyp2f1(_c - _a, _c - _b, _c, _z)) + (_c - _a - _b) * np.log(1 - _z)
        ln_hyp_term = np.where(np.isinf(ln_hyp_term), ln_hyp_term_alt, ln_hyp_term)
        first_term = (a + b + x - 1) / (a - 1)
        second_term = 1 - np.exp(ln_hyp_term + (r + x) * np.log((alpha + age) / (alpha + t + age)))
        numerator = first_term * second_term
        denominator = 1 + (x > 0) * (a / (b + x - 1)) * ((alpha + age) / (alpha + recency)) ** (
            r + x
        )
        return numerator / denominator

    def expected_order_value(self, frequency: pd.Series, monetary_value: pd.Series) -> pd.Series:
        """Gamma-Gamma's expected spend per purchase, as `GammaGammaFitter.conditional_
        expected_average_profit` computes it: the customer's mean repeat spend weighed
        against the population's by how many repeat purchases back it."""
        p, q, v = self.ggf_params["p"], self.ggf_params["q"], self.ggf_params["v"]
        individual_weight = p * frequency / (p * frequency + q - 1)
        population_mean = v * p / (q - 1)
        return (1 - individual_weight) * population_mean + individual_weight * monetary_value

    def expected_revenue(
        self,
        transactions: pd.DataFrame,
        as_of: date,
        customers: pd.Index,
        days: int,
        observed_days: int,
    ) -> pd.Series:
        """Expected one-off revenue (USD cents) of `customers` over the next `days`, given
        `observed_days` of loaded purchase history up to `as_of`."""
        summary = _rfm_summary(transactions, as_of)
        out = pd.Series(0.0, index=customers)
        if summary.empty:
            return out
        if self.bgf_params is None:
            rate = summary["total_usd_cents"] / max(observed_days, 1)
            projected = rate * days
        else:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                purchases = self.expected_purchases(
                    days, summary["frequency"], summary["recency"], summary["T"]
                )
                if self.ggf_params is not None:
                    value = self.expected_order_value(
                        summary["frequency"], summary["monetary_value"].clip(lower=1)
                    )
                else:
                    value = _shrunk_order_value(summary)
            projected = purchases * value
        projected = projected.replace([np.inf, -np.inf], np.nan).fillna(0).clip(lower=0)
        return out.add(projected.reindex(customers).fillna(0), fill_value=0)


def _rfm_summary(transactions: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """frequency / recency / T (days) and mean repeat value per customer, lifetimes-style.

    The figures of `lifetimes.utils.summary_data_from_transaction_data(..., freq="D")`
    (tests/predictions compare the two), computed here: importing `lifetimes` pulls in
    scipy.stats and autograd (~1.1 s), which a night whose model is the run rate, with no
    BG/NBD fitted, does not otherwise need.
    """
    columns = ["frequency", "recency", "T", "monetary_value", "total_usd_cents"]
    if transactions.empty:
        return pd.DataFrame(columns=columns)
    tx = transactions.copy()
    tx["paid_date"] = pd.to_datetime(tx["paid_date"])
    daily = tx.groupby(["customer_id", "paid_date"], as_index=False)["net_usd_cents"].sum()
    end = pd.Timestamp(as_of)
    # a purchase day per row, the customer's first day first (lifetimes' "first" purchase)
    known = daily[daily["paid_date"] <= end].sort_values(["customer_id", "paid_date"])
    by_customer = known.groupby("customer_id", sort=True)
    days = by_customer["paid_date"].agg(["min", "max", "count"])
    summary = pd.DataFrame(index=days.index)
    summary["frequency"] = days["count"] - 1
    summary["recency"] = (days["max"] - days["min"]) / np.timedelta64(1, "D")
    summary["T"] = (end - days["min"]) / np.timedelta64(1, "D")
    repeats = known["net_usd_cents"].where(by_customer.cumcount() > 0)
    summary["monetary_value"] = repeats.groupby(known["customer_id"]).mean().fillna(0)
    summary = summary.astype(float)
    summary["total_usd_cents"] = daily.groupby("customer_id")["net_usd_cents"].sum()
    return summary


def fit_transactional_model(transactions: pd.DataFrame, as_of: date) -> TransactionalModel:
    summary = _rfm_summary(transactions, as_of)
    repeaters = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if len(repeaters) < MIN_REPEAT_BUYERS:
        return TransactionalModel(
            method="run rate (one-off revenue per day of loaded history x days)",
            reason=(
                f"{len(repeaters)} repeat one-off buyers by {as_of}; BG/NBD + Gamma-Gamma "
                f"needs at least {MIN_REPEAT_BUYERS}"
            ),
        )
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bgf = BetaGeoFitter(penalizer_coef=0.01)
            bgf.fit(summary["frequency"], summary["recency"], summary["T"])
            ggf = GammaGammaFitter(penalizer_coef=0.01)
            ggf.fit(repeaters["frequency"], repeaters["monetary_value"])
    except Exception as error:  # lifetimes raises ConvergenceError and plain ValueErrors
        return TransactionalModel(
            method="run rate (one-off revenue per day of loaded history x days)",
            reason=f"BG/NBD + Gamma-Gamma did not converge: {type(error).__name__}",
        )
    bgf_params = {k: float(v) for k, v in bgf.params_.items()}
    ggf_params = {k: float(v) for k, v in ggf.params_.items()}
    if ggf_params["q"] <= 1:
        # Gamma-Gamma's expected spend is p(v + x m) / (p x + q - 1): with q <= 1 the
        # spend distribution has no mean and the formula breaks down.
        return TransactionalModel(
            method="BG/NBD (lifetimes) x average order value shrunk to the population mean",
            reason=(
                f"Gamma-Gamma fitted q = {ggf_params['q']:.2f} <= 1 (spend per order too "
                "heterogeneous for it); order values are shrunk means instead"
            ),
            bgf_params=bgf_params,
        )
    return TransactionalModel(
        method="BG/NBD + Gamma-Gamma (lifetimes)",
        reason=None,
        bgf_params=bgf_params,
        ggf_params=ggf_params,
    )


def _shrunk_order_value(summary: pd.DataFrame, prior_orders: float = 2.0) -> pd.Series:
    """Each customer's mean order value pulled towards the population's, weighted by
    how many orders back it (prior_orders pseudo-orders at the population mean)."""
    orders = summary["frequency"] + 1
    own_mean = summary["total_usd_cents"] / orders
    population = summary["total_usd_cents"].sum() / max(orders.sum(), 1)
    return (own_mean * orders + population * prior_orders) / (orders + prior_orders)


def subscription_revenue(
    mrr_usd_cents: np.ndarray, churn_probability: np.ndarray, months: int
) -> np.ndarray:
    """MRR x expected months paid out of the next `months`, at a constant monthly churn hazard."""
    survive = 1.0 - np.clip(np.nan_to_num(churn_probability, nan=0.0), 0.0, 1.0)
    paying_months = sum(survive**k for k in range(1, months + 1))
    return np.asarray(mrr_usd_cents, float) * paying_months


def calibrate_revenue_weights(parts: pd.DataFrame, realised: pd.Series) -> tuple[float, float]:
    """Non-negative weights (subscription, one-off) that best turn the two parts into the
    revenue that was realised after the training snapshots (least squares).

    The parts are models of different things -- a survival curve times MRR, and BG/NBD x
    Gamma-Gamma fitted on a short window, which tends to overshoot -- and neither knows
    how much billing really collects (payment failures, invoice timing). One weight each,
    learnt out of sample of the scoring date, corrects their level without touching how
    they rank customers. Falls back to (1, 1) when there is nothing to learn from.
    """
    from scipy.optimize import nnls

    x = parts[["subscription", "transactional"]].to_numpy(float)
    y = realised.to_numpy(float)
    usable = x.any(axis=0)
    if len(y) == 0 or not usable.any() or not np.isfinite(x).all():
        return (1.0, 1.0)
    weights = np.ones(2)
    weights[usable], _ = nnls(x[:, usable], y)
    return (float(weights[0]), float(weights[1]))


__all__ = [
    "TransactionalModel",
    "calibrate_revenue_weights",
    "fit_transactional_model",
    "one_off_transactions",
    "subscription_revenue",
]
