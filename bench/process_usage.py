"""What a process tree used: CPU seconds and peak memory, from /proc and getrusage.

For the benches that start processes they do not wait for (a JVM, a Spark Connect
server); `cdp_runs.run_cdp` takes a waited-for child's usage from wait4 instead, and
samples the JVMs under it over the run (a snapshot at the end would miss them).
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [state, ppid, ...]; raises OSError when
    the process is gone."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()


def _children_by_parent() -> dict[int, list[int]]:
    """Every live process's children, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                parent = int(_stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    return children


def process_tree_usage(root_pid: int) -> tuple[float, float]:
    """(CPU seconds, GB of summed peak RSS) of `root_pid` and its descendants, from /proc
    (reaped children's CPU is in their parent's cutime/cstime)."""
    children = _children_by_parent()
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in tree:
                tree.add(child)
                frontier.append(child)
    cpu, peak_kb = 0.0, 0
    for pid in tree:
        try:
            cpu += sum(int(v) for v in _stat_fields(pid)[11:15]) / CLK_TCK
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb += int(line.split()[1])
        except OSError:
            continue
    return cpu, peak_kb / 1024 / 1024


def jvm_processes(root: int) -> list[int]:
    """Every JVM under `root` and the processes under those (Spark's Python workers),
    from /proc: processes `root` never reaps, so its rusage never counts them."""
    children = _children_by_parent()
    found, stack = [], [(pid, False) for pid in children.get(root, [])]
    while stack:
        pid, under_jvm = stack.pop()
        try:
            under_jvm = under_jvm or Path(f"/proc/{pid}/comm").read_text().strip() == "java"
        except OSError:
            continue
        if under_jvm:
            found.append(pid)
        stack.extend((child, under_jvm) for child in children.get(pid, []))
    return found


def own_cpu_seconds(pid: int) -> float | None:
    """utime + stime of `pid` alone (None when it is gone)."""
    try:
        values = _stat_fields(pid)
    except OSError:
        return None
    return (int(values[11]) + int(values[12])) / CLK_TCK


def own_usage() -> tuple[float, float]:
    """(CPU seconds, GB of peak RSS) of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024 / 1024
