"""Predictive traits: point-in-time feature snapshots, churn / CLV / lead / next-product
models and their out-of-time backtests. Plain Python over DuckDB; never imports Dagster."""
