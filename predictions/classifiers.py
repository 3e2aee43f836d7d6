"""Churn propensity and lead score: scikit-learn classifiers and their naive baselines.

Each model is the average of two calibrated classifiers' probabilities (a soft vote;
which of the two is better alone changes from one data set to the next):

- logistic regression on signed log(1 + |x|) of every feature, standardised, with L2
  regularisation (C = 0.1): robust with a few hundred positives, calibrated by construction;
- histogram gradient boosting (shallow trees, strong regularisation), calibrated with
  Platt scaling over 3 folds: catches interactions when there is data enough for them.

Churn's baseline is recency alone (days since the last payment: the longer, the likelier
to churn); the lead score's is the naive count, web sessions + half the campaigns opened.
The lead features include that count (raw, as a rate and as a rank), and the lead score
has a second candidate, the count alone, calibrated: the two are compared out of time
inside the training data (fitted on the older snapshots, AUC on the newest) and the
winner is refitted on all of them, so the lead score does not rank worse than the count
it must beat where the training data can tell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from predictions.features import CHURN_FEATURES, LEAD_FEATURES, naive_engagement_count

# scikit-learn is imported where a model is built or compared, not with this module: the
# demo's short history trains none, and a `cdp run` then skips its import (~0.3-0.7 CPU
# s). A pickled model imports it when it is loaded.

RANDOM_STATE = 13
# Below this many positives or negatives in the training rows a model is not fitted.
MIN_CLASS_ROWS = 10
# From this many rows on, a prediction uses every core (see FittedClassifier.predict).
PARALLEL_PREDICT_ROWS = 20_000


class NotEnoughExamples(ValueError):
    """Too few positive or negative training rows to fit a classifier."""


@dataclass
class FittedClassifier:
    """A fitted scikit-learn estimator with the feature columns it reads."""

    name: str
    features: list[str]
    estimator: object
    kind: str = "logistic_regression_and_boosting"
    # AUC of each candidate on the newest training snapshot (empty when not compared).
    selection_auc: dict = None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if frame.empty:
            return np.zeros(0)
        # Scoring tens of thousands of rows, the boosted trees' OpenMP threads pay off
        # (nothing else runs beside the scoring step); on a backtest's few thousand they
        # cost more than they save.
        threads = None if len(frame) >= PARALLEL_PREDICT_ROWS else 1
        with threadpool_limits(limits=threads, user_api="openmp"):
            return self.estimator.predict_proba(frame[self.features].to_numpy(float))[:, 1]


def _check_classes(y: np.ndarray, what: str) -> None:
    positives = int(y.sum())
    negatives = int(len(y) - positives)
    if min(positives, negatives) < MIN_CLASS_ROWS:
        raise NotEnoughExamples(
            f"{what}: {positives} positive and {negatives} negative training rows; "
            f"at least {MIN_CLASS_ROWS} of each are needed"
        )


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """log(1 + |x|) with the sign of x: tames counts and amounts, keeps decreases negative."""
    return np.sign(x) * np.log1p(np.abs(x))


def _logistic(c: float = 0.1) -> object:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return make_pipeline(
        FunctionTransformer(signed_log1p),
        StandardScaler(),
        LogisticRegression(C=c, max_iter=3000),
    )


def _boosting(y: np.ndarray) -> object:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier

    boosting = HistGradientBoostingClassifier(
        max_depth=3,
        learning_rate=0.05,
        max_iter=150,
        min_samples_leaf=30,
        l2_regularization=1.0,
        random_state=RANDOM_STATE,
    )
    folds = max(2, min(3, int(y.sum()) // 5))
    return CalibratedClassifierCV(boosting, method="sigmoid", cv=folds)


class AveragedProbabilities:
    """The mean of several calibrated classifiers' probabilities (a plain soft vote).

    Logistic regression and boosted trees err differently -- one misses interactions, the
    other chases noise in a few hundred positives -- and which does better changes from
    one data set to the next; their average is rarely worse than the better of the two
    and stays calibrated, since each member is.
    """

    def __init__(self, members: list):
        self.members = members

    def fit(self, x: np.ndarray, y: np.ndarray) -> AveragedProbabilities:
        for member in self.members:
            member.fit(x, y)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.mean([member.predict_proba(x) for member in self.members], axis=0)


def _averaged(y: np.ndarray) -> AveragedProbabilities:
    return AveragedProbabilities([_logistic(), _boosting(y)])


CANDIDATES = {"logistic_regression_and_boosting": _averaged}
# The lead score also weighs the naive count alone, calibrated (monotone, so it ranks
# exactly as the count does): when the richer models do not beat it out of time on the
# training data, the count is what the data supports, and the model says so.
NAIVE_LEAD_CANDIDATE = "naive_count_calibrated"
CANDIDATE_COLUMNS = {NAIVE_LEAD_CANDIDATE: ["engagement_count"]}


def _fit_estimator(kind: str, x: np.ndarray, y: np.ndarray) -> object:
    estimator = _logistic(1.0) if kind == NAIVE_LEAD_CANDIDATE else CANDIDATES[kind](y)
    # Thousands of rows: OpenMP threads cost more in start-up and contention (the machine
    # runs dbt and DuckDB too) than they save; one thread fits in about a second.
    with threadpool_limits(limits=1, user_api="openmp"):
        estimator.fit(x, y)
    return estimator


def _choose_and_fit(
    name: str, examples: pd.DataFrame, label: str, features: list[str], kinds: list[str]
):
    """Pick the candidate with the better AUC on the newest training snapshot (fitted on
    the older ones), then refit it on every training row."""
    from sklearn.metrics import roc_auc_score

    y = examples[label].to_numpy(bool)
    _check_classes(y, name)
    columns = {kind: CANDIDATE_COLUMNS.get(kind, list(features)) for kind in kinds}
    newest = (examples["as_of_date"] == examples["as_of_date"].max()).to_numpy()
    chosen, scores = kinds[0], {}
    older_y, newest_y = y[~newest], y[newest]
    if (
        len(kinds) > 1
        and min(older_y.sum(), (~older_y).sum()) >= MIN_CLASS_ROWS
        and 0 < newest_y.sum() < len(newest_y)
    ):
        for kind in kinds:
            x = examples[columns[kind]].to_numpy(float)
            estimator = _fit_estimator(kind, x[~newest], older_y)
            with threadpool_limits(limits=1, user_api="openmp"):
                p = estimator.predict_proba(x[newest])[:, 1]
            scores[kind] = float(roc_auc_score(newest_y, p))
        chosen = max(scores, key=scores.get)
    x = examples[columns[chosen]].to_numpy(float)
    return FittedClassifier(name, columns[chosen], _fit_estimator(chosen, x, y), chosen, scores)


def fit_churn_model(examples: pd.DataFrame) -> FittedClassifier:
    return _choose_and_fit("churn", examples, "churned", CHURN_FEATURES, list(CANDIDATES))


def fit_lead_model(examples: pd.DataFrame) -> FittedClassifier:
    return _choose_and_fit(
        "lead_score", examples, "converted", LEAD_FEATURES, [*CANDIDATES, NAIVE_LEAD_CANDIDATE]
    )


def churn_baseline(frame: pd.DataFrame) -> np.ndarray:
    """Recency alone: days since the last payment (never paid counts as long ago)."""
    return frame["days_since_last_payment"].to_numpy(float)


def lead_baseline(frame: pd.DataFrame) -> np.ndarray:
    return naive_engagement_count(frame).to_numpy(float)


__all__ = [
    "FittedClassifier",
    "NotEnoughExamples",
    "churn_baseline",
    "fit_churn_model",
    "fit_lead_model",
    "lead_baseline",
]
