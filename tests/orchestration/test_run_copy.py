"""The warehouse's run copy: a re-execution continues the failed run's copy."""

from __future__ import annotations

import duckdb

from orchestration.resources import WarehouseResource


def test_reexecution_resumes_the_failed_runs_copy_and_commits_it(tmp_path):
    base = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(base)).execute("create table t as select 'before' as state").close()

    failed = WarehouseResource(path=str(base))
    failed._run_id, failed._transactional = "run-1", True
    with failed.connect() as con:  # the failed run loaded raw, then a later step failed
        con.execute("update t set state = 'loaded by run-1'")
    assert (
        duckdb.connect(str(base), read_only=True).execute("select state from t").fetchone()[0]
        == "before"
    )

    retry = WarehouseResource(path=str(base))
    retry._run_id, retry._transactional = "run-2", True
    retry._resume_parent_copy("run-1")
    with retry.connect() as con:
        assert con.execute("select state from t").fetchone()[0] == "loaded by run-1"
    assert retry.commit_run()
    assert (
        duckdb.connect(str(base), read_only=True).execute("select state from t").fetchone()[0]
        == "loaded by run-1"
    )
    assert not any((tmp_path / ".runs").glob("*.duckdb"))
