"""The warehouse's run copy: a re-execution continues the failed run's copy, unless
another run committed since it was taken."""

from __future__ import annotations

import duckdb
import pytest

from orchestration.resources import WarehouseResource
from orchestration.run_lock import read_generation


def _state(base) -> str:
    with duckdb.connect(str(base), read_only=True) as con:
        return con.execute("select state from t").fetchone()[0]


def _failed_run(base, run_id: str, state: str) -> None:
    """A run that loaded raw into its copy, then failed a later step (no commit)."""
    failed = WarehouseResource(path=str(base))
    failed.begin_run(run_id)
    with failed.connect() as con:
        con.execute(f"update t set state = '{state}'")
    failed.end_run()


@pytest.fixture
def base(tmp_path):
    base = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(base)).execute("create table t as select 'before' as state").close()
    return base


def test_reexecution_resumes_the_failed_runs_copy_and_commits_it(base, tmp_path):
    _failed_run(base, "run-1", "loaded by run-1")
    assert _state(base) == "before"

    retry = WarehouseResource(path=str(base))
    retry.begin_run("run-2", parent_run_id="run-1")
    with retry.connect() as con:
        assert con.execute("select state from t").fetchone()[0] == "loaded by run-1"
    assert retry.commit_run()
    retry.end_run()
    assert _state(base) == "loaded by run-1"
    assert read_generation(base) == 1
    assert not any((tmp_path / ".runs").iterdir())


def test_reexecution_starts_fresh_when_another_run_committed_since(base, tmp_path):
    _failed_run(base, "run-1", "loaded by run-1")

    other = WarehouseResource(path=str(base))
    other.begin_run("run-other")
    with other.connect() as con:
        con.execute("update t set state = 'committed by another run'")
    assert other.commit_run()
    other.end_run()

    retry = WarehouseResource(path=str(base))
    retry.begin_run("run-2", parent_run_id="run-1")
    with retry.connect() as con:
        # The stale copy of run-1 is not resumed: it would undo the other run's commit.
        assert con.execute("select state from t").fetchone()[0] == "committed by another run"
    assert retry.commit_run()
    retry.end_run()
    assert _state(base) == "committed by another run"
    assert read_generation(base) == 2
    assert not any((tmp_path / ".runs").iterdir())
