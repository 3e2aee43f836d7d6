"""Predictive traits as Dagster assets: train weekly, score nightly.

How snapshots are built, models fitted and backtested lives in `predictions/`; this
module only decides when it runs and what the UI shows.

- `predictions/model_performance` trains every model after an out-of-time backtest,
  stores the bundle in `<warehouse dir>/models/<version>/` (owner-only) and appends the
  backtest rows to predictions.model_performance. The weekly `train_predictions` job runs it.
- `predictions/customer_scores` scores every golden customer with the newest bundle in the
  nightly pipeline (dbt reads it as a source). With no bundle yet (a fresh warehouse), or
  one trained on data more than RETRAIN_AFTER_DAYS older than the data it scores, it
  trains first, so the first `cdp run` already publishes predictions.
- The check `models_beat_baseline` fails when a model's backtest is worse than its naive
  baseline beyond the noise (the 95% bootstrap interval of its lift is below zero).
"""

from pathlib import Path

import dagster as dg
import duckdb

from orchestration.metadata import to_metadata_value
from orchestration.partitions import run_step_flags
from orchestration.resources import WarehouseResource
from orchestration.settings import schedule_timezone, training_cron
from predictions.pipeline import (
    PredictionSettings,
    TrainingResult,
    ensure_performance_recorded,
    load_latest_models,
    performance_summary,
    save_models,
    score_customers,
    train_models,
    write_performance,
    write_scores,
)
from predictions.snapshot import loaded_history
from predictions.web_state import refresh as refresh_web_state

OWNER = "team:data-science"
GROUP = "predictions"
PERFORMANCE_KEY = dg.AssetKey(["predictions", "model_performance"])
SCORES_KEY = dg.AssetKey(["predictions", "customer_scores"])
# Scoring retrains first when the newest bundle's data is older than this (so nightly runs
# keep weekly-fresh models even where the weekly schedule is not running, e.g. `cdp run`).
RETRAIN_AFTER_DAYS = 7
UPSTREAM = [
    dg.AssetKey(["identity", "customer_map"]),
    *(
        dg.AssetKey(["raw", t])
        for t in (
            "billing_invoices",
            "billing_subscriptions",
            "billing_customers",
            "email_contacts",
            "email_events",
            "web_events",
        )
    ),
]


def models_dir(warehouse: WarehouseResource) -> Path:
    """Model bundles live next to the warehouse they were trained on."""
    return warehouse.base_file.parent / "models"


def _performance_metadata(result: TrainingResult) -> dict[str, dg.MetadataValue]:
    metadata: dict[str, dg.MetadataValue] = {
        "model_version": dg.MetadataValue.text(result.models.model_version),
        "training_dates": dg.MetadataValue.text(
            ", ".join(d.isoformat() for d in result.models.training_dates) or "none"
        ),
    }
    for row in result.performance.to_dict("records"):
        name = row["model_name"]
        metadata[f"{name}/status"] = dg.MetadataValue.text(row["status"])
        for metric in (
            "auc",
            "baseline_auc",
            "precision_at_top_decile",
            "baseline_precision_at_top_decile",
            "brier",
            "baseline_brier",
            "rmse_usd_cents",
            "baseline_rmse_usd_cents",
            "mae_usd_cents",
            "baseline_mae_usd_cents",
            "hit_rate_at_1",
            "baseline_hit_rate_at_1",
        ):
            value = row.get(metric)
            if value is not None and value == value:  # not NaN
                metadata[f"{name}/{metric}"] = to_metadata_value(float(value))
        if row.get("reason"):
            metadata[f"{name}/reason"] = dg.MetadataValue.text(str(row["reason"]))
    lines = ["| model | backtest |", "|---|---|"]
    lines += [
        f"| {line.split(':', 1)[0]} | {line.split(':', 1)[1].strip()} |"
        for line in performance_summary(result.performance)
    ]
    metadata["backtest"] = dg.MetadataValue.md("\n".join(lines))
    return metadata


def _train(context, con: duckdb.DuckDBPyConnection, warehouse: WarehouseResource) -> TrainingResult:
    result = train_models(con, PredictionSettings())
    bundle = save_models(result.models, models_dir(warehouse))
    write_performance(con, result.performance)
    context.log.info(f"Trained model bundle {result.models.model_version} -> {bundle}")
    for line in performance_summary(result.performance):
        context.log.info(f"backtest {line}")
    return result


@dg.asset(
    key=PERFORMANCE_KEY,
    deps=UPSTREAM,
    group_name=GROUP,
    kinds={"python", "scikitlearn", "duckdb"},
    owners=[OWNER],
    description=(
        "Train churn, lead score, CLV and next-best-product models on point-in-time "
        "snapshots after an out-of-time backtest; backtest rows appended to "
        "predictions.model_performance, bundle saved next to the warehouse."
    ),
    metadata={"dagster/table_name": "predictions.model_performance"},
)
def model_performance(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    with warehouse.connect(context.log) as con:
        result = _train(context, con, warehouse)
        warehouse.hand_off(con, ["predictions.model_performance"], context.log)
    context.log.info(f"Training {warehouse.where_steps_run()}")
    return dg.MaterializeResult(metadata=_performance_metadata(result))


def _full_refresh_asked(context: dg.AssetExecutionContext) -> str | None:
    """`cdp run --full-refresh` rebuilds dbt's incremental models from raw; the scoring
    step's web state (predictions/web_state.py) is rebuilt with them."""
    if "full_refresh" in run_step_flags(context.run):
        return "asked for: cdp run --full-refresh"
    return None


@dg.asset(
    key=SCORES_KEY,
    deps=[*UPSTREAM, PERFORMANCE_KEY],
    group_name=GROUP,
    kinds={"python", "duckdb"},
    owners=[OWNER],
    description=(
        "Every golden customer scored with the newest trained bundle: churn probability, "
        "predicted 12-month CLV, lead score, next best product (read by dbt as a source)."
    ),
    metadata={"dagster/table_name": "predictions.customer_scores"},
)
def customer_scores(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    metadata: dict[str, dg.MetadataValue] = {}
    with warehouse.connect(context.log) as con:
        models = load_latest_models(models_dir(warehouse))
        history = loaded_history(con)
        stale = (
            models is not None
            and history is not None
            and (history.last_day - models.training_end).days > RETRAIN_AFTER_DAYS
        )
        if models is None or stale:
            why = (
                f"the newest bundle was trained on data up to {models.training_end}, more "
                f"than {RETRAIN_AFTER_DAYS} days before {history.last_day}"
                if stale
                else f"there is no trained model bundle in {models_dir(warehouse)} yet"
            )
            context.log.info(f"Training before scoring: {why}.")
            result = _train(context, con, warehouse)
            models = result.models
            metadata.update(_performance_metadata(result))
        elif ensure_performance_recorded(con, models):
            context.log.info(f"Restored the backtest rows of bundle {models.model_version}.")
        web_state = None
        if history is not None:
            web_state = refresh_web_state(
                con, history.last_day, rebuild=_full_refresh_asked(context)
            )
            context.log.info(f"Web features' state: {web_state.describe()}")
            metadata["web_state"] = dg.MetadataValue.text(web_state.describe())
        scores = score_customers(con, models, web_state=web_state)
        rows = write_scores(con, scores)
        warehouse.hand_off(
            con, ["predictions.customer_scores", "predictions.model_performance"], context.log
        )
    context.log.info(f"Scoring {warehouse.where_steps_run()}")
    metadata.update(
        {
            "dagster/row_count": dg.MetadataValue.int(rows),
            "model_version": dg.MetadataValue.text(models.model_version),
            "scoring_date": dg.MetadataValue.text(
                str(scores["scoring_date"].iloc[0]) if rows else "none"
            ),
            "scored_subscribers": dg.MetadataValue.int(
                int(scores["churn_probability"].notna().sum())
            ),
            "scored_leads": dg.MetadataValue.int(int(scores["lead_score"].notna().sum())),
            "mean_churn_probability": to_metadata_value(
                float(scores["churn_probability"].mean())
                if scores["churn_probability"].notna().any()
                else 0.0
            ),
        }
    )
    return dg.MaterializeResult(metadata=metadata)


def _baseline_check(asset_key: dg.AssetKey, version_sql: str, what: str):
    @dg.asset_check(
        asset=asset_key,
        name="models_beat_baseline",
        description=(
            f"[ERROR] Fails when {what} is worse than its naive baseline in the out-of-time "
            "backtest beyond the backtest's noise: the 95% bootstrap interval of its lift "
            "(AUC, RMSE or hit rate) lies wholly below zero. See predictions.model_performance."
        ),
        blocking=False,
    )
    def _check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        with warehouse.connect(context.log) as con:
            rows = con.execute(
                "select model_name, status, worse_than_baseline, lift, lift_ci_low, lift_ci_high "
                "from predictions.model_performance "
                f"where model_version = ({version_sql}) order by model_name"
            ).fetchall()
        worse = [name for name, _status, lost, *_ in rows if lost]
        behind = [
            name for name, _s, lost, lift, *_ in rows if not lost and lift is not None and lift < 0
        ]
        unmeasured = [f"{name} ({status})" for name, status, lost, *_ in rows if lost is None]
        lifts = {
            name: {"lift": lift, "ci_95": [low, high]}
            for name, _s, _l, lift, low, high in rows
            if lift is not None
        }
        description = (
            f"worse than baseline beyond the noise: {', '.join(worse)}"
            if worse
            else "no model is worse than its baseline beyond the noise"
            if rows
            else "no backtest rows found"
        )
        if behind:
            description += f" (behind it within the noise: {', '.join(behind)})"
        return dg.AssetCheckResult(
            passed=bool(rows) and not worse,
            severity=dg.AssetCheckSeverity.ERROR,
            description=description,
            metadata={
                "worse_than_baseline": dg.MetadataValue.json(worse),
                "behind_baseline_within_noise": dg.MetadataValue.json(behind),
                "lift_and_95_interval": dg.MetadataValue.json(lifts),
                "not_measured": dg.MetadataValue.json(unmeasured),
            },
        )

    return _check


model_performance_check = _baseline_check(
    PERFORMANCE_KEY,
    "select max(model_version) from predictions.model_performance",
    "a model of the latest training run",
)
customer_scores_check = _baseline_check(
    SCORES_KEY,
    "select max(model_version) from predictions.customer_scores",
    "a model that produced tonight's scores",
)

TRAINING_JOB_NAME = "train_predictions"
train_predictions_job = dg.define_asset_job(
    name=TRAINING_JOB_NAME,
    selection=dg.AssetSelection.assets(PERFORMANCE_KEY),
    executor_def=dg.in_process_executor,
    description="Retrain the prediction models (weekly): backtest, fit, store the bundle.",
    tags={"cdp/writes": "warehouse"},
)


@dg.schedule(
    job=train_predictions_job,
    cron_schedule=training_cron(),
    execution_timezone=schedule_timezone(),
    name="weekly_training",
    description="Every week: retrain the prediction models; nightly runs score with the newest bundle.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def weekly_training_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    tick = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(run_key=f"training:{tick}", tags={"cdp/trigger": "schedule"})


prediction_assets = [model_performance, customer_scores]
prediction_checks = [model_performance_check, customer_scores_check]
