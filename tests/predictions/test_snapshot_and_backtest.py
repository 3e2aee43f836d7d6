"""Point-in-time snapshots and out-of-time backtests on a really loaded warehouse."""

from __future__ import annotations

import shutil
from datetime import timedelta

import duckdb
import pandas as pd
import pytest

from demo_data.loaded_zone import copy_identity_map, landing_days
from orchestration.assets.predictions import models_dir
from predictions.clv import one_off_transactions
from predictions.pipeline import PredictionSettings, load_latest_models, train_models
from predictions.snapshot import build_snapshot, loaded_history, products_owned

pytestmark = pytest.mark.slow


def test_snapshot_at_t_is_identical_whether_or_not_later_days_are_loaded(
    signal_zone, raw_prefixes, full_warehouse, tmp_path
):
    days = landing_days(signal_zone)
    as_of = days[59]
    partial = tmp_path / "until_t.duckdb"
    shutil.copyfile(raw_prefixes[60], partial)  # the landing days up to T, loaded for real
    with duckdb.connect(str(partial), read_only=True) as until_t:
        assert until_t.execute("select max(dt) from raw.load_audit").fetchone()[0] == as_of
    copy_identity_map(full_warehouse, partial)

    with duckdb.connect(str(full_warehouse), read_only=True) as full:
        # The full warehouse really holds later rows, late ones included: rows that
        # happened by T but were delivered after it, which the snapshot must not use.
        late = full.execute(
            "select count(*) from raw.email_events "
            f"where _dt > date '{as_of}' and occurred_at < date '{as_of}' + interval 1 day"
        ).fetchone()[0]
        later = full.execute(
            f"select count(*) from raw.billing_invoices where _dt > date '{as_of}'"
        ).fetchone()[0]
        assert late > 0 and later > 0
        expected = build_snapshot(full, as_of)
        expected_products = products_owned(full, as_of)
        expected_tx = one_off_transactions(full, as_of)
    with duckdb.connect(str(partial), read_only=True) as until_t:
        actual = build_snapshot(until_t, as_of)
        actual_products = products_owned(until_t, as_of)
        actual_tx = one_off_transactions(until_t, as_of)

    assert len(expected) > 1000
    assert expected["web_sessions"].sum() > 0 and expected["n_paid_invoices"].sum() > 0
    # support load and NPS are covered too (tickets change after T; answers arrive late)
    assert expected["support_tickets"].sum() > 0 and expected["nps_responses"].sum() > 0
    pd.testing.assert_frame_equal(actual, expected)
    pd.testing.assert_frame_equal(actual_products, expected_products)
    sort = ["customer_id", "paid_date", "net_usd_cents"]
    pd.testing.assert_frame_equal(
        actual_tx.sort_values(sort).reset_index(drop=True),
        expected_tx.sort_values(sort).reset_index(drop=True),
    )
    # ... and a snapshot one day later does see more: the cutoff is not vacuous.
    with duckdb.connect(str(full_warehouse), read_only=True) as full:
        next_day = build_snapshot(full, as_of + timedelta(days=1))
    assert not next_day[expected.columns.drop("as_of_date")].equals(
        expected[expected.columns.drop("as_of_date")]
    )


def test_models_beat_their_naive_baselines_out_of_time(scored):
    # The training asset's own run (train_models with the default settings) on the full
    # warehouse: its bundle keeps the backtest rows exactly as training returned them.
    _, resource, _, _ = scored
    models = load_latest_models(models_dir(resource))
    performance = models.performance.set_index("model_name")
    print(performance.T.to_string())
    for model in ("churn", "lead_score"):
        row = performance.loc[model]
        assert row["status"] == "ok", row["reason"]
        assert row["test_date"] < row["scoring_date"]
        assert row["train_window_end"] <= row["test_date"]
        # A 2,000-person zone has a few dozen churners and converters per test month: the
        # test asks for a lift; bench/predictions.py measures its size on a larger zone.
        assert row["auc"] > row["baseline_auc"], model
        assert 0 <= row["brier"] <= row["baseline_brier"] + 0.01
        # the lift is recorded with its bootstrap interval around it
        assert row["lift"] == pytest.approx(row["auc"] - row["baseline_auc"], abs=1e-4)
        assert row["lift_ci_low"] <= row["lift"] <= row["lift_ci_high"]
    assert performance.loc["lead_score", "auc"] >= 0.65
    assert performance.loc["clv", "status"] == "ok"
    assert performance.loc["clv", "rmse_usd_cents"] > 0
    assert not performance["worse_than_baseline"].fillna(False).loc[["churn", "lead_score"]].any()
    assert models.churn is not None and models.lead is not None


def test_short_history_reports_a_reason_instead_of_numbers(raw_prefixes, full_warehouse, tmp_path):
    short = tmp_path / "short.duckdb"
    shutil.copyfile(raw_prefixes[40], short)  # the first 40 landing days, loaded for real
    copy_identity_map(full_warehouse, short)
    with duckdb.connect(str(short), read_only=True) as con:
        history = loaded_history(con)
        assert history.days == 40
        result = train_models(con, PredictionSettings())
    performance = result.performance
    assert set(performance["status"]) == {"insufficient_history"}
    assert performance["reason"].str.contains("history too short to backtest").all()
    assert (
        performance[["auc", "baseline_auc", "rmse_usd_cents", "hit_rate_at_1"]].isna().all().all()
    )
    assert performance["worse_than_baseline"].isna().all()
