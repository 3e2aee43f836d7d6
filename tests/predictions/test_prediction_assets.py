"""The Dagster assets and check for real on a loaded warehouse, then the dbt marts on top."""

from __future__ import annotations

import shutil
import stat

import dagster as dg
import duckdb
import pytest

from demo_data.loaded_zone import run_dbt
from orchestration.assets.predictions import (
    customer_scores,
    model_performance,
    model_performance_check,
    models_dir,
)
from orchestration.resources import WarehouseResource

pytestmark = pytest.mark.slow


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e
        for e in result.get_asset_check_evaluations()
    }


def test_training_and_scoring_assets_record_backtests_and_private_models(scored):
    warehouse, resource, result, _ = scored
    assert result.success
    training = next(
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["predictions", "model_performance"])
    )
    assert training["churn/status"].value == "ok"
    assert training["churn/auc"].value > training["churn/baseline_auc"].value
    assert "| churn |" in training["backtest"].value

    bundles = list(models_dir(resource).glob("*/models.pkl"))
    assert len(bundles) == 1
    assert stat.S_IMODE(bundles[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(bundles[0].parent.stat().st_mode) == 0o700

    with duckdb.connect(str(warehouse), read_only=True) as con:
        versions = con.execute(
            "select distinct model_version from predictions.customer_scores"
        ).fetchall()
        performance_versions = con.execute(
            "select distinct model_version from predictions.model_performance"
        ).fetchall()
        # Scoring used the bundle the training asset just stored; it did not train again.
        assert versions == performance_versions
        scored_rows, subscribers, leads = con.execute(
            "select count(*), count(churn_probability), count(lead_score) "
            "from predictions.customer_scores"
        ).fetchone()
    assert scored_rows > 1000 and subscribers > 100 and leads > 100


@dg.asset(config_schema={"full_refresh": dg.Field(bool, default_value=False)})
def dbt_step() -> None:
    """A stand-in for the job's dbt steps, whose config carries `cdp run --full-refresh`."""
    return None


def _scoring_metadata(result: dg.ExecuteInProcessResult) -> dict:
    return next(
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["predictions", "customer_scores"])
    )


def test_scoring_keeps_the_web_state_and_says_what_it_did(scored, tmp_path):
    """The first scoring builds the web features' state from every event; the next one,
    with nothing new, finds it unchanged; a full refresh rebuilds it. Each says so in the
    materialization."""
    _, _, result, work = scored
    first = _scoring_metadata(result)["web_state"].value
    assert first.startswith("rebuilt from every web event (no state yet)"), first

    again_dir = tmp_path / "again"
    shutil.copytree(work, again_dir)
    resource = WarehouseResource(path=str(again_dir / "warehouse.duckdb"))
    again = dg.materialize([customer_scores], resources={"warehouse": resource})
    assert again.success
    second = _scoring_metadata(again)["web_state"].value
    assert second.startswith("unchanged since its last refresh"), second
    with duckdb.connect(str(again_dir / "warehouse.duckdb"), read_only=True) as con:
        (visitor_days,) = con.execute(
            "select count(*) from predictions.web_visitor_days"
        ).fetchone()
    assert f"{visitor_days:,} visitor-days" in second and visitor_days > 1000

    # `cdp run --full-refresh` (config full_refresh on the run's dbt steps; here on a
    # stand-in step, as the scoring step reads any op's) rebuilds it from every event
    refreshed = dg.materialize(
        [dbt_step, customer_scores],
        resources={"warehouse": resource},
        run_config={"ops": {"dbt_step": {"config": {"full_refresh": True}}}},
    )
    assert refreshed.success
    third = _scoring_metadata(refreshed)["web_state"].value
    assert third.startswith("rebuilt from every web event (asked for: cdp run --full-refresh)")


def test_baseline_check_follows_the_backtest_and_fails_when_a_model_loses(scored):
    warehouse, resource, result, _ = scored
    with duckdb.connect(str(warehouse), read_only=True) as con:
        losers = {
            r[0]
            for r in con.execute(
                "select model_name from predictions.model_performance where worse_than_baseline"
            ).fetchall()
        }
    checks = _check_results(result)
    assert checks["predictions/model_performance:models_beat_baseline"].passed == (not losers)
    assert checks["predictions/customer_scores:models_beat_baseline"].passed == (not losers)

    # The churn model's backtest now says it lost to recency alone: the check must fail.
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update predictions.model_performance "
            "set auc = baseline_auc - 0.05, worse_than_baseline = true "
            "where model_name = 'churn'"
        )
    rerun = dg.materialize(
        [model_performance, model_performance_check],
        resources={"warehouse": resource},
        selection=dg.AssetSelection.checks(model_performance_check),
        raise_on_error=False,
    )
    evaluation = _check_results(rerun)["predictions/model_performance:models_beat_baseline"]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "churn" in evaluation.metadata["worse_than_baseline"].value


def test_dbt_marts_publish_predictions_under_enforced_contracts(scored):
    warehouse, _, _, work = scored
    run_dbt(warehouse, work, "build", "--selector", "after_identity")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        customers = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
        rows, with_churn, with_lead, with_product = con.execute(
            "select count(*), count(churn_probability), count(lead_score), "
            "count(next_best_product) from marts.customer_predictions"
        ).fetchone()
        assert rows == customers and with_churn > 100 and with_lead > 100 and with_product > 0
        # customer_360 carries the headline columns; churn_risk follows the thresholds.
        risks = dict(
            con.execute(
                "select churn_risk, count(*) from marts.customer_360 "
                "where churn_probability is not null "
                "and lifecycle_stage in ('active customer', 'at-risk') group by 1"
            ).fetchall()
        )
        assert set(risks) <= {"low", "medium", "high"} and risks
        wrong = con.execute(
            "select count(*) from marts.customer_360 where churn_probability is not null "
            "and lifecycle_stage in ('active customer', 'at-risk') and churn_risk <> case "
            "when churn_probability >= 0.2 then 'high' when churn_probability >= 0.08 "
            "then 'medium' else 'low' end"
        ).fetchone()[0]
        assert wrong == 0
        models = {
            r[0]
            for r in con.execute(
                "select model_name from marts.model_performance where is_latest"
            ).fetchall()
        }
        assert models == {"churn", "lead_score", "clv", "next_best_product"}
