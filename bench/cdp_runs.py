"""Timing `cdp` as a user runs it: its own process, a Dagster instance of its own.

The benches that measure whole runs (demo.py, nightly.py, experience.py) share this: a
fresh DAGSTER_HOME, `cdp generate`, a timed `cdp ...` process (wall and CPU seconds, peak
RSS, the load average around it, its output) and the seconds of each Dagster step, read
back from the run's event log. Wall time on the shared 2-core machine follows the load;
CPU seconds and the per-step breakdown are the less load-sensitive figures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.process_usage import jvm_processes, own_cpu_seconds

REPO = Path(__file__).resolve().parent.parent
CDP = Path(sys.executable).with_name("cdp")


@dataclass(frozen=True)
class CdpRun:
    """One finished `cdp` process: what it cost and what it printed."""

    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    load_before: float
    load_after: float
    output: str
    # Spark's JVM and its workers (sampled each half second; not in cpu_seconds: the
    # process never reaps its JVM, so wait4 does not count it)
    jvm_cpu_seconds: float = 0.0

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()

    @property
    def run_id(self) -> str | None:
        """The Dagster run id `cdp run` prints in its first line and its summary."""
        for line in self.lines:
            if "(run " in line:
                return line.rsplit("(run ", 1)[1].split(")", 1)[0].strip()
        return None


def fresh_dagster_home(folder: Path) -> Path:
    """A Dagster instance of the bench's own, configured as `make setup` configures one."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "orchestration" / "dagster.yaml", folder / "dagster.yaml")
    return folder


def night_env(dagster_home: Path, warehouse: Path, landing: Path) -> dict:
    """The environment of a bench's `cdp run` on `warehouse` from `landing` (no settling
    wait: the zone's files are all there)."""
    return {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "CDP_SETTLE_SECONDS": "0",
        "CDP_WAREHOUSE": str(warehouse),
        "CDP_LANDING_DIR": str(landing),
    }


def history_landing(history: Path) -> Path | None:
    """The landing zone a history kept by `bench/nightly.py --workdir` was built from
    (`<history>/landing.txt`), or None when the history does not record it."""
    recorded = history / "landing.txt"
    return Path(recorded.read_text().strip()) if recorded.exists() else None


def restore_history(history: Path, warehouse_dir: Path, dagster_home: Path) -> None:
    """Put a kept history's warehouse folder and Dagster home in place of these two."""
    for folder in (warehouse_dir, dagster_home):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(history / "warehouse", warehouse_dir)
    shutil.copytree(history / "dagster_home", dagster_home)


def run_cdp(args: list[str], env: dict, cwd: Path = REPO) -> CdpRun:
    """Run `cdp <args>` (in `cwd`) to its end; exit with its last output when it fails."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [str(CDP), *args], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )
        # wait4's usage covers the process and the children it reaped (dbt's processes),
        # not a JVM left to exit with it: the JVMs' processes are sampled from /proc.
        seen: dict[int, float] = {}
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            for each in jvm_processes(process.pid):
                cpu = own_cpu_seconds(each)
                if cpu is not None:
                    seen[each] = max(seen.get(each, 0.0), cpu)
            time.sleep(0.5)
        wall = time.perf_counter() - started
        log.seek(0)
        output = log.read()
    returncode = os.waitstatus_to_exitcode(status)
    if returncode != 0:
        print(output[-4000:], file=sys.stderr)
        raise SystemExit(f"cdp {' '.join(args)} failed ({returncode})")
    return CdpRun(
        wall_seconds=round(wall, 1),
        cpu_seconds=round(usage.ru_utime + usage.ru_stime, 1),
        jvm_cpu_seconds=round(sum(seen.values()), 1),
        peak_rss_mb=round(usage.ru_maxrss / 1024),
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
        output=output,
    )


def generate_landing(
    landing: Path,
    customers: int,
    days: int,
    seed: int,
    env: dict,
    erasure_requests: int = 0,
    markers: bool = False,
    bad: bool = False,
    skipped_day: bool = False,
) -> CdpRun:
    """`cdp generate` a landing zone (`make demo` asks for 3 erasure requests and day markers;
    `bad` adds the generator's malformed files and rows, `skipped_day` an export outage)."""
    return run_cdp(
        [
            "generate",
            "--out",
            str(landing),
            "--customers",
            str(customers),
            "--days",
            str(days),
            "--seed",
            str(seed),
            *(["--erasure-requests", str(erasure_requests)] if erasure_requests else []),
            *(["--markers"] if markers else []),
            *(["--bad"] if bad else []),
            *(["--skipped-day"] if skipped_day else []),
        ],
        env,
    )


def step_seconds(dagster_home: Path, run_id: str) -> dict[str, float]:
    """Seconds of each step of a run, in the order the steps started.

    `run_id` may be the 8-character prefix `cdp run` prints."""
    from dagster import DagsterInstance

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    try:
        with DagsterInstance.get() as instance:
            full_id = next(
                (r.run_id for r in instance.get_runs(limit=50) if r.run_id.startswith(run_id)),
                run_id,
            )
            stats = instance.get_run_step_stats(full_id)
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous
    return {
        s.step_key: round((s.end_time or 0) - (s.start_time or 0), 1)
        for s in sorted(stats, key=lambda s: s.start_time or 0)
    }


def add_zone_arguments(parser, customers: int, days: int, landing: bool = True) -> None:
    """The landing zone a whole-run bench generates (or reuses with --landing)."""
    parser.add_argument("--customers", type=int, default=customers)
    parser.add_argument("--days", type=int, default=days)
    parser.add_argument("--seed", type=int, default=7)
    if landing:
        parser.add_argument(
            "--landing", type=Path, help="reuse this landing zone instead of generating one"
        )
