"""Run the real dbt CLI against a hand-built DuckDB warehouse (raw.* and identity.* from SQL fixtures).

Each dbt invocation runs in its own process with CDP_WAREHOUSE and its own target/log
paths under tmp, so test runs never touch dbt_project/target or each other.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
DBT_EXECUTABLE = Path(sys.executable).with_name("dbt")


@dataclass(frozen=True)
class DbtInvocation:
    args: list[str]
    returncode: int
    output: str


def run_dbt(warehouse: Path, work_dir: Path, *args: str) -> DbtInvocation:
    """Run the project's dbt CLI against `warehouse`; artifacts and logs go under `work_dir`."""
    command = [
        str(DBT_EXECUTABLE),
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(work_dir / "target"),
        "--log-path",
        str(work_dir / "logs"),
    ]
    env = {**os.environ, "CDP_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    completed = subprocess.run(
        command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True
    )
    return DbtInvocation(command, completed.returncode, completed.stdout + completed.stderr)


def assert_dbt_succeeded(invocation: DbtInvocation) -> None:
    assert invocation.returncode == 0, (
        f"`dbt {invocation.args[1]}` failed (exit {invocation.returncode}); its output:\n"
        + invocation.output[-6000:]
    )


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
