"""Session fixture: the hand-built fixture warehouse after one real `dbt build`."""

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
