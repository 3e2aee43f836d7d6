"""The `cdp` process: what it prints reaches a pipe, and its exit code is the command's.

`cdp` ends with `os._exit` after its exit handlers (orchestration/cli.py,
`console_script`): buffered output must be flushed first, or a cron mail or a CI log
would lose the summary. The whole-run behaviour of that exit (a complete warehouse, the
instance's databases closed) is covered by the subprocess runs of
tests/orchestration/test_pipeline.py and tests/reliability/test_deliveries.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _cdp(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_output_to_a_pipe_is_flushed_and_the_exit_code_is_the_commands(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    filed = _cdp(
        "forget",
        "--email",
        "a.person@example.com",
        "--landing",
        str(landing),
        "--warehouse",
        str(warehouse),
        cwd=tmp_path,
    )
    assert filed.returncode == 0, filed.stderr
    assert filed.stdout.startswith("cdp forget: filed erasure request cli-")
    assert len(list((landing / "privacy" / "requests").rglob("*.csv"))) == 1

    refused = _cdp("explain", "--model", "--warehouse", str(warehouse), cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.startswith("cdp explain: warehouse ")
    assert "does not exist yet" in refused.stderr
    # Nothing else: no teardown noise (nanobind's reference-leak report) after the message.
    assert refused.stderr.count("\n") == 1
