"""Shared fixtures: a generated landing zone and isolated warehouse paths per test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.worker_groups import group_rank, make_scheduler, worker_group

# Test landing zones are written a moment before they are loaded; the loader's settling
# wait (docs/landing-contract.md) is for real uploads. Tests of the wait set their own.
os.environ.setdefault("CDP_SETTLE_SECONDS", "0")

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> str:
    """The headless Chromium every browser test uses.

    Missing on a developer machine: the test is skipped with the install command. Missing
    under CI (`CI` set, as `.ci/run` runs): the test fails, so a broken browser install can
    never turn the UI and Data Docs coverage silently green.
    """
    if CHROMIUM:
        return CHROMIUM
    message = "headless Chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must run the browser tests", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def cdp_env(tmp_path, monkeypatch):
    """Point CDP_* at a fresh warehouse under tmp_path (the landing dir is set by the test)."""
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    monkeypatch.setenv("CDP_WAREHOUSE", str(warehouse))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("CDP_ALERT_WEBHOOK", raising=False)
    return warehouse


@pytest.fixture(scope="session", autouse=True)
def _isolated_dagster_home(tmp_path_factory):
    """Tests must never write runs into a developer's .dagster_home."""
    if "DAGSTER_HOME" in os.environ and not os.environ["DAGSTER_HOME"].startswith(
        str(tmp_path_factory.getbasetemp())
    ):
        del os.environ["DAGSTER_HOME"]
    yield


def edit_delivered_csv(path: Path, edit) -> None:
    """Rewrite a delivered CSV (plain or gzipped) through `edit(fields, rows) -> (fields, rows)`,
    rows being dicts: how tests break a landing file the way a bad export would."""
    import csv
    import gzip

    def _open(mode: str):
        opener = gzip.open if path.suffix == ".gz" else open
        return opener(path, mode + "t", newline="", encoding="utf-8")

    with _open("r") as f:
        reader = csv.DictReader(f)
        fields, rows = list(reader.fieldnames or []), list(reader)
    fields, rows = edit(fields, rows)
    with _open("w") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


# `make test` runs two workers (`-n 2 --dist loadgroup`): tests sharing an expensive
# fixture go to one worker, longest groups first (tests/worker_groups.py says how and why).
def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: group_rank(worker_group(Path(str(item.fspath)))))


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") == "loadgroup":
        return make_scheduler(config, log)
    return None
