"""Train with an out-of-time backtest, score, and write the results to the warehouse.

Dates (H = horizon, 30 days; a 15-day grid counted back from the scoring date T):

    backtest:   train on snapshots at T-2H, T-2H-15, ... (labels end by T-H),
                test on the snapshot at T-H against what happened in (T-H, T]
    production: train on snapshots at T-H, T-H-15, ... (labels end by T), score at T

Only snapshots with at least `min_history_days` of loaded history before them are used.
When the history is too short for a backtest (or a model has too few examples), the
model_performance row says so in `status` and `reason` and its metrics are NULL.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from predictions import backtest as bt
from predictions.classifiers import (
    FittedClassifier,
    NotEnoughExamples,
    churn_baseline,
    fit_churn_model,
    fit_lead_model,
    lead_baseline,
)
from predictions.clv import (
    TransactionalModel,
    calibrate_revenue_weights,
    fit_transactional_model,
    subscription_revenue,
)
from predictions.features import CHURN_FEATURES, LEAD_FEATURES
from predictions.next_product import NextProductModel, fit_next_product
from predictions.outcomes import (
    SnapshotCache,
    churn_examples,
    lead_examples,
    new_products,
    realised_revenue,
)
from predictions.snapshot import History, loaded_history
from predictions.web_state import Refresh
from warehouse_engine.catalog import table_exists

MODEL_NAMES = ("churn", "lead_score", "clv", "next_best_product")
SCHEMA = "predictions"
BUNDLE_FILE = "models.pkl"
# Bump when the bundle's contents change shape: older bundles are then retrained, not loaded.
BUNDLE_FORMAT = 3


@dataclass(frozen=True)
class PredictionSettings:
    horizon_days: int = 30
    step_days: int = 15
    min_history_days: int = 14
    max_training_dates: int = 6
    clv_months: int = 12


@dataclass
class TrainedModels:
    """Everything scoring needs, pickled into the model folder (owner-only)."""

    model_version: str
    trained_at: datetime
    training_end: date  # labels of the training rows end here (the scoring date at training)
    training_dates: list[date]
    churn: FittedClassifier | None
    lead: FittedClassifier | None
    transactional: TransactionalModel
    next_product: NextProductModel | None
    pooled_monthly_churn: float
    reasons: dict[str, str] = field(default_factory=dict)
    # Weights of the two CLV parts (subscription, one-off), learnt on the training
    # snapshots' realised revenue (predictions.clv.calibrate_revenue_weights).
    clv_weights: tuple[float, float] = (1.0, 1.0)
    # The backtest rows of this training run, kept with the bundle so that a warehouse
    # that lost them (a run rolled back after training) can be given them again.
    performance: pd.DataFrame | None = None
    bundle_format: int = BUNDLE_FORMAT
    features: tuple = (tuple(CHURN_FEATURES), tuple(LEAD_FEATURES))


@dataclass
class TrainingResult:
    models: TrainedModels
    performance: pd.DataFrame  # one row per model: backtest metrics beside the baseline


def snapshot_grid(history: History, end: date, settings: PredictionSettings) -> list[date]:
    """Snapshot dates end, end-step, ... with enough loaded history before them (newest first)."""
    earliest = history.first_day + timedelta(days=settings.min_history_days - 1)
    dates, day = [], end
    while day >= earliest and len(dates) < settings.max_training_dates:
        dates.append(day)
        day -= timedelta(days=settings.step_days)
    return dates


def _fit(cache: SnapshotCache, dates: list[date], fit_on: date, settings) -> TrainedModels:
    """Fit every model on snapshots at `dates` (labels from `horizon` days later)."""
    h = settings.horizon_days
    reasons: dict[str, str] = {}
    churn_rows = [churn_examples(cache, d, h) for d in dates]
    lead_rows = [lead_examples(cache, d, h) for d in dates]
    churn_train = pd.concat(churn_rows) if churn_rows else pd.DataFrame()
    lead_train = pd.concat(lead_rows) if lead_rows else pd.DataFrame()
    churn_model = lead_model = None
    if not dates:
        reasons["churn"] = reasons["lead_score"] = reasons["next_best_product"] = (
            "no snapshot date has both enough history before it and a full horizon after it"
        )
    else:
        try:
            churn_model = fit_churn_model(churn_train)
        except NotEnoughExamples as error:
            reasons["churn"] = str(error)
        try:
            lead_model = fit_lead_model(lead_train)
        except NotEnoughExamples as error:
            reasons["lead_score"] = str(error)
    pooled = float(churn_train["churned"].mean()) if len(churn_train) else 0.0
    next_product = None
    if dates:
        examples = [
            (
                cache.products(d),
                new_products(cache, d, h),
                pd.Index(cache.snapshot(d)["customer_id"]),
            )
            for d in dates
        ]
        next_product = fit_next_product(examples)
        if next_product.transitions.empty:
            reasons["next_best_product"] = (
                "no product was bought as a new product often enough to learn from"
            )
            next_product = None
    transactional = fit_transactional_model(cache.transactions(fit_on), fit_on)
    if transactional.reason:
        reasons["clv"] = transactional.reason
    trained_at = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    models = TrainedModels(
        model_version=f"{trained_at:%Y%m%dT%H%M%SZ}-{fit_on.isoformat()}",
        trained_at=trained_at,
        training_end=fit_on,
        training_dates=sorted(dates),
        churn=churn_model,
        lead=lead_model,
        transactional=transactional,
        next_product=next_product,
        pooled_monthly_churn=pooled,
        reasons=reasons,
    )
    if dates:
        months = max(1, round(h / 30))
        parts = [predict_revenue(models, cache, d, months) for d in dates]
        realised = [
            realised_revenue(cache, d, h).reindex(part.index).fillna(0)
            for d, part in zip(dates, parts, strict=True)
        ]
        payers = [_payers(cache.snapshot(d)) for d in dates]
        models.clv_weights = calibrate_revenue_weights(
            pd.concat([part.loc[p] for part, p in zip(parts, payers, strict=True)]),
            pd.concat([r.loc[p] for r, p in zip(realised, payers, strict=True)]),
        )
    return models


def _customer_index(snapshot: pd.DataFrame) -> pd.Index:
    """The snapshot's customer ids as an index, without `set_index`: that copies the whole
    snapshot (~80 columns added one by one, so pandas first consolidates them), which cost
    more than scoring every customer."""
    return pd.Index(snapshot["customer_id"].to_numpy(), name="customer_id")


def _payers(snapshot: pd.DataFrame) -> pd.Index:
    """Customers who have paid or hold a paying subscription: whom CLV is judged on."""
    paying = (snapshot["n_paid_invoices"] > 0) | (snapshot["is_subscribed"] > 0)
    return _customer_index(snapshot)[paying.to_numpy()]


def predict_revenue(
    models: TrainedModels, cache: SnapshotCache, day: date, months: int
) -> pd.DataFrame:
    snap = cache.snapshot(day)
    customers = _customer_index(snap)
    # churn is a subscriber's: only their rows are scored (a fifth to a third of everyone)
    subscribed = snap["is_subscribed"].to_numpy() > 0
    churn_p = np.full(len(snap), np.nan)
    churn_p[subscribed] = (
        models.churn.predict(snap.loc[subscribed, models.churn.features])
        if models.churn is not None
        else models.pooled_monthly_churn
    )
    subscription = subscription_revenue(snap["mrr_usd_cents"].to_numpy(), churn_p, months)
    transactional = models.transactional.expected_revenue(
        cache.transactions(day),
        day,
        customers,
        months * 30,
        observed_days=(day - cache.history.first_day).days + 1,
    )
    subscription_weight, one_off_weight = models.clv_weights
    return pd.DataFrame(
        {
            "churn_probability": churn_p,
            "subscription": subscription * subscription_weight,
            "transactional": transactional.to_numpy() * one_off_weight,
        },
        index=customers,
    )


def _empty_metrics() -> dict:
    keys = [
        "auc", "precision_at_top_decile", "brier", "rmse_usd_cents", "mae_usd_cents",
        "hit_rate_at_1", "baseline_auc", "baseline_precision_at_top_decile", "baseline_brier",
        "baseline_rmse_usd_cents", "baseline_mae_usd_cents", "baseline_hit_rate_at_1",
        "lift", "lift_ci_low", "lift_ci_high",
    ]  # fmt: skip
    return dict.fromkeys(keys)


BASELINES = {
    "churn": "recency alone: days since the last payment",
    "lead_score": "web sessions + 0.5 x campaigns opened",
    "clv": "old rule: current MRR x (1 - pooled monthly churn rate), no one-off revenue",
    "next_best_product": "the most popular new product the customer does not own",
}


def _backtest(cache: SnapshotCache, history: History, scoring_date: date, settings) -> list[dict]:
    h = settings.horizon_days
    test_date = scoring_date - timedelta(days=h)
    train_dates = snapshot_grid(history, test_date - timedelta(days=h), settings)
    rows = []
    base = {"test_date": test_date, "horizon_days": h}
    if (
        test_date < history.first_day + timedelta(days=settings.min_history_days - 1)
        or not train_dates
    ):
        reason = (
            f"history too short to backtest: {history.days} loaded days "
            f"({history.first_day}..{history.last_day}); an out-of-time backtest needs "
            f"{settings.min_history_days} days before the first training snapshot and "
            f"{2 * h} days after it (at least {settings.min_history_days + 2 * h} days)"
        )
        for name in MODEL_NAMES:
            rows.append({**base, "model_name": name, "status": "insufficient_history", "reason": reason,
                         "train_rows": None, "train_positives": None, "test_rows": None,
                         "test_positives": None, "train_window_start": None,
                         "train_window_end": None, **_empty_metrics()})  # fmt: skip
        return rows
    models = _fit(cache, train_dates, test_date, settings)
    window = {"train_window_start": min(train_dates), "train_window_end": test_date}

    def row(name, status, reason, train, test, metrics):
        return {**base, **window, "model_name": name, "status": status, "reason": reason,
                "train_rows": train[0], "train_positives": train[1], "test_rows": test[0],
                "test_positives": test[1], **_empty_metrics(), **bt._rounded(metrics)}  # fmt: skip

    for name, examples_of, label, model, baseline in (
        ("churn", churn_examples, "churned", models.churn, churn_baseline),
        ("lead_score", lead_examples, "converted", models.lead, lead_baseline),
    ):
        train = pd.concat([examples_of(cache, d, h) for d in train_dates])
        test = examples_of(cache, test_date, h)
        counts = (len(train), int(train[label].sum())), (len(test), int(test[label].sum()))
        if model is None:
            rows.append(row(name, "insufficient_examples", models.reasons.get(name), *counts, {}))
            continue
        y = test[label].to_numpy(bool)
        if y.all() or not y.any():
            rows.append(row(name, "insufficient_examples",
                            f"the test snapshot at {test_date} has {int(y.sum())} positives "
                            f"among {len(y)} rows; AUC needs both classes", *counts, {}))  # fmt: skip
            continue
        metrics = bt.classifier_metrics(
            y, model.predict(test), baseline(test), float(train[label].mean())
        )
        rows.append(row(name, "ok", None, *counts, metrics))

    # CLV over the horizon we can observe (30 days), against realised revenue.
    months = max(1, round(h / 30))
    predicted = predict_revenue(models, cache, test_date, months)
    snap = cache.snapshot(test_date).set_index("customer_id")
    payers = _payers(cache.snapshot(test_date))
    actual = realised_revenue(cache, test_date, h).reindex(payers).fillna(0)
    model_pred = (predicted["subscription"] + predicted["transactional"]).reindex(payers)
    old_rule = snap["mrr_usd_cents"].reindex(payers) * (1 - models.pooled_monthly_churn) * months
    if len(payers):
        model_squared = ((model_pred - actual) ** 2).to_numpy(float)
        rule_squared = ((old_rule - actual) ** 2).to_numpy(float)
        rmse, rule_rmse = float(np.sqrt(model_squared.mean())), float(np.sqrt(rule_squared.mean()))
        clv_metrics = {
            **bt.lift_metrics(
                rule_rmse - rmse,
                bt.mean_lift_interval(model_squared, rule_squared, lower_is_better=True, root=True),
            ),
            "rmse_usd_cents": rmse,
            "baseline_rmse_usd_cents": rule_rmse,
            "mae_usd_cents": float(np.abs(model_pred - actual).mean()),
            "baseline_mae_usd_cents": float(np.abs(old_rule - actual).mean()),
        }
        rows.append(row("clv", "ok", models.reasons.get("clv"), (len(payers), None),
                        (len(payers), int((actual > 0).sum())), clv_metrics))  # fmt: skip
    else:
        rows.append(row("clv", "insufficient_examples", "no paying customers at the test date",
                        (0, None), (0, None), {}))  # fmt: skip

    # Next best product: hit rate at 1 among customers who bought something new.
    new = new_products(cache, test_date, h)
    if models.next_product is None or new.empty:
        reason = (
            models.reasons.get("next_best_product") or f"no new product bought after {test_date}"
        )
        rows.append(row("next_best_product", "insufficient_examples", reason, (None, None),
                        (0, 0), {}))  # fmt: skip
    else:
        buyers = pd.Index(new["customer_id"].unique())
        owned = cache.products(test_date)
        recommended = models.next_product.recommend(owned, buyers)["next_best_product"]
        popular = models.next_product.most_popular_unowned(owned, buyers)
        bought = new.groupby("customer_id")["product"].agg(set)
        hits = [recommended.get(c) in bought[c] for c in buyers]
        base_hits = [popular.get(c) in bought[c] for c in buyers]
        lift = bt.lift_metrics(
            float(np.mean(hits)) - float(np.mean(base_hits)),
            bt.mean_lift_interval(hits, base_hits, lower_is_better=False),
        )
        rows.append(row("next_best_product", "ok", None, (None, None), (len(buyers), len(buyers)),
                        {**lift, "hit_rate_at_1": float(np.mean(hits)),
                         "baseline_hit_rate_at_1": float(np.mean(base_hits))}))  # fmt: skip
    return rows


def train_models(
    con: duckdb.DuckDBPyConnection,
    settings: PredictionSettings = PredictionSettings(),
    scoring_date: date | None = None,
) -> TrainingResult:
    """Backtest out-of-time, then fit the production models on every labelled snapshot."""
    history = loaded_history(con)
    if history is None:
        raise ValueError("the warehouse holds no loaded landing days yet: run `cdp run` first")
    scoring_date = scoring_date or history.last_day
    cache = SnapshotCache(con, history)
    rows = _backtest(cache, history, scoring_date, settings)
    dates = snapshot_grid(history, scoring_date - timedelta(days=settings.horizon_days), settings)
    models = _fit(cache, dates, scoring_date, settings)
    performance = pd.DataFrame(rows)
    performance["model_version"] = models.model_version
    performance["trained_at"] = models.trained_at
    performance["scoring_date"] = scoring_date
    performance["production_train_rows_from"] = min(dates) if dates else None
    performance["baseline_name"] = performance["model_name"].map(BASELINES)
    performance["worse_than_baseline"] = [
        bt.worse_than_baseline(r["model_name"], r) for r in performance.to_dict("records")
    ]
    performance["production_status"] = [
        "not fitted: " + models.reasons[n] if n in models.reasons and n != "clv" else "fitted"
        for n in performance["model_name"]
    ]
    models.performance = performance[PERFORMANCE_COLUMNS]
    return TrainingResult(models=models, performance=models.performance)


PERFORMANCE_COLUMNS = [
    "model_name", "model_version", "trained_at", "scoring_date", "status", "reason",
    "production_status", "horizon_days", "train_window_start", "train_window_end",
    "test_date", "production_train_rows_from", "train_rows", "train_positives", "test_rows",
    "test_positives", "auc", "precision_at_top_decile", "brier", "rmse_usd_cents",
    "mae_usd_cents", "hit_rate_at_1", "baseline_name", "baseline_auc",
    "baseline_precision_at_top_decile", "baseline_brier", "baseline_rmse_usd_cents",
    "baseline_mae_usd_cents", "baseline_hit_rate_at_1", "lift", "lift_ci_low",
    "lift_ci_high", "worse_than_baseline",
]  # fmt: skip


def _percentile(values: pd.Series) -> pd.Series:
    """1..100: the share of scored customers at or below this score (NULL when unscored)."""
    ranked = values.rank(pct=True, method="max")
    return np.ceil(ranked * 100).astype("Int64")


def score_customers(
    con: duckdb.DuckDBPyConnection,
    models: TrainedModels,
    settings: PredictionSettings = PredictionSettings(),
    scoring_date: date | None = None,
    web_state: Refresh | None = None,
) -> pd.DataFrame:
    """One row per golden customer known at the scoring date with every prediction.

    With `web_state` (what `predictions.web_state.refresh` returned for the scoring date)
    the snapshot reads its web features from that state instead of every web event."""
    history = loaded_history(con)
    if history is None:
        raise ValueError("the warehouse holds no loaded landing days yet: run `cdp run` first")
    scoring_date = scoring_date or history.last_day
    state_day = web_state.as_of if web_state is not None else None
    cache = SnapshotCache(con, history, web_state_day=state_day)
    snap = cache.snapshot(scoring_date)
    ids = pd.Index(snap["customer_id"])
    revenue = predict_revenue(models, cache, scoring_date, settings.clv_months)
    paying = snap["is_subscribed"].to_numpy() > 0
    not_paid = snap["n_paid_invoices"].to_numpy() == 0
    churn = (
        revenue["churn_probability"].to_numpy()
        if models.churn is not None
        else np.full(len(snap), np.nan)
    )
    churn = np.where(paying, churn, np.nan)
    # the lead score is for people who have not paid yet: only their rows are scored
    lead = np.full(len(snap), np.nan)
    if models.lead is not None:
        lead[not_paid] = models.lead.predict(snap.loc[not_paid, models.lead.features])
    clv = (revenue["subscription"] + revenue["transactional"]).to_numpy()
    out = pd.DataFrame(
        {
            "customer_id": ids,
            "churn_probability": churn,
            "predicted_clv_12m_usd_cents": np.round(clv).astype("int64"),
            "predicted_subscription_12m_usd_cents": np.round(
                revenue["subscription"].to_numpy()
            ).astype("int64"),
            "predicted_one_off_12m_usd_cents": np.round(revenue["transactional"].to_numpy()).astype(
                "int64"
            ),
            "lead_score": lead,
        }
    )
    if models.next_product is not None:
        recs = models.next_product.recommend(cache.products(scoring_date), ids)
        out["next_best_product"] = recs["next_best_product"].to_numpy()
        out["next_best_product_score"] = recs["next_best_product_score"].to_numpy(float)
    else:
        out["next_best_product"] = None
        out["next_best_product_score"] = np.nan
    out["churn_probability_percentile"] = _percentile(out["churn_probability"])
    out["predicted_clv_12m_percentile"] = _percentile(
        out["predicted_clv_12m_usd_cents"].where(out["predicted_clv_12m_usd_cents"] > 0)
    )
    out["lead_score_percentile"] = _percentile(out["lead_score"])
    out["next_best_product_score_percentile"] = _percentile(out["next_best_product_score"])
    out["clv_method"] = (
        f"{models.transactional.method} for one-off purchases + MRR x survival from churn_probability"
    )
    out["model_version"] = models.model_version
    out["scoring_date"] = scoring_date
    out["scored_at"] = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    return out


# --- storage ------------------------------------------------------------------------------


def save_models(models: TrainedModels, models_dir: Path) -> Path:
    """Pickle the bundle into `<models_dir>/<model_version>/models.pkl`, owner-only."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(models_dir, 0o700)
    folder = models_dir / models.model_version
    folder.mkdir(exist_ok=True)
    os.chmod(folder, 0o700)
    target = folder / BUNDLE_FILE
    partial = folder / (BUNDLE_FILE + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        pickle.dump(models, handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(partial, target)
    return target


def load_latest_models(models_dir: Path) -> TrainedModels | None:
    """The newest bundle in `models_dir` of the current format, or None.

    The bundles are this pipeline's own files in an owner-only folder; pickle is only
    safe for such trusted files, which is why the folder is private.
    """
    models_dir = Path(models_dir)
    if not models_dir.exists():
        return None
    for folder in sorted((p for p in models_dir.iterdir() if p.is_dir()), reverse=True):
        bundle = folder / BUNDLE_FILE
        if not bundle.exists():
            continue
        with open(bundle, "rb") as handle:
            models = pickle.load(handle)
        if getattr(models, "bundle_format", None) == BUNDLE_FORMAT and models.features == (
            tuple(CHURN_FEATURES),
            tuple(LEAD_FEATURES),
        ):
            return models
    return None


def write_performance(con: duckdb.DuckDBPyConnection, performance: pd.DataFrame) -> int:
    """Append this training run's rows to predictions.model_performance (idempotent per version)."""
    con.execute(f"create schema if not exists {SCHEMA}")
    con.register("performance_rows", _typed(performance))
    con.execute(
        f"create table if not exists {SCHEMA}.model_performance as "
        "select * from performance_rows limit 0"
    )
    # A table written by an older version may lack newer metric columns: add them.
    existing = {row[0] for row in con.execute(f"describe {SCHEMA}.model_performance").fetchall()}
    for name, column_type, *_ in con.execute("describe performance_rows").fetchall():
        if name not in existing:
            con.execute(f'alter table {SCHEMA}.model_performance add column "{name}" {column_type}')
    con.execute(
        f"delete from {SCHEMA}.model_performance where model_version in "
        "(select distinct model_version from performance_rows)"
    )
    con.execute(f"insert into {SCHEMA}.model_performance by name select * from performance_rows")
    con.unregister("performance_rows")
    return len(performance)


def ensure_performance_recorded(con: duckdb.DuckDBPyConnection, models: TrainedModels) -> bool:
    """Write the bundle's backtest rows when the warehouse lacks them; True if it did."""
    if models.performance is None:
        return False
    if (
        table_exists(con, f"{SCHEMA}.model_performance")
        and con.execute(
            f"select count(*) from {SCHEMA}.model_performance where model_version = ?",
            [models.model_version],
        ).fetchone()[0]
    ):
        return False
    write_performance(con, models.performance)
    return True


def write_scores(con: duckdb.DuckDBPyConnection, scores: pd.DataFrame) -> int:
    """Replace predictions.customer_scores with this scoring run, in one statement."""
    con.execute(f"create schema if not exists {SCHEMA}")
    con.register("score_rows", scores)
    con.execute(f"create or replace table {SCHEMA}.customer_scores as select * from score_rows")
    con.unregister("score_rows")
    return len(scores)


def _typed(performance: pd.DataFrame) -> pd.DataFrame:
    frame = performance.copy()
    for column in ("train_rows", "train_positives", "test_rows", "test_positives", "horizon_days"):
        frame[column] = pd.array(frame[column], dtype="Int64")
    for column in ("auc", "precision_at_top_decile", "brier", "rmse_usd_cents", "mae_usd_cents",
                   "hit_rate_at_1", "baseline_auc", "baseline_precision_at_top_decile",
                   "baseline_brier", "baseline_rmse_usd_cents", "baseline_mae_usd_cents",
                   "baseline_hit_rate_at_1", "lift", "lift_ci_low", "lift_ci_high"):  # fmt: skip
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in ("train_window_start", "train_window_end", "test_date", "scoring_date",
                   "production_train_rows_from"):  # fmt: skip
        frame[column] = pd.to_datetime(frame[column]).dt.date
    frame["worse_than_baseline"] = frame["worse_than_baseline"].astype("boolean")
    for column in ("reason", "status", "production_status", "baseline_name", "model_name"):
        frame[column] = frame[column].astype("string")
    return frame


def _lift_text(r: dict) -> str:
    if r.get("lift") is None or pd.isna(r.get("lift")):
        return ""
    verdict = (
        "worse beyond the noise"
        if r.get("worse_than_baseline")
        else "behind, within the noise"
        if r["lift"] < 0
        else "ahead"
    )
    return (
        f"; lift {r['lift']:+.4g} (95% CI {r['lift_ci_low']:+.4g} .. {r['lift_ci_high']:+.4g}: "
        f"{verdict})"
    )


def performance_summary(performance: pd.DataFrame) -> list[str]:
    """One line per model for logs: the headline metric beside its baseline, and the lift."""
    lines = []
    for r in performance.to_dict("records"):
        if r["status"] != "ok":
            lines.append(f"{r['model_name']}: {r['status']} ({r['reason']})")
            continue
        if r["model_name"] in ("churn", "lead_score"):
            line = f"{r['model_name']}: AUC {r['auc']:.3f} vs baseline {r['baseline_auc']:.3f}"
        elif r["model_name"] == "clv":
            line = (
                f"clv: RMSE {r['rmse_usd_cents']:.0f} vs baseline {r['baseline_rmse_usd_cents']:.0f} "
                f"US cents (MAE {r['mae_usd_cents']:.0f} vs {r['baseline_mae_usd_cents']:.0f})"
            )
        else:
            line = (
                f"next_best_product: hit@1 {r['hit_rate_at_1']:.3f} vs baseline "
                f"{r['baseline_hit_rate_at_1']:.3f}"
            )
        lines.append(line + _lift_text(r))
    return lines


__all__ = [
    "MODEL_NAMES",
    "PERFORMANCE_COLUMNS",
    "PredictionSettings",
    "TrainedModels",
    "TrainingResult",
    "load_latest_models",
    "predict_revenue",
    "performance_summary",
    "save_models",
    "score_customers",
    "snapshot_grid",
    "train_models",
    "ensure_performance_recorded",
    "write_performance",
    "write_scores",
]
