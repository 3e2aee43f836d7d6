"""The run summary's "where to look next" lines name paths a user can keep using."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import duckdb

from orchestration.run_summary import print_summary


def test_the_summary_names_the_bi_link_not_the_version_it_points_at_today(
    tmp_path, monkeypatch, capsys
):
    # The layout a publish leaves (orchestration/bi_publish.py): bi.duckdb, the versions,
    # and bi_parquet, a relative link to the current one; the user runs from the folder
    # above, as `make run` does from the repository.
    data = tmp_path / "data"
    (data / "bi_parquet_versions" / "v1").mkdir(parents=True)
    os.symlink(Path("bi_parquet_versions") / "v1", data / "bi_parquet")
    duckdb.connect(str(data / "warehouse.duckdb")).close()
    duckdb.connect(str(data / "bi.duckdb")).close()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CDP_WAREHOUSE", str(data / "warehouse.duckdb"))

    # A succeeded run as Dagster's execute_job reports it (the summary reads these two).
    print_summary(SimpleNamespace(success=True, run_id="0123456789abcdef"), 1.0)

    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("warehouse"))
    assert "data/warehouse.duckdb" in line
    assert "BI tools: data/bi.duckdb or data/bi_parquet/" in line
    assert "bi_parquet_versions" not in line


def test_a_retried_step_is_reported_and_its_first_attempts_checks_are_not_counted(tmp_path):
    # A dbt step that fails after some of its tests ran is retried by its policy; the run
    # succeeds, and the summary must say so instead of passing over it, with each check
    # counted once (Dagster's own events, replayed into the console as `cdp run` feeds them).
    import dagster as dg

    from orchestration.run_console import RunConsole, step_plan

    key = dg.AssetKey(["marts", "fct_orders"])

    @dg.multi_asset(
        name="dbt_marts",
        specs=[dg.AssetSpec(key)],
        check_specs=[dg.AssetCheckSpec("not_null_order_id", asset=key)],
        retry_policy=dg.RetryPolicy(max_retries=1),
    )
    def dbt_marts(context):
        yield dg.MaterializeResult(asset_key=key)
        yield dg.AssetCheckResult(asset_key=key, check_name="not_null_order_id", passed=True)
        if context.retry_number == 0:
            raise RuntimeError("Catalog write-write conflict on create")

    defs = dg.Definitions(assets=[dbt_marts])
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([dbt_marts], instance=instance, raise_on_error=False)
    assert result.success
    kinds = [e.event_type_value for e in result.all_events]
    assert "STEP_UP_FOR_RETRY" in kinds and "STEP_RESTARTED" in kinds

    console = RunConsole(tmp_path / "run.log")
    console.set_plan(step_plan(defs))
    for entry in instance.all_logs(result.run_id):
        console.on_event(entry)

    stage = console.stages["dbt marts"]
    assert stage.checks_passed == 1 and not stage.checks_failed
    assert stage.steps_done == 1 and not stage.failed
    assert "warning: dbt marts: step dbt_marts failed and ran again" in "\n".join(console.notes())
