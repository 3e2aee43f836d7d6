"""Chaos: SIGKILL real `cdp run`s at random moments while another run and a BI reader work.

    .venv/bin/python bench/chaos.py                       # 20 seeded rounds (make chaos)
    .venv/bin/python bench/chaos.py --rounds 3 --seed 2   # a quick look

1. Generates a tiny landing zone (default 200 customers, 3 days) and loads it once, cleanly,
   into a reference warehouse: the raw row counts per table and day every later state is
   compared with.
2. Each round starts two `cdp run --date D` processes for different days (the second a
   moment after the first, so it usually waits for the run lock), and a BI reader that
   opens `bi.duckdb` read-only in a loop and counts every mart. One of the two runs,
   picked at random, is SIGKILLed (its whole process group, dbt included) at a random
   moment: while it waits for the lock, while it writes its copy, while it publishes, or
   never, if it finished first.
3. After each round: the warehouse opens; `raw` equals the reference load restricted to
   the days whose runs committed; the published marts equal a state seen after a
   successful run (a complete earlier or later state, never a mix); the BI reader never
   failed; and nothing leaked (a copy or temp file may remain only from this round's
   victim when it was the last to hold the lock; the next run removes it).
4. After the last round one clean run must leave no leftovers at all.

Prints a table per round and a summary; writes bench/results/chaos.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# The zone is generated a moment before it is loaded: no settling wait for fresh uploads
# (docs/landing-contract.md); what is measured here is kills, not deliveries.
os.environ.setdefault("CDP_SETTLE_SECONDS", "0")

import duckdb  # noqa: E402

from orchestration.cli import main as cdp  # noqa: E402
from tests.reliability.warehouse_state import (  # noqa: E402
    CdpRun,
    leftovers,
    mart_counts,
    raw_counts,
)

RESULTS = REPO / "bench" / "results" / "chaos.json"


@dataclass
class Round:
    number: int
    victim_day: str
    other_day: str
    victim_started_first: bool
    kill_after_s: float
    victim_state: str = ""  # killed / finished before the kill
    other_exit: int | None = None
    victim_committed: bool = False
    raw_ok: bool = False
    marts_ok: bool = False
    leftovers_ok: bool = False
    reader_reads: int = 0
    reader_errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


class BiReader:
    """Opens bi.duckdb read-only in a loop, as a BI tool would, and counts every mart."""

    def __init__(self, bi: Path):
        self.bi = bi
        self.reads = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.bi.exists():
                try:
                    counts = mart_counts(self.bi)
                    if not counts:
                        self.errors.append("bi.duckdb has no marts")
                    self.reads += 1
                except (duckdb.Error, OSError) as exc:
                    self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            self._stop.wait(0.3)


def _run_id(run: CdpRun) -> str | None:
    for line in run.lines[:5]:
        if "(run " in line:
            return line.rsplit("(run ", 1)[1].rstrip(")\n ")
    return None


def run_chaos(
    *,
    rounds: int,
    seed: int,
    zone: Path,
    reference_raw: dict[str, int],
    workdir: Path,
    max_kill_after_s: float = 90.0,
    log=print,
) -> dict:
    """The rounds described in the module docstring; returns the results as a dict."""
    rng = random.Random(seed)
    days = sorted({p.name[3:] for p in zone.glob("*/*/dt=*")})
    warehouse = workdir / "wh" / "warehouse.duckdb"
    bi = warehouse.parent / "bi.duckdb"
    committed_days: set[str] = set()
    published_states: list[dict[str, int]] = []
    results: list[Round] = []

    def expected_raw(with_days: set[str]) -> dict[str, int]:
        return {k: v for k, v in reference_raw.items() if k.split("/")[1] in with_days}

    for number in range(1, rounds + 1):
        victim_day, other_day = rng.sample(days, 2) if len(days) > 1 else (days[0], days[0])
        rnd = Round(
            number=number,
            victim_day=victim_day,
            other_day=other_day,
            victim_started_first=rng.random() < 0.5,
            kill_after_s=round(rng.uniform(0.5, max_kill_after_s), 1),
        )
        started = time.monotonic()
        with BiReader(bi) as reader:
            first_day, second_day = (
                (victim_day, other_day) if rnd.victim_started_first else (other_day, victim_day)
            )
            first = CdpRun(zone, warehouse, "--date", first_day)
            time.sleep(rng.uniform(0.5, 3.0))
            second = CdpRun(zone, warehouse, "--date", second_day)
            victim, other = (first, second) if rnd.victim_started_first else (second, first)
            deadline = started + rnd.kill_after_s
            while time.monotonic() < deadline and victim.running():
                time.sleep(0.1)
            rnd.victim_state = (
                "killed" if victim.kill() else f"finished (exit {victim.proc.returncode})"
            )
            rnd.other_exit = other.finish()
        rnd.reader_reads, rnd.reader_errors = reader.reads, reader.errors[:5]
        if rnd.other_exit != 0:
            rnd.problems.append(f"the surviving run exited {rnd.other_exit}: {other.output[-500:]}")
        else:
            committed_days.add(other_day)
        if rnd.victim_state.startswith("finished (exit 0)"):
            committed_days.add(victim_day)
        if reader.errors:
            rnd.problems.append(f"BI reader failed: {reader.errors[0]}")

        try:
            raw = raw_counts(warehouse)
        except duckdb.Error as exc:
            rnd.problems.append(f"the warehouse does not open: {exc}")
            raw = None
        if raw is not None:
            if raw == expected_raw(committed_days):
                rnd.raw_ok = True
            elif rnd.victim_state == "killed" and raw == expected_raw(
                committed_days | {victim_day}
            ):
                # Killed in publish after the commit (the rename) and before the BI swap.
                rnd.raw_ok = rnd.victim_committed = True
                committed_days.add(victim_day)
            else:
                rnd.problems.append(
                    f"raw differs from the reference load of {sorted(committed_days)}"
                )

        if rnd.other_exit == 0 or rnd.victim_state.startswith("finished (exit 0)"):
            state = mart_counts(bi)
            if state not in published_states:
                published_states.append(state)
        if bi.exists():
            rnd.marts_ok = mart_counts(bi) in published_states
            if not rnd.marts_ok:
                rnd.problems.append(
                    "the published marts match no state seen after a successful run"
                )
        else:
            rnd.marts_ok = not published_states

        victim_id = _run_id(victim)
        left = leftovers(warehouse)
        stray = [p for p in left if p.startswith(".runs/") and victim_id and victim_id not in p]
        rnd.leftovers_ok = not stray and (not left or rnd.victim_state == "killed")
        if not rnd.leftovers_ok:
            rnd.problems.append(f"leftovers not from this round's victim: {left}")
        rnd.seconds = round(time.monotonic() - started, 1)
        results.append(rnd)
        log(
            f"round {number:>2}: victim {victim_day} ({'1st' if rnd.victim_started_first else '2nd'}) "
            f"kill@{rnd.kill_after_s:>5.1f}s {rnd.victim_state:<20} other exit {rnd.other_exit}  "
            f"raw {'ok' if rnd.raw_ok else 'BAD'}  marts {'ok' if rnd.marts_ok else 'BAD'}  "
            f"leftovers {'ok' if rnd.leftovers_ok else 'BAD'}  reads {rnd.reader_reads:>3}  "
            f"{rnd.seconds:>5.1f}s {'OK' if rnd.ok else 'FAILED: ' + '; '.join(rnd.problems)}"
        )

    final = CdpRun(zone, warehouse, "--date", days[0])
    final_exit = final.finish()
    if final_exit == 0:
        committed_days.add(days[0])
    final_leftovers = leftovers(warehouse)
    final_raw_ok = raw_counts(warehouse) == expected_raw(committed_days)
    summary = {
        "rounds": rounds,
        "seed": seed,
        "rounds_ok": sum(r.ok for r in results),
        "victims_killed": sum(r.victim_state == "killed" for r in results),
        "killed_after_commit": sum(r.victim_committed for r in results),
        "bi_reads": sum(r.reader_reads for r in results),
        "bi_read_errors": sum(len(r.reader_errors) for r in results),
        "final_run_exit": final_exit,
        "final_raw_ok": final_raw_ok,
        "final_leftovers": final_leftovers,
        "published_states_seen": len(published_states),
    }
    summary["ok"] = (
        summary["rounds_ok"] == rounds and final_exit == 0 and final_raw_ok and not final_leftovers
    )
    return {"summary": summary, "rounds": [asdict(r) | {"ok": r.ok} for r in results]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--max-kill-after", type=float, default=90.0, help="seconds (default 90)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="cdp-chaos-"))
    started = time.monotonic()
    try:
        zone = workdir / "landing"
        generate = ["generate", "--out", str(zone), "--customers", str(args.customers)]
        assert cdp([*generate, "--days", str(args.days), "--seed", str(args.seed)]) == 0
        reference = workdir / "reference" / "warehouse.duckdb"
        print("reference: loading the whole zone once, cleanly ...", flush=True)
        run = CdpRun(zone, reference)
        if run.finish() != 0:
            print(run.output[-3000:], file=sys.stderr)
            return 1
        result = run_chaos(
            rounds=args.rounds,
            seed=args.seed,
            zone=zone,
            reference_raw=raw_counts(reference),
            workdir=workdir,
            max_kill_after_s=args.max_kill_after,
        )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    result["summary"] |= {
        "customers": args.customers,
        "days": args.days,
        "seconds": round(time.monotonic() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    s = result["summary"]
    print(
        f"\nchaos: {s['rounds_ok']}/{s['rounds']} rounds ok (seed {s['seed']}), "
        f"{s['victims_killed']} runs SIGKILLed ({s['killed_after_commit']} after their commit), "
        f"{s['bi_reads']} BI reads with {s['bi_read_errors']} errors, final run exit "
        f"{s['final_run_exit']}, leftovers {s['final_leftovers'] or 'none'}; {s['seconds']}s "
        f"-> {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}"
    )
    return 0 if s["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
