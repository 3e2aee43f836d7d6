"""What a process tree used: CPU seconds and peak memory, from /proc and getrusage.

For the benches that start processes they do not wait for (a JVM, a Spark Connect
server); `cdp_runs.run_cdp` takes a waited-for child's usage from wait4 instead.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_tree_usage(root_pid: int) -> tuple[float, float]:
    """(CPU seconds, GB of summed peak RSS) of `root_pid` and its descendants, from /proc
    (reaped children's CPU is in their parent's cutime/cstime)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(stat[1])
            except (OSError, IndexError):
                continue
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    cpu, peak_kb = 0.0, 0
    for pid in tree:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += sum(int(v) for v in stat[11:15]) / CLK_TCK
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb += int(line.split()[1])
        except OSError:
            continue
    return cpu, peak_kb / 1024 / 1024


def own_usage() -> tuple[float, float]:
    """(CPU seconds, GB of peak RSS) of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024 / 1024
