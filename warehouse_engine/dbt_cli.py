"""The one way this repository's Python starts the dbt CLI on its own project: the Spark
build, the demo-data loader, the dbt tests and the benches. (Dagster's steps go through
dagster-dbt's resource instead.)"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
DBT_EXECUTABLE = Path(sys.executable).with_name("dbt")


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
