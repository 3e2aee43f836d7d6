"""What a warehouse holds, in numbers a reliability test (and bench/chaos.py) can compare.

Row counts per raw table and landing day, and per published mart: two warehouses that
agree on these hold the same loads and the same published state.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb

from ingestion.contract import RAW_TABLES


def raw_counts(warehouse: Path) -> dict[str, int]:
    """`table/day` -> rows, for every raw table (opens the file read-only)."""
    counts = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in RAW_TABLES:
            for day, rows in con.execute(
                f"select cast(_dt as varchar), count(*) from raw.{table} group by 1"
            ).fetchall():
                counts[f"{table}/{day}"] = rows
    return counts


# Marts that keep one row per run by design (the models' backtest history): their row count
# says how many runs trained, not which state the marts are in.
RUN_HISTORY_MARTS = {"model_performance"}


def mart_counts(database: Path) -> dict[str, int]:
    """`table` -> rows, for every table in the `marts` schema of `database` (but the
    run-history marts); in `bi.duckdb` the marts are views over the published Parquet."""
    with duckdb.connect(str(database), read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts' "
                "and table_type in ('BASE TABLE', 'VIEW') order by 1"
            ).fetchall()
        ]
        return {
            t: con.execute(f'select count(*) from marts."{t}"').fetchone()[0]
            for t in tables
            if t not in RUN_HISTORY_MARTS
        }


def leftovers(warehouse: Path) -> list[str]:
    """Files a finished or killed run must not leave behind: copies, temp files, WALs."""
    folder = warehouse.parent
    found = (
        [str(p.relative_to(folder)) for p in (folder / ".runs").glob("*")]
        if (folder / ".runs").exists()
        else []
    )
    found += [str(p.relative_to(folder)) for p in folder.glob(".bi*")]
    found += [str(p.relative_to(folder)) for p in folder.glob("bi_parquet_versions/*.tmp")]
    found += [str(p.relative_to(folder)) for p in folder.glob("*.wal")]
    tmp = folder / ".duckdb_tmp"
    if tmp.exists():
        found += [str(p.relative_to(folder)) for p in tmp.iterdir()]
    return sorted(found)


class CdpRun:
    """A real `cdp run` in its own process group (so a SIGKILL reaches all of it, dbt too),
    its output collected by a thread so that a busy pipe never stalls it."""

    def __init__(self, landing: Path, warehouse: Path, *extra: str, env: dict | None = None):
        run_env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        run_env.update(env or {})
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestration.cli",
                "run",
                "--landing",
                str(landing),
                "--warehouse",
                str(warehouse),
                *extra,
            ],
            env=run_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, needle: str, timeout_s: float = 300) -> str:
        """Wait until a line of output contains `needle`; returns that line."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline:
            lines = self.lines[seen:]
            for line in lines:
                if needle in line:
                    return line
            seen += len(lines)
            if self.proc.poll() is not None and seen == len(self.lines):
                self._reader.join(timeout=5)
                if not any(needle in line for line in self.lines[seen:]):
                    break
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} never appeared; output:\n{self.output[-4000:]}")

    def kill(self) -> bool:
        """SIGKILL the whole process group. True when the run was still running then."""
        alive = self.proc.poll() is None
        if alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._reader.join(timeout=5)
        return alive and self.proc.returncode == -signal.SIGKILL

    def finish(self, timeout_s: float = 600) -> int:
        self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        return self.proc.returncode


def run_id_of(log_line: str) -> str:
    """The run id in a Dagster console log line (`... - cdp_pipeline - <run id> - ...`)."""
    parts = [p.strip() for p in log_line.split(" - ")]
    return parts[parts.index("cdp_pipeline") + 1]
