"""What `cdp run` shows while it works: one line per stage, the rest in a log file.

A pipeline run is ~50 Dagster steps and ~200 dbt lines. A person at a terminal needs to
know which stage it is in, whether it is moving, and what went wrong; everything else
belongs in the full log (a private file next to the warehouse, and the Dagster event log
in the UI). `RunConsole` listens to the run's Dagster events, groups steps into stages,
draws a live progress line when stdout is a terminal (plain lines otherwise), and sends
every other byte the run prints (Dagster's console log, dbt's output, library warnings)
to the log file, or to the terminal as well with `-v`.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.file_modes import make_private_dir

# Stages in the order a run meets them; a step belongs to the first stage whose rule
# matches (see `stage_of_step`).
STAGES = (
    "load raw tables",
    "check raw tables",
    "dbt staging",
    "resolve identities",
    "score customers",
    "dbt marts",
    "check marts",
    "publish",
)

# ingestion/load.py's note for a column the contract does not know (it is ignored).
EXTRA_COLUMN = re.compile(r"^(?P<file>\S+): extra column '(?P<column>[^']+)' is not in the")

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def stage_of_step(op_name: str, asset_roots: set[str], check_roots: set[str]) -> str:
    """The stage a step belongs to, from its op name and the schemas of what it writes or checks."""
    if op_name == "dbt_staging":
        return "dbt staging"
    if op_name == "dbt_marts":
        return "dbt marts"
    if asset_roots:
        root = sorted(asset_roots)[0]
        return {
            "raw": "load raw tables",
            "identity": "resolve identities",
            "predictions": "score customers",
            "published": "publish",
        }.get(root, "dbt marts")
    if check_roots == {"raw"}:
        return "check raw tables"
    if check_roots == {"identity"}:
        return "resolve identities"
    return "check marts"


def step_plan(defs) -> dict[str, tuple[str, int]]:
    """op name (= step key) -> (stage, number of assets and checks it reports)."""
    plan = {}
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if not assets_def.is_executable:
            continue
        keys = list(assets_def.keys)
        checks = list(assets_def.check_keys)
        stage = stage_of_step(
            assets_def.node_def.name,
            {k.path[0] for k in keys},
            {c.asset_key.path[0] for c in checks},
        )
        plan[assets_def.node_def.name] = (stage, len(keys) + len(checks))
    return plan


@dataclass
class StageProgress:
    name: str
    started: float | None = None
    finished: float | None = None
    steps: int = 0
    steps_done: int = 0
    planned_events: int = 0
    asset_keys: set = field(default_factory=set)
    row_counts: dict = field(default_factory=dict)
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)
    failed: bool = False
    skipped: int = 0
    busy_s: float = 0.0
    step_started: dict = field(default_factory=dict)
    # Check counts when each step's current attempt began: a retried attempt's are dropped.
    attempt_marks: dict = field(default_factory=dict)
    printed: bool = False
    current: str = ""

    @property
    def assets(self) -> int:
        return len(self.asset_keys)

    @property
    def rows(self) -> int:
        """Rows in the tables this stage wrote (a backfill materializes each one per day)."""
        return sum(self.row_counts.values())

    @property
    def events(self) -> int:
        return self.assets + self.checks_passed + len(self.checks_failed) + len(self.checks_warned)

    def begin_attempt(self, step_key: str, now: float) -> None:
        """A step of this stage starts (or starts again after a failed attempt)."""
        if self.started is None:
            self.started = now
        self.step_started[step_key] = now
        self.current = step_key
        self.attempt_marks[step_key] = (
            self.checks_passed,
            len(self.checks_warned),
            len(self.checks_failed),
        )

    def end_attempt(self, step_key: str, now: float, checks_kept: bool = True) -> None:
        """A step's attempt ended; without `checks_kept` (it is retried) its checks are
        dropped, as the next attempt evaluates them again."""
        began = self.step_started.pop(step_key, None)
        if began is not None:
            self.busy_s += now - began
        mark = self.attempt_marks.pop(step_key, None)
        if not checks_kept and mark is not None:
            passed, warned, failed = mark
            self.checks_passed = passed
            del self.checks_warned[warned:]
            del self.checks_failed[failed:]

    def seconds(self, now: float) -> float:
        """Time spent in this stage's steps (other stages' steps may run in between)."""
        return self.busy_s + sum(now - t for t in self.step_started.values())

    def line(self, now: float, ok_mark: str, fail_mark: str) -> str:
        mark = fail_mark if self.failed or self.checks_failed else ok_mark
        parts = []
        if self.name in ("dbt staging", "dbt marts"):
            parts.append(f"{self.assets} models")
        elif self.assets and self.name != "publish":
            parts.append(f"{self.assets} tables")
        if self.rows:
            parts.append(f"{self.rows:,} rows")
        checks = self.checks_passed + len(self.checks_failed) + len(self.checks_warned)
        if checks and self.name == "load raw tables":
            checks = 0  # per-day delivery checks; a missing day is reported below the stages
        if checks:
            text = f"{checks} checks"
            if self.checks_failed or self.checks_warned:
                text += f" ({len(self.checks_failed)} failed, {len(self.checks_warned)} warned)"
            parts.append(text)
        if self.skipped:
            parts.append(f"{self.skipped} steps skipped")
        if self.failed:
            parts.append("FAILED")
        detail = ", ".join(parts)
        return f"  {mark} {self.name:<20}{detail:<44}{self.seconds(now):>6.1f}s"


class _LogStream(io.TextIOBase):
    """A text stream that writes to the log file and, with -v, to the terminal too."""

    def __init__(self, log_file, terminal=None):
        self._log_file = log_file
        self._terminal = terminal
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        with self._lock:
            self._log_file.write(text)
            if self._terminal is not None:
                self._terminal.write(text)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._log_file.flush()
            if self._terminal is not None:
                self._terminal.flush()


class RunConsole:
    """Listens to one run's events; prints stage lines; keeps the full log in `log_path`."""

    def __init__(self, log_path: Path, verbose: bool = False):
        self.plan: dict[str, tuple[str, int]] = {}
        self.log_path = log_path
        self.verbose = verbose
        self.terminal = sys.stdout
        self.live = bool(getattr(self.terminal, "isatty", lambda: False)()) and not verbose
        encoding = (getattr(self.terminal, "encoding", "") or "").lower()
        unicode_ok = encoding.startswith("utf")
        self.ok_mark, self.fail_mark = ("✓", "✗") if unicode_ok else ("ok", "!!")
        self.spinner = SPINNER if unicode_ok else "|/-\\"
        self.stages = {name: StageProgress(name) for name in STAGES}
        self.extra_columns: dict[str, set[str]] = defaultdict(set)
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._spinner_thread: threading.Thread | None = None
        self._saved_streams = None
        self._log_file = None

    def set_plan(self, plan: dict[str, tuple[str, int]]) -> None:
        """The job's steps (from `step_plan`), known once the definitions are loaded."""
        self.plan = plan
        for stage, planned in plan.values():
            self.stages[stage].steps += 1
            self.stages[stage].planned_events += planned

    # -- the streams -------------------------------------------------------------------

    def __enter__(self) -> RunConsole:
        make_private_dir(self.log_path.parent)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._log_file = os.fdopen(fd, "w", encoding="utf-8", buffering=1)
        stream = _LogStream(self._log_file, self.terminal if self.verbose else None)
        self._saved_streams = (sys.stdout, sys.stderr)
        sys.stdout = sys.stderr = stream
        # Library warnings (warnings.warn) go to the log, not the terminal.
        logging.captureWarnings(True)
        if self.live:
            self._spinner_thread = threading.Thread(target=self._spin, daemon=True)
            self._spinner_thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._spinner_thread is not None:
            self._spinner_thread.join(timeout=1)
        with self._lock:
            self._flush_stages(until=len(STAGES))
        sys.stdout, sys.stderr = self._saved_streams
        logging.captureWarnings(False)
        if self._log_file is not None:
            self._log_file.close()

    def log(self, text: str) -> None:
        """A line for the log file only."""
        if self._log_file is not None:
            self._log_file.write(text + "\n")

    def _print(self, text: str) -> None:
        if self.live:
            self.terminal.write("\r\033[K")
        self.terminal.write(text + "\n")
        self.terminal.flush()

    # -- events ------------------------------------------------------------------------

    def on_event(self, entry) -> None:
        """Dagster calls this for every event of the run (`instance.add_event_listener`)."""
        try:
            with self._lock:
                self._handle(entry)
        except Exception as exc:  # the display must never break a run
            self.log(f"(run console could not show an event: {exc!r})")

    def _stage_for(self, step_key: str | None) -> StageProgress | None:
        if not step_key:
            return None
        op_name = step_key.split("[")[0]
        # Dagster names the parts of a multi-asset it had to split `<op>_2`, `<op>_3`...
        entry = self.plan.get(op_name) or self.plan.get(re.sub(r"_\d+$", "", op_name))
        return self.stages[entry[0]] if entry else None

    def _handle(self, entry) -> None:
        event = entry.dagster_event
        now = time.monotonic()
        stage = self._stage_for(entry.step_key)
        if event is None:
            self._handle_message(entry)
            return
        kind = event.event_type_value
        if stage is None:
            return
        if kind in ("STEP_START", "STEP_RESTARTED"):
            self._flush_stages(until=STAGES.index(stage.name))
            stage.begin_attempt(entry.step_key, now)
        elif kind == "STEP_UP_FOR_RETRY":
            # The step runs again (its retry policy): what this attempt checked is evaluated
            # again by the next, and the retry is news, not something to pass over.
            stage.end_attempt(entry.step_key, now, checks_kept=False)
            self.warnings.append(
                f"{stage.name}: step {entry.step_key} failed and ran again (its error is in the full log)"
            )
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            stage.steps_done += 1
            stage.finished = now
            stage.end_attempt(entry.step_key, now)
            if kind == "STEP_FAILURE":
                stage.failed = True
            if kind == "STEP_SKIPPED":
                stage.skipped += 1
        elif kind == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            stage.asset_keys.add(materialization.asset_key)
            row_count = materialization.metadata.get("dagster/row_count")
            if row_count is not None and stage.name == "load raw tables":
                stage.row_counts[materialization.asset_key] = int(row_count.value)
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            name = evaluation.asset_check_key.to_user_string()
            if evaluation.passed:
                stage.checks_passed += 1
            elif str(getattr(evaluation.severity, "value", evaluation.severity)) == "WARN":
                stage.checks_warned.append(name)
            else:
                stage.checks_failed.append(name)

    def _handle_message(self, entry) -> None:
        if entry.level < logging.WARNING:
            return
        message = (entry.user_message or "").strip()
        match = EXTRA_COLUMN.match(message)
        if match:
            self.extra_columns[match["column"]].add(match["file"])
            return
        first_line = message.splitlines()[0] if message else ""
        if first_line.startswith("Dependencies for step"):
            return  # the failed step upstream is the news, reported once
        if entry.level >= logging.ERROR:
            self.errors.append(first_line)
        else:
            self.warnings.append(first_line)

    def _flush_stages(self, until: int) -> None:
        """Print the line of every started stage before index `until` not printed yet."""
        now = time.monotonic()
        for name in STAGES[:until]:
            stage = self.stages[name]
            if stage.started is not None and not stage.printed:
                stage.printed = True
                self._print(stage.line(now, self.ok_mark, self.fail_mark))

    def _spin(self) -> None:
        tick = 0
        while not self._stop.wait(0.1):
            with self._lock:
                current = next(
                    (
                        s
                        for s in reversed(self.stages.values())
                        if s.started is not None and not s.printed
                    ),
                    None,
                )
                if current is None:
                    continue
                tick += 1
                progress = f"{current.events}/{current.planned_events}"
                text = (
                    f"  {self.spinner[tick % len(self.spinner)]} {current.name:<20}"
                    f"{progress:<12}{current.current[:30]:<32}"
                    f"{current.seconds(time.monotonic()):>6.1f}s"
                )
                self.terminal.write("\r\033[K" + text)
                self.terminal.flush()

    # -- the end -----------------------------------------------------------------------

    def notes(self) -> list[str]:
        """One line per kind of thing worth knowing: extra columns, warnings, errors."""
        lines = []
        if self.extra_columns:
            files = set().union(*self.extra_columns.values())
            columns = ", ".join(sorted(self.extra_columns))
            lines.append(f"note: {len(files)} files carried extra columns, ignored: {columns}")
        for label, items in (("warning", self.warnings), ("error", self.errors)):
            counts = Counter(items)
            shown = list(counts.items())[:3]
            for text, n in shown:
                suffix = f" (x{n})" if n > 1 else ""
                lines.append(f"{label}: {text[:160]}{suffix}")
            hidden = len(counts) - len(shown)
            if hidden > 0:
                lines.append(f"{label}: {hidden} more in the log")
        failed = [c for s in self.stages.values() for c in s.checks_failed]
        warned = [c for s in self.stages.values() for c in s.checks_warned]
        for label, checks in (("failed checks", failed), ("checks warned", warned)):
            if checks:
                more = f" and {len(checks) - 4} more" if len(checks) > 4 else ""
                lines.append(f"{label}: {', '.join(checks[:4])}{more}")
        return lines


def run_log_path(warehouse: Path, run_id: str) -> Path:
    """`<warehouse folder>/logs/run-<UTC time>-<run id>.log`: private, next to the data it describes."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return warehouse.parent / "logs" / f"run-{stamp}-{run_id[:8]}.log"
