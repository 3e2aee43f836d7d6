"""The short variant of `make chaos` (bench/chaos.py): one round of a SIGKILLed run next
to another run and a BI reader, on the reliability tests' tiny zone (the 20-round run is
`make chaos`; `tests/reliability/test_killed_runs.py` kills a run in each kind of step)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _chaos_module():
    spec = importlib.util.spec_from_file_location("bench_chaos", REPO_ROOT / "bench" / "chaos.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_chaos_round_keeps_raw_marts_and_files_consistent(reference, tmp_path):
    chaos = _chaos_module()
    result = chaos.run_chaos(
        rounds=1,
        seed=4,
        zone=reference.zone,
        reference_raw=reference.raw,
        workdir=tmp_path,
        max_kill_after_s=40.0,
    )
    problems = [p for r in result["rounds"] for p in r["problems"]]
    assert problems == []
    summary = result["summary"]
    assert summary["final_run_exit"] == 0 and summary["final_raw_ok"]
    assert summary["final_leftovers"] == []
    assert summary["bi_read_errors"] == 0
