"""Out-of-time backtest metrics: how a model ranks what really happened next, beside a
naive baseline, so a reader sees the lift (or its absence)."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score


def auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC; None when the test rows hold only one class (AUC is undefined)."""
    y = np.asarray(y, bool)
    if y.all() or not y.any():
        return None
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
    return float(brier_score_loss(y, np.clip(np.asarray(probability, float), 0, 1)))


def classifier_metrics(y, model_probability, baseline_score, base_rate: float) -> dict:
    """AUC, precision at the top decile and Brier for a model and its baseline.

    The baseline is a ranking, not a probability; its Brier is that of the training base
    rate predicted for everyone (what a model with no information scores).
    """
    y = np.asarray(y, bool)
    return {
        "auc": auc(y, model_probability),
        "precision_at_top_decile": precision_at_top_decile(y, model_probability),
        "brier": brier(y, model_probability),
        "baseline_auc": auc(y, baseline_score),
        "baseline_precision_at_top_decile": precision_at_top_decile(y, baseline_score),
        "baseline_brier": brier(y, np.full(len(y), base_rate)),
    }


def _rounded(metrics: dict) -> dict:
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in metrics.items()}


def worse_than_baseline(model_name: str, metrics: dict) -> bool | None:
    """Whether the model lost to its baseline on its headline metric (None: not measured)."""
    if model_name in ("churn", "lead_score"):
        a, b = metrics.get("auc"), metrics.get("baseline_auc")
        return None if a is None or b is None else a < b
    if model_name == "clv":
        # CLV is an expected value, and squared error is the loss an expectation minimises
        # (absolute error rewards predicting the median, which is 0 for sparse purchases).
        a, b = metrics.get("rmse_usd_cents"), metrics.get("baseline_rmse_usd_cents")
        return None if a is None or b is None else a > b
    if model_name == "next_best_product":
        a, b = metrics.get("hit_rate_at_1"), metrics.get("baseline_hit_rate_at_1")
        return None if a is None or b is None else a < b
    raise ValueError(f"unknown model {model_name!r}")


__all__ = [
    "auc",
    "brier",
    "classifier_metrics",
    "precision_at_top_decile",
    "worse_than_baseline",
]
