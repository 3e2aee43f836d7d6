"""Where the demo's first run spends CPU outside its data work: thread CPU seconds, by part.

    .venv/bin/python bench/demo_fixed_costs.py [--tree PATH] [--landing ZONE] [--out FILE]

Runs `cdp run` (into a fresh warehouse, with a fresh Dagster instance) inside a child
process that counts, in CPU seconds (not wall: on a shared machine wall time follows the
load): importing the code location (`orchestration.definitions`: Dagster, dagster-dbt,
GX), Dagster's event handling (`handle_new_event`, on the thread that logs the event:
storing it in the event log and the index), each Dagster step (process CPU between its
start and end events), and each in-process dbt command. `--tree` runs another checkout's
code (e.g. `git archive main` unpacked, its dbt project parsed) with this virtualenv, for a
before/after on the same zone; alternate the sides and compare. Without `--landing` it
generates the demo zone (`make demo`'s). Prints the figures; `--out` writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _child(tree: Path, landing: Path, warehouse: Path, out: Path) -> int:
    """In the child process: the counters, then `cdp run` as `cdp` runs it."""
    sys.path.insert(0, str(tree))
    from dagster._core.instance.methods.event_methods import EventMethods

    figures: dict = {"steps": {}, "dbt": [], "events": 0, "event_handling_cpu_s": 0.0}
    starts: dict[str, float] = {}
    handle = EventMethods.handle_new_event

    def counted(self, event, *args, **kwargs):
        kind = event.get_dagster_event().event_type_value if event.is_dagster_event else None
        if kind is not None:
            if kind == "STEP_START":
                starts[event.step_key] = time.process_time()
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
                figures["steps"][event.step_key] = round(
                    time.process_time() - starts[event.step_key], 3
                )
        began = time.thread_time()
        try:
            return handle(self, event, *args, **kwargs)
        finally:
            figures["event_handling_cpu_s"] += time.thread_time() - began
            figures["events"] += 1

    EventMethods.handle_new_event = counted

    from dbt.cli.main import dbtRunner

    invoke = dbtRunner.invoke

    def timed_invoke(self, args, **kwargs):
        began = time.process_time()
        try:
            return invoke(self, args, **kwargs)
        finally:
            figures["dbt"].append([args[0], round(time.process_time() - began, 3)])

    dbtRunner.invoke = timed_invoke

    began = time.process_time()
    import orchestration.definitions  # noqa: F401 - what `cdp run` imports first
    from orchestration import cli

    figures["import_definitions_cpu_s"] = round(time.process_time() - began, 3)
    code = cli.main(["run", "--landing", str(landing), "--warehouse", str(warehouse)])
    figures["process_cpu_s"] = round(time.process_time(), 3)
    figures["event_handling_cpu_s"] = round(figures["event_handling_cpu_s"], 3)
    figures["exit_code"] = code
    figures["pyspark_imported"] = "pyspark" in sys.modules
    out.write_text(json.dumps(figures, indent=2) + "\n")
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=REPO, help="the code to run (a checkout)")
    parser.add_argument("--landing", type=Path, help="a demo landing zone (default: generate)")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        tree, landing, warehouse, out = map(Path, args.child)
        return _child(tree, landing, warehouse, out)

    sys.path.insert(0, str(REPO))
    from bench import cdp_runs

    tree = args.tree.resolve()
    with tempfile.TemporaryDirectory(prefix="cdp-demo-costs-") as tmp:
        work = Path(tmp)
        home = cdp_runs.fresh_dagster_home(work / "dagster_home")
        env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(tree)}
        env.pop("CDP_ALERT_WEBHOOK", None)
        zone = work / "landing"
        if args.landing:
            shutil.copytree(args.landing, zone)
        else:
            cdp_runs.generate_landing(zone, 2000, 14, 7, env, erasure_requests=3, markers=True)
        figures_file = work / "figures.json"
        load = os.getloadavg()[0]
        child = [str(p) for p in (tree, zone, work / "data" / "warehouse.duckdb", figures_file)]
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", *child],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if not figures_file.exists():
            print(proc.stdout[-2000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)
            return 1
        figures = json.loads(figures_file.read_text())
    figures["tree"] = str(tree)
    figures["load_average_1m_before"] = load
    figures["started_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(
        f"process {figures['process_cpu_s']:.2f} CPU s; importing the code location "
        f"{figures['import_definitions_cpu_s']:.2f}; {figures['events']} events handled in "
        f"{figures['event_handling_cpu_s']:.2f}; dbt "
        + ", ".join(f"{cmd} {cpu:.2f}" for cmd, cpu in figures["dbt"])
        + f"; steps {sum(figures['steps'].values()):.2f} (load {load:.1f})"
    )
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
