"""How this repository's Python starts the dbt CLI on its own project outside Dagster: the
Spark build, the demo-data loader and the benches in a dbt process of their own, the dbt
tests through dbt's programmatic entry point with the same profile and parse state
(tests/dbt/dbt_harness.py). Dagster's steps go through dagster-dbt's resource instead."""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
DBT_EXECUTABLE = Path(sys.executable).with_name("dbt")
PARTIAL_PARSE_FILE = "partial_parse.msgpack"

# This process's parse states, one per (warehouse file name, --vars): see run_on_duckdb.
_parse_states: Path | None = None


def dbt_command(args: Sequence[str], work_dir: Path) -> list[str]:
    """`dbt <args>` on the project, its artifacts and logs under `work_dir`, so that two
    invocations at once never share a target folder."""
    return [
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


def run_on_duckdb(
    warehouse: Path, work_dir: Path, args: Sequence[str]
) -> subprocess.CompletedProcess:
    """`dbt <args>` in a process of its own against the DuckDB file `warehouse`, artifacts
    and logs under `work_dir`; the completed process, its output captured.

    A new target folder means a full parse of the project (~3 s of the ~10 a small `dbt
    run` takes), and so does a profile that differs from the one the saved parse was made
    with, which a warehouse path of its own per call would be. So dbt runs in the
    warehouse's folder with the profile naming the file relatively (the profile's path
    is resolved from where dbt runs), and a new target folder starts from the parse state
    an earlier call of this process left for the same file name and vars. dbt's partial
    parsing still re-reads every changed project file, so a state from before an edit to
    the project is a correct start, only a slower one.
    """
    target = work_dir / "target"
    kept = start_from_kept_parse(warehouse.name, args, target)
    completed = subprocess.run(
        dbt_command(args, work_dir),
        cwd=warehouse.parent,
        env={**os.environ, **duckdb_profile_environment(warehouse)},
        capture_output=True,
        text=True,
    )
    if completed.returncode == 0:
        keep_parse(kept, target)
    return completed


def duckdb_profile_environment(warehouse: Path) -> dict[str, str]:
    """The environment the profile reads: the DuckDB output, naming `warehouse` relative to
    its folder (dbt runs there), so every warehouse of one name has the same profile."""
    return {
        "CDP_ENGINE": "duckdb",
        "CDP_WAREHOUSE": warehouse.name,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def start_from_kept_parse(warehouse_name: str, args: Sequence[str], target: Path) -> Path:
    """Put the parse state this process kept for `warehouse_name` and `args`' --vars into
    the target folder `target` (when there is one); the path it is kept at."""
    global _parse_states
    if _parse_states is None:
        _parse_states = Path(tempfile.mkdtemp(prefix="cdp-dbt-parse-"))
        atexit.register(shutil.rmtree, _parse_states, ignore_errors=True)
    kept = _parse_states / _parse_state_key(warehouse_name, args)
    if kept.exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept, target / PARTIAL_PARSE_FILE)
    return kept


def keep_parse(kept: Path, target: Path) -> None:
    """Keep the parse state a successful dbt command left in `target`, if none is kept yet."""
    if (target / PARTIAL_PARSE_FILE).exists() and not kept.exists():
        shutil.copyfile(target / PARTIAL_PARSE_FILE, kept)


def _parse_state_key(warehouse_name: str, args: Sequence[str]) -> str:
    """A file name for what a parse depends on besides the project: the profile (here the
    warehouse's file name) and the `--vars`."""
    variables = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--vars"]
    digest = hashlib.sha256("\0".join([warehouse_name, *variables]).encode()).hexdigest()
    return f"{digest[:16]}.msgpack"
