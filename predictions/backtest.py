"""Out-of-time backtest metrics: how a model ranks what really happened next, beside a
naive baseline, so a reader sees the lift (or its absence)."""

from __future__ import annotations

import math

import numpy as np

# scikit-learn's metrics are imported by the functions that use them (see classifiers.py).


def auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC; None when the test rows hold only one class (AUC is undefined)."""
    y = np.asarray(y, bool)
    if y.all() or not y.any():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, np.nan_to_num(np.asarray(score, float), nan=-np.inf)))


def precision_at_top_decile(y: np.ndarray, score: np.ndarray) -> float | None:
    """Share of positives among the 10% highest scores (ties broken by row order)."""
    y = np.asarray(y, bool)
    if len(y) == 0:
        return None
    k = max(1, math.ceil(len(y) / 10))
    order = np.argsort(-np.nan_to_num(np.asarray(score, float), nan=-np.inf), kind="stable")
    return float(y[order[:k]].mean())


def brier(y: np.ndarray, probability: np.ndarray) -> float | None:
    y = np.asarray(y, bool)
    if len(y) == 0:
        return None
    from sklearn.metrics import brier_score_loss

    return float(brier_score_loss(y, np.clip(np.asarray(probability, float), 0, 1)))


def classifier_metrics(y, model_probability, baseline_score, base_rate: float) -> dict:
    """AUC, precision at the top decile and Brier for a model and its baseline, and the
    AUC lift with its bootstrap interval.

    The baseline is a ranking, not a probability; its Brier is that of the training base
    rate predicted for everyone (what a model with no information scores).
    """
    y = np.asarray(y, bool)
    model_auc, baseline_auc = auc(y, model_probability), auc(y, baseline_score)
    lift = None if model_auc is None or baseline_auc is None else model_auc - baseline_auc
    return {
        **lift_metrics(lift, auc_lift_interval(y, model_probability, baseline_score)),
        "auc": model_auc,
        "precision_at_top_decile": precision_at_top_decile(y, model_probability),
        "brier": brier(y, model_probability),
        "baseline_auc": baseline_auc,
        "baseline_precision_at_top_decile": precision_at_top_decile(y, baseline_score),
        "baseline_brier": brier(y, np.full(len(y), base_rate)),
    }


def _rounded(metrics: dict) -> dict:
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in metrics.items()}


# The lift's confidence interval: a paired bootstrap over the test rows. 1,000 resamples
# keep the interval's ends stable to about 0.002 AUC and take well under a second.
BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95
BOOTSTRAP_SEED = 2026


def _resampled_auc(score: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC of `score` under each row of `weights` (resamples x rows: how often each test
    row was drawn): the Mann-Whitney statistic with weighted rows, ties counting half.

    One sort serves every resample: rows with equal scores form contiguous groups, and a
    positive beats the negative weight of the groups below its own.
    """
    order = np.argsort(score, kind="stable")
    sorted_score = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])
    w = weights[:, order]
    positive = y[order]
    pos = np.add.reduceat(np.where(positive, w, 0), starts, axis=1)
    neg = np.add.reduceat(np.where(positive, 0, w), starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    wins = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    return wins / (pos.sum(axis=1) * neg.sum(axis=1))


def _interval(values: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def auc_lift_interval(
    y, model_score, baseline_score, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float] | None:
    """95% interval of AUC(model) - AUC(baseline): a paired bootstrap that resamples the
    positives and the negatives of the test rows separately (every resample keeps both
    classes, in the test's proportions) and scores both rankings on the same rows."""
    y = np.asarray(y, bool)
    if y.all() or not y.any():
        return None
    model = np.nan_to_num(np.asarray(model_score, float), nan=-np.inf)
    baseline = np.nan_to_num(np.asarray(baseline_score, float), nan=-np.inf)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    weights = np.zeros((resamples, len(y)))
    for members in (np.flatnonzero(y), np.flatnonzero(~y)):
        weights[:, members] = rng.multinomial(
            len(members), np.full(len(members), 1 / len(members)), size=resamples
        )
    lifts = _resampled_auc(model, y, weights) - _resampled_auc(baseline, y, weights)
    return _interval(lifts)


def mean_lift_interval(
    model_values,
    baseline_values,
    *,
    lower_is_better: bool,
    root: bool = False,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> tuple[float, float] | None:
    """95% interval of the lift of a per-row mean (model over baseline, positive = model
    better): squared errors with `root=True` give an RMSE lift, hits a hit-rate lift.
    A paired bootstrap: both are averaged over the same resampled test rows."""
    model_values = np.asarray(model_values, float)
    baseline_values = np.asarray(baseline_values, float)
    if len(model_values) == 0:
        return None
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    rows = rng.integers(0, len(model_values), (resamples, len(model_values)))
    model, base = model_values[rows].mean(axis=1), baseline_values[rows].mean(axis=1)
    if root:
        model, base = np.sqrt(model), np.sqrt(base)
    return _interval(base - model if lower_is_better else model - base)


def lift_metrics(lift: float | None, interval: tuple[float, float] | None) -> dict:
    """`lift` (how much better than its baseline the model is on its headline metric --
    AUC, RMSE, hit rate; positive = better) and the ends of its 95% bootstrap interval."""
    low, high = interval if interval is not None else (None, None)
    return {"lift": lift, "lift_ci_low": low, "lift_ci_high": high}


def worse_than_baseline(model_name: str, metrics: dict) -> bool | None:
    """Whether the model is really worse than its baseline: the whole 95% interval of its
    lift lies below zero (None: not measured).

    A backtest month holds a few dozen churners or converters, so two rankings 0.01 AUC
    apart are a coin toss; a point estimate a hair below the baseline is noise, not a
    regression, and the check that reads this must not cry wolf on it.
    """
    if model_name not in ("churn", "lead_score", "clv", "next_best_product"):
        raise ValueError(f"unknown model {model_name!r}")
    high = metrics.get("lift_ci_high")
    if high is None or (isinstance(high, float) and math.isnan(high)):
        return None
    return bool(high < 0)


def behind_baseline(metrics: dict) -> bool | None:
    """The point estimate of the lift is below zero (within the noise or not)."""
    lift = metrics.get("lift")
    if lift is None or (isinstance(lift, float) and math.isnan(lift)):
        return None
    return bool(lift < 0)


__all__ = [
    "auc",
    "auc_lift_interval",
    "behind_baseline",
    "lift_metrics",
    "mean_lift_interval",
    "brier",
    "classifier_metrics",
    "precision_at_top_decile",
    "worse_than_baseline",
]
