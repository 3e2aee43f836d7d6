"""Which pytest-xdist worker runs which tests, and in what order (`make test`: two workers).

A test that uses an expensive session fixture (the reliability reference run, the built dbt
warehouse, the loaded predictions warehouse) runs on the worker that built it, so each is
built once: every file using one of SHARED_FIXTURES is one group with the other files using
it. Any other file is a group of its own, so its module fixtures are built once too. The
groups go out longest first (LONGEST_FIRST, measured), so neither worker is left with a
long tail.

Why a scheduler of our own: xdist's `--dist loadgroup` groups by rewriting test ids, which
pytest 9.2's structured ids ignore (pytest-dev/pytest-xdist#1386), so every test became a
group of its own and the shared fixtures were built on both workers.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# fixture name -> the group of every test file that asks for it
SHARED_FIXTURES = {
    "reference": "reliability reference run",
    "built_warehouse": "built dbt warehouse",
    "copy_of_built_warehouse": "built dbt warehouse",
    "full_rebuild_after": "built dbt warehouse",
    "signal_zone": "predictions warehouse",
    "full_warehouse": "predictions warehouse",
    "scored": "predictions warehouse",
}

# Files that join a group although they ask for none of its fixtures, or that leave the
# group of their fixture. Spark: pyspark keeps its JVM between sessions, so the Spark tests
# share one JVM (its start and warm-up paid once) when they run in one worker process
# (together the reading test and the equivalence test took 388.7 CPU s, apart 493.7:
# bench/results/spark_tests-after.json). The Spark tests of the reliability reference run
# leave its group for this one: in one group the reference run's tests were most of the
# suite's wall time on one worker while the other ran out of work (README, "Tests"); apart,
# each worker that runs either group builds the reference run once (~20 s).
SPARK = "Spark (with its own reference run)"
JOINED_FILES = {
    "ingestion/test_spark_reading.py": SPARK,
    "reliability/test_spark_equivalence.py": SPARK,
    "reliability/test_identity_on_engines.py": SPARK,
}

# Groups by measured wall time, longest first (the rest follow in file order). Seconds of
# tests per group in `make test` on a fresh clone at stop 32 (fe231c1, nearly idle
# machine): Spark 369, reliability reference run 337, test_pipeline 95, the UI 58,
# predictions warehouse 70, identity accuracy 40, built dbt warehouse 135, quality gates
# 71 (customer experience: 18 in an earlier run). The order is older than these figures;
# the two workers ended within a second of each other with it.
LONGEST_FIRST = [
    SPARK,
    "reliability reference run",
    "orchestration/test_pipeline.py",
    "ui/test_dagster_ui.py",
    "predictions warehouse",
    "identity/test_identity_accuracy.py",
    "built dbt warehouse",
    "orchestration/test_customer_experience.py",
    "orchestration/test_quality_gates.py",
]


@functools.cache
def _requested_fixtures(test_file: Path) -> frozenset[str]:
    """Every parameter name of every function in `test_file`: the fixtures its tests and
    its own fixtures ask for (read from the source, so the controller needs no collection)."""
    try:
        tree = ast.parse(test_file.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return frozenset()
    return frozenset(
        arg.arg
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for arg in node.args.args + node.args.kwonlyargs
    )


def worker_group(test_path: str | Path) -> str:
    """The group of a test file (a path relative to the repository, or absolute)."""
    path = Path(test_path)
    path = path if path.is_absolute() else TESTS.parent / path
    try:
        joined = JOINED_FILES.get(path.resolve().relative_to(TESTS).as_posix())
    except ValueError:
        joined = None
    if joined is not None:
        return joined
    for fixture in sorted(_requested_fixtures(path) & SHARED_FIXTURES.keys()):
        return SHARED_FIXTURES[fixture]
    try:
        return path.resolve().relative_to(TESTS).as_posix()
    except ValueError:
        return path.as_posix()


def group_rank(group: str) -> int:
    return LONGEST_FIRST.index(group) if group in LONGEST_FIRST else len(LONGEST_FIRST)


def make_scheduler(config, log):
    """A LoadScopeScheduling whose scopes are the groups above, handed out in collection
    order (tests/conftest.py sorts the collection longest group first)."""
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def __init__(self, config, log=None):
            super().__init__(config, log)
            # xdist would otherwise reorder the groups by their number of tests, which says
            # nothing about their time (the two UI tests would go out nearly last).
            config.option.loadscopereorder = False

        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid.split("::", 1)[0])

        def _reschedule(self, node) -> None:
            # Hand a worker its next group only when it is down to its last test (xdist's
            # own rule queues a group behind the last two, which can strand a long group
            # behind a long test while the other worker goes idle).
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            if self._pending_of(self.assigned_work[node]) > 1:
                return
            self._assign_work_unit(node)

    return SharedFixtureScheduling(config, log)
