"""The demo's first run, this tree against an earlier commit, back to back: CPU seconds.

    .venv/bin/python bench/demo_ab.py --base REF [--pairs 2] [--customers 2000] [--days 14]

On a shared machine a run's wall seconds follow the load, and a figure measured an hour
ago is no baseline. This bench generates the demo landing zone once (as `make demo`: 3
erasure requests, day markers), exports REF's tree (`git archive`), parses its dbt
project and compiles its bytecode as `make setup` does, then alternates first runs of
`cdp run`, REF's and this tree's (the same virtualenv; REF's code first on PYTHONPATH),
each with a fresh copy of the zone, a fresh Dagster instance and a fresh warehouse. Prints each run's wall and CPU
seconds (the run and its dbt), the load average and the erasure step's seconds, and the
mean CPU seconds per side; writes bench/results/demo_ab.json (with every step's seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import cdp_runs  # noqa: E402


def export_tree(ref: str, folder: Path) -> Path:
    """REF's files in `folder`, with its dbt project parsed (as `make setup` does)."""
    folder.mkdir(parents=True)
    archive = folder.with_suffix(".tar")
    subprocess.run(["git", "archive", "-o", str(archive), ref], cwd=REPO, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    archive.unlink()
    env = {**os.environ, "PYTHONPATH": str(folder)}
    subprocess.run(
        [sys.executable, "-c", "import orchestration.assets.dbt"], cwd=folder, env=env, check=True
    )
    # Bytecode as `make setup` writes it for this tree (where PYTHONDONTWRITEBYTECODE is set,
    # a tree without it would compile its modules in every run).
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(folder)], check=True)
    return folder


def first_run(tree: Path, landing: Path, work: Path) -> dict:
    zone = work / "landing"
    shutil.copytree(landing, zone)
    home = cdp_runs.fresh_dagster_home(work / "dagster_home")
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(tree)}
    env.pop("CDP_ALERT_WEBHOOK", None)
    warehouse = work / "data" / "warehouse.duckdb"
    run = cdp_runs.run_cdp(
        ["run", "--landing", str(zone), "--warehouse", str(warehouse)], env, cwd=tree
    )
    steps = cdp_runs.step_seconds(home, run.run_id) if run.run_id else {}
    return {
        "wall_seconds": run.wall_seconds,
        "cpu_seconds": run.cpu_seconds,
        "load_average_1m_before": run.load_before,
        "erasure_step_seconds": steps.get("privacy__erasure"),
        "step_seconds": steps,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the earlier commit (git ref)")
    parser.add_argument("--pairs", type=int, default=2)
    cdp_runs.add_zone_arguments(parser, customers=2000, days=14, landing=False)
    args = parser.parse_args()
    base_commit = subprocess.run(
        ["git", "rev-parse", "--short", args.base],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    head_commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="cdp-demo-ab-") as tmp:
        work = Path(tmp)
        landing = work / "landing"
        env = {**os.environ, "DAGSTER_HOME": str(cdp_runs.fresh_dagster_home(work / "gen_home"))}
        cdp_runs.generate_landing(
            landing, args.customers, args.days, args.seed, env, erasure_requests=3, markers=True
        )
        trees = {"base": export_tree(args.base, work / "base"), "head": REPO}
        runs: dict[str, list[dict]] = {"base": [], "head": []}
        for pair in range(args.pairs):
            for side in ("base", "head"):
                run = first_run(trees[side], landing, work / f"{side}-{pair}")
                run["started_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                runs[side].append(run)
                print(
                    f"{side} ({base_commit if side == 'base' else head_commit}) pair {pair + 1}: "
                    f"{run['wall_seconds']:5.1f} s wall {run['cpu_seconds']:5.1f} s CPU  "
                    f"load {run['load_average_1m_before']:.1f}  erasure step "
                    f"{run['erasure_step_seconds']} s",
                    flush=True,
                )
                shutil.rmtree(work / f"{side}-{pair}")
    means = {
        side: round(statistics.mean(r["cpu_seconds"] for r in rs), 1) for side, rs in runs.items()
    }
    print(f"mean CPU s of a first run: base {means['base']}, head {means['head']}")
    result = {
        "customers": args.customers,
        "days": args.days,
        "seed": args.seed,
        "base": base_commit,
        "head": head_commit,
        "mean_cpu_seconds": means,
        "runs": runs,
        "note": (
            "First runs of `cdp run` on the demo zone, base and head alternating on the same "
            "machine; cpu_seconds covers the run and its dbt. Wall seconds follow the load."
        ),
    }
    out = REPO / "bench" / "results" / "demo_ab.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
