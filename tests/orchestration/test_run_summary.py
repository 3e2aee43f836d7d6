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
