-- One row per model and training run: the out-of-time backtest (train on snapshots before
-- the test date, test against what happened in the 30 days after it) beside a naive
-- baseline, the training window and row counts. status <> 'ok' rows say why there are no
-- numbers (e.g. history too short) instead of reporting any. See docs/predictions.md.
select
    model_name,
    model_version,
    trained_at,
    scoring_date,
    status,
    reason,
    production_status,
    horizon_days,
    train_window_start,
    train_window_end,
    test_date,
    production_train_rows_from,
    train_rows,
    train_positives,
    test_rows,
    test_positives,
    auc,
    precision_at_top_decile,
    brier,
    rmse_usd_cents,
    mae_usd_cents,
    hit_rate_at_1,
    baseline_name,
    baseline_auc,
    baseline_precision_at_top_decile,
    baseline_brier,
    baseline_rmse_usd_cents,
    baseline_mae_usd_cents,
    baseline_hit_rate_at_1,
    worse_than_baseline,
    model_version = max(model_version) over (partition by model_name) as is_latest
from {{ ref('stg_predictions__model_performance') }}
