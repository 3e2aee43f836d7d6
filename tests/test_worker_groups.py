"""The suite's worker groups (tests/worker_groups.py): a file that uses an expensive shared
fixture is grouped with the others that use it, so `make test` builds each fixture once."""

from __future__ import annotations

from tests.worker_groups import (
    JOINED_FILES,
    LONGEST_FIRST,
    SHARED_FIXTURES,
    SPARK,
    TESTS,
    worker_group,
)


def _files_using(fixture: str) -> list[str]:
    return sorted(
        p.relative_to(TESTS.parent).as_posix()
        for p in TESTS.rglob("test_*.py")
        if f"{fixture}," in p.read_text() or f"{fixture})" in p.read_text()
    )


def _relative(file: str) -> str:
    """A path from the repository (as _files_using gives) as JOINED_FILES names it."""
    return file.removeprefix("tests/")


def test_files_sharing_an_expensive_fixture_share_a_worker_group():
    for fixture, group in SHARED_FIXTURES.items():
        users = [
            f
            for f in _files_using(fixture)
            if worker_group(f) != "test_worker_groups.py" and _relative(f) not in JOINED_FILES
        ]
        assert {worker_group(f) for f in users} <= {group}, fixture
    assert worker_group("tests/reliability/test_killed_runs.py") == "reliability reference run"
    assert worker_group("tests/reliability/test_privacy.py") == "reliability reference run"
    assert worker_group("tests/dbt/test_dbt_build.py") == "built dbt warehouse"
    assert worker_group("tests/predictions/test_prediction_assets.py") == "predictions warehouse"
    # The Spark tests are one group, one JVM for all, with a reference run of its own.
    assert (
        worker_group("tests/ingestion/test_spark_reading.py")
        == worker_group("tests/reliability/test_spark_equivalence.py")
        == worker_group("tests/reliability/test_identity_on_engines.py")
        == SPARK
    )
    # A file without one is a group of its own (its module fixtures are built once).
    assert worker_group("tests/reliability/test_alerts.py") == "reliability/test_alerts.py"
    assert worker_group("tests/orchestration/test_pipeline.py") == "orchestration/test_pipeline.py"


def test_every_ranked_group_still_exists():
    groups = {worker_group(p) for p in TESTS.rglob("test_*.py")}
    assert set(LONGEST_FIRST) <= groups, set(LONGEST_FIRST) - groups
