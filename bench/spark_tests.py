"""What the Spark tests cost: wall and CPU seconds of each, the JVM included.

Runs pytest on each target in its own process (a cold JVM each, as when `make test`'s
workers meet them apart) and, with `--together`, all targets in one process (one JVM,
as when they share a worker: `xdist_group("spark")`). CPU seconds are summed over the
pytest process and every process under it (the JVM, its Python workers), each one's own
utime + stime read from /proc every half second, so a JVM that pytest's own accounting
misses is counted (a process that lives less than half a second, and each process's
last half second, are missed: a slight under-count, the same before and after).

    .venv/bin/python bench/spark_tests.py --label after \\
        tests/reliability/test_spark_equivalence.py tests/ingestion/test_spark_reading.py

`--repo` runs another checkout's tests (e.g. a worktree of main for the "before" figure)
with this virtualenv. Writes bench/results/spark_tests-<label>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of `pid` itself (its children are counted as processes of the tree:
    adding cutime would count a reaped child twice)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    values = fields[fields.rindex(")") + 2 :].split()
    return sum(int(v) for v in values[11:13]) / TICKS


def run(targets: list[str], repo: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo)
    load_before = os.getloadavg()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", *targets, "-q", "-x", "-p", "no:cacheprovider",
         "--durations=0"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    seen: dict[int, float] = {}
    loads = [load_before[0]]
    output: list[str] = []
    import threading

    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    while process.poll() is None:
        tree = _children()
        stack, pids = [process.pid], []
        while stack:
            pid = stack.pop()
            pids.append(pid)
            stack.extend(tree.get(pid, []))
        for pid in pids:
            cpu = _cpu_seconds(pid)
            if cpu is not None:
                seen[pid] = max(seen.get(pid, 0.0), cpu)
        loads.append(os.getloadavg()[0])
        time.sleep(0.5)
    wall = time.monotonic() - started
    reader.join()
    text = "".join(output)
    durations = [
        {"seconds": float(m.group(1)), "phase": m.group(2), "test": m.group(3)}
        for m in re.finditer(r"^([\d.]+)s (call|setup|teardown)\s+(\S+)$", text, re.M)
    ]
    summary = [line for line in text.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    return {
        "targets": targets,
        "exit_code": process.returncode,
        "summary": summary[-1] if summary else text[-2000:],
        "wall_s": round(wall, 1),
        "cpu_s_with_jvm": round(sum(seen.values()), 1),
        "load_average_1min": [round(min(loads), 2), round(max(loads), 2)],
        "durations_over_1s": [d for d in durations if d["seconds"] >= 1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="+")
    parser.add_argument("--label", required=True)
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--together", action="store_true", help="also all in one process")
    args = parser.parse_args()
    runs = [run([t], args.repo) for t in args.targets]
    if args.together:
        runs.append(run(args.targets, args.repo))
    result = {
        "label": args.label,
        "repo": str(args.repo),
        "cores": os.cpu_count(),
        "runs": runs,
        "separate_wall_s": round(sum(r["wall_s"] for r in runs[: len(args.targets)]), 1),
        "separate_cpu_s": round(sum(r["cpu_s_with_jvm"] for r in runs[: len(args.targets)]), 1),
    }
    out = ROOT / "bench" / "results" / f"spark_tests-{args.label}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for r in runs:
        print(
            f"{' + '.join(Path(t).name for t in r['targets'])}: {r['summary'].strip()} | "
            f"wall {r['wall_s']} s, CPU {r['cpu_s_with_jvm']} s (JVM included), "
            f"load {r['load_average_1min'][0]}-{r['load_average_1min'][1]}"
        )
    print(f"separately: wall {result['separate_wall_s']} s, CPU {result['separate_cpu_s']} s")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
