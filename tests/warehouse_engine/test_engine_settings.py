"""CDP_ENGINE and CDP_SPARK_*: read in one place, refused clearly when wrong, and handed to
dbt without the conflicting pyspark variables. In-process, no Spark started."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestration.cli import main as cdp
from warehouse_engine.settings import EngineSettingError, EngineSettings
from warehouse_engine.spark_session import local_path_of


def test_duckdb_is_the_default_and_the_spark_warehouse_sits_next_to_the_duckdb_file(tmp_path):
    settings = EngineSettings.from_environment({}, duckdb_warehouse=tmp_path / "w.duckdb")
    assert settings.engine == "duckdb" and not settings.is_spark
    assert settings.dbt_target == "duckdb"
    assert settings.spark_warehouse == tmp_path / "spark_warehouse"
    assert settings.handoff_root == tmp_path / "spark_warehouse" / "handoff"


@pytest.mark.parametrize(
    "environ, named",
    [
        ({"CDP_ENGINE": "postgres"}, "CDP_ENGINE='postgres'"),
        ({"CDP_ENGINE": "spark", "CDP_SPARK_REMOTE": "http://h:15002"}, "CDP_SPARK_REMOTE"),
        ({"CDP_ENGINE": "spark", "CDP_SPARK_SHUFFLE_PARTITIONS": "0"}, "SHUFFLE_PARTITIONS"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(environ, named, tmp_path):
    with pytest.raises(EngineSettingError, match=named):
        EngineSettings.from_environment(environ, duckdb_warehouse=tmp_path / "w.duckdb")


def test_dbt_gets_a_local_master_or_a_remote_never_both(tmp_path):
    base = {"PATH": "/bin", "SPARK_REMOTE": "sc://stale:15002", "MASTER": "yarn"}
    local = EngineSettings.from_environment(
        {"CDP_ENGINE": "spark", "CDP_SPARK_MASTER": "local[2]"}, duckdb_warehouse=tmp_path / "w"
    ).dbt_environment(base)
    assert local["MASTER"] == "local[2]" and "SPARK_REMOTE" not in local
    assert local["CDP_ENGINE"] == "spark" and local["PATH"] == "/bin"
    assert local["CDP_SPARK_WAREHOUSE"] == str(tmp_path / "spark_warehouse")

    remote = EngineSettings.from_environment(
        {"CDP_ENGINE": "spark", "CDP_SPARK_REMOTE": "sc://cluster:15002"},
        duckdb_warehouse=tmp_path / "w",
    ).dbt_environment(base)
    assert remote["SPARK_REMOTE"] == "sc://cluster:15002" and "MASTER" not in remote


def test_cdp_run_with_a_bad_spark_setting_stops_before_touching_the_warehouse(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("CDP_ENGINE", "spark")
    monkeypatch.setenv("CDP_SPARK_REMOTE", "http://cluster:15002")
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    code = cdp(["run", "--landing", str(tmp_path), "--warehouse", str(warehouse)])
    assert code == 1
    err = capsys.readouterr().err
    assert "CDP_SPARK_REMOTE='http://cluster:15002'" in err and "sc://host:15002" in err
    assert not Path(warehouse).exists()


def test_cdp_spark_build_needs_a_duckdb_run_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CDP_ENGINE", "spark")
    code = cdp(["spark-build", "--warehouse", str(tmp_path / "none.duckdb")])
    assert code == 1
    assert "run `cdp run` on DuckDB first" in capsys.readouterr().err


def test_the_quality_steps_spark_session_is_configured_as_dbt_sparks_profile(tmp_path):
    """The quality step may open the run's Spark session before dbt does; dbt-spark then
    gets that session (`getOrCreate`), so it must carry the profile's parameters."""
    import re

    import yaml

    from warehouse_engine.spark_session import spark_session_parameters

    settings = EngineSettings.from_environment(
        {"CDP_ENGINE": "spark", "CDP_SPARK_SHUFFLE_PARTITIONS": "3"},
        duckdb_warehouse=tmp_path / "w.duckdb",
    )
    env = settings.dbt_environment({})
    profile = Path(__file__).resolve().parents[2] / "dbt_project" / "profiles.yml"
    spark_output = yaml.safe_load(profile.read_text())["cdp"]["outputs"]["spark"]

    def rendered(value) -> str:
        return re.sub(
            r"\{\{\s*env_var\('([A-Z_]+)',\s*'([^']*)'\)\s*\}\}",
            lambda m: env.get(m.group(1), m.group(2)),
            str(value),
        )

    from_profile = {k: rendered(v) for k, v in spark_output["server_side_parameters"].items()}
    assert spark_session_parameters(settings) == from_profile


@pytest.mark.parametrize(
    "location, path",
    [
        ("file:/srv/spark", Path("/srv/spark")),
        ("file:///srv/spark", Path("/srv/spark")),
        ("/srv/spark/", Path("/srv/spark")),
        ("hdfs://namenode/warehouse", None),
        ("s3a://bucket/warehouse", None),
        ("spark-warehouse", None),
    ],
)
def test_a_connect_servers_warehouse_folder_is_read_as_a_local_path_or_not_at_all(location, path):
    # A folder this machine cannot read as files is refused before a run uses the server
    # (warehouse_engine/spark_session.py, configure_remote_session).
    assert local_path_of(location) == path
