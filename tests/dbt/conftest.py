"""Session fixtures: the hand-built fixture warehouse after one real `dbt build`, and its
full rebuilds after SQL fixtures (what the incremental tests compare with)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.dbt.dbt_harness import (
    BuiltWarehouse,
    assert_dbt_succeeded,
    create_contract_tables,
    execute_fixture,
    run_dbt,
)


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory) -> BuiltWarehouse:
    """The fixture warehouse after one full `dbt build` (models, contracts, data and unit tests)."""
    work_dir = tmp_path_factory.mktemp("dbt_build")
    warehouse = work_dir / "warehouse.duckdb"
    create_contract_tables(warehouse)
    execute_fixture(warehouse, "raw_rows", "identity_rows", "experience_rows")
    build = run_dbt(warehouse, work_dir, "build")
    assert_dbt_succeeded(build)
    return BuiltWarehouse(warehouse, build)


@pytest.fixture
def copy_of_built_warehouse(built_warehouse, tmp_path):
    """A private copy of the built warehouse a test may change."""

    def copy(name: str) -> Path:
        target = tmp_path / name / "warehouse.duckdb"
        target.parent.mkdir()
        shutil.copyfile(built_warehouse.path, target)
        return target

    return copy


@pytest.fixture(scope="session")
def _full_rebuilds(built_warehouse, tmp_path_factory):
    """The built warehouse after SQL fixtures, rebuilt with `dbt run --full-refresh`, once per
    set of fixtures in the session: several incremental tests compare their nights with the
    same full rebuild (five with the one after late data and changed people)."""
    rebuilt: dict[tuple[str, ...], Path] = {}

    def rebuild(*fixtures: str) -> Path:
        if fixtures not in rebuilt:
            work_dir = tmp_path_factory.mktemp("full_rebuild")
            warehouse = work_dir / "warehouse.duckdb"
            shutil.copyfile(built_warehouse.path, warehouse)
            execute_fixture(warehouse, *fixtures)
            assert_dbt_succeeded(run_dbt(warehouse, work_dir, "run", "--full-refresh"))
            rebuilt[fixtures] = warehouse
        return rebuilt[fixtures]

    return rebuild


@pytest.fixture
def full_rebuild_after(_full_rebuilds, tmp_path):
    """A private copy of the built warehouse after `fixtures`, rebuilt with `--full-refresh`:
    what an incremental run after the same fixtures must equal (a test may go on changing it)."""

    def copy(*fixtures: str) -> Path:
        target = tmp_path / "full_rebuild" / "warehouse.duckdb"
        target.parent.mkdir()
        shutil.copyfile(_full_rebuilds(*fixtures), target)
        return target

    return copy
