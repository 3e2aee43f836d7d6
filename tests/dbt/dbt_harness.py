"""Run the real dbt CLI against a hand-built DuckDB warehouse (rows from SQL fixtures).

The tables themselves are not restated here: `raw.*` comes from the contract
(`ingestion.load.ensure_raw_schema`) and `identity.*` from `identity.persistence.TABLE_COLUMNS`,
so the dbt project is tested against the tables the loader and the identity engine write.

Each dbt invocation runs with its own target/log paths under tmp, so test runs never touch
dbt_project/target or each other.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import duckdb

from warehouse_engine.dbt_cli import (
    dbt_command,
    duckdb_profile_environment,
    keep_parse,
    start_from_kept_parse,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass(frozen=True)
class DbtInvocation:
    args: list[str]
    returncode: int
    output: str


def run_dbt(warehouse: Path, work_dir: Path, *args: str) -> DbtInvocation:
    """Run the project's dbt CLI against `warehouse`; artifacts and logs go under `work_dir`.

    Through dbt's programmatic entry point in this process, as the pipeline's dbt steps run
    (orchestration/dbt_in_process.py): a dbt process of its own per call spent ~3 s of a
    small run importing dbt again. The profile, the parse state and the closing of the
    DuckDB file are those of the subprocess path (warehouse_engine.dbt_cli.run_on_duckdb).
    """
    from dbt.cli.main import dbtRunner

    from orchestration.dbt_in_process import _DBT_LOCK, _close_duckdb

    command = dbt_command(args, work_dir)
    target = work_dir / "target"
    output: list[str] = []

    def keep(event) -> None:
        if event.info.level != "debug":
            output.append(event.info.msg)

    with (
        _DBT_LOCK,
        mock.patch.dict(os.environ, duckdb_profile_environment(warehouse)),
        contextlib.chdir(warehouse.parent),
    ):
        kept = start_from_kept_parse(warehouse.name, args, target)
        try:
            result = dbtRunner(callbacks=[keep]).invoke(command[1:])
        finally:
            _close_duckdb()
    if result.exception is not None:
        output.append(f"dbt failed: {result.exception!r}")
    returncode = 0 if result.success else (2 if result.exception is not None else 1)
    if returncode == 0:
        keep_parse(kept, target)
    return DbtInvocation(command, returncode, "\n".join(output))


def assert_dbt_succeeded(invocation: DbtInvocation) -> None:
    assert invocation.returncode == 0, (
        f"`dbt {invocation.args[1]}` failed (exit {invocation.returncode}); its output:\n"
        + invocation.output[-6000:]
    )


def create_contract_tables(warehouse: Path) -> None:
    """`raw.*` and `identity.*` exactly as ingestion/ and identity/ declare them."""
    from identity.persistence import SCHEMA as IDENTITY_SCHEMA
    from identity.persistence import TABLE_COLUMNS as IDENTITY_TABLE_COLUMNS
    from ingestion.load import ensure_raw_schema

    con = duckdb.connect(str(warehouse))
    try:
        ensure_raw_schema(con)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {IDENTITY_SCHEMA}")
        for table, columns in IDENTITY_TABLE_COLUMNS.items():
            body = ", ".join(f"{name} {sql_type}" for name, sql_type in columns.items())
            con.execute(f"CREATE TABLE {IDENTITY_SCHEMA}.{table} ({body})")
    finally:
        con.close()


def execute_fixture(warehouse: Path, *fixture_names: str) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        for name in fixture_names:
            con.execute((FIXTURES / f"{name}.sql").read_text())
    finally:
        con.close()


@dataclass(frozen=True)
class BuiltWarehouse:
    path: Path
    build: DbtInvocation

    def query(self, sql: str) -> list[tuple]:
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def scalar(self, sql: str):
        return self.query(sql)[0][0]
