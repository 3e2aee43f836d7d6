"""`cdp run --full-refresh`: the job's dbt steps accept it and pass it to dbt."""

from __future__ import annotations

import dagster as dg

from orchestration.assets.dbt import dbt_build_args, full_refresh_run_config
from orchestration.cli import build_parser


def test_the_flag_becomes_run_config_the_pipeline_job_accepts():
    from orchestration.definitions import defs

    args = build_parser().parse_args(["run", "--full-refresh"])
    assert args.full_refresh is True
    assert build_parser().parse_args(["run"]).full_refresh is False

    job = defs.resolve_job_def("cdp_pipeline")
    run_config = {"ops": full_refresh_run_config()}
    assert set(run_config["ops"]) == {"dbt_staging", "dbt_marts"}
    result = dg.validate_run_config(job, run_config)
    assert result["ops"]["dbt_staging"]["config"]["full_refresh"] is True
    assert result["ops"]["dbt_marts"]["config"]["full_refresh"] is True


def test_only_a_full_refresh_rebuilds_incremental_models():
    assert "--full-refresh" in dbt_build_args(full_refresh=True)
    nightly = dbt_build_args()
    assert "--full-refresh" not in nightly
    assert nightly[:1] == ["build"] and "unit_test" in nightly
