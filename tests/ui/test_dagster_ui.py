"""The real Dagster UI: `dagster dev` on a free port, its GraphQL API, and a screenshot.

Checks that every asset, check, the schedule and the sensors are served, materializes
the whole graph for one partition through the API (the way the UI's "Materialize"
button does), sees the overview page linked from the publish step, and keeps a headless-Chromium screenshot of the
asset graph.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import CHROMIUM_ARGS, REPO_ROOT, require_chromium

pytestmark = [pytest.mark.slow, pytest.mark.ui]

LOCATION = "cdp"
REPOSITORY = "__repository__"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gql(url: str, query: str, variables: dict | None = None) -> dict:
    response = requests.post(url, json={"query": query, "variables": variables or {}}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    landing = root / "landing"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestration.cli",
            "generate",
            "--out",
            str(landing),
            "--customers",
            "150",
            "--days",
            "2",
            "--seed",
            "3",
        ],
        check=True,
        cwd=REPO_ROOT,
        capture_output=True,
    )
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {
        **os.environ,
        "CDP_LANDING_DIR": str(landing),
        "CDP_WAREHOUSE": str(root / "wh" / "warehouse.duckdb"),
        "DAGSTER_HOME": str(home),
    }
    log = open(root / "dagster_dev.log", "w")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dagster")),
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                data = _gql(
                    f"{base}/graphql",
                    "{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError { __typename ... on PythonError { message } } } } } }",
                )
                entries = data["workspaceOrError"]["locationEntries"]
                status = entries[0]["locationOrLoadError"] if entries else None
                if status and status["__typename"] == "RepositoryLocation":
                    break
                if status and status["__typename"] == "PythonError":
                    pytest.fail(f"code location failed to load: {status['message']}")
            except (requests.ConnectionError, requests.HTTPError, IndexError, KeyError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"dagster dev did not come up; log: {(root / 'dagster_dev.log').read_text()[-3000:]}"
                )
            time.sleep(2)
        yield base, landing
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_graphql_serves_every_asset_check_schedule_and_sensor(dagster_ui):
    base, _ = dagster_ui
    from orchestration.assets.dbt import RAW_SOURCE_TESTS
    from orchestration.definitions import defs

    repo = defs.get_repository_def()
    expected_assets = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    expected_checks = {
        f"{k.asset_key.to_user_string()}:{k.name}" for k in repo.asset_graph.asset_check_keys
    }

    data = _gql(
        f"{base}/graphql",
        f"""
      {{ assetNodes {{ assetKey {{ path }} assetChecksOrError {{ ... on AssetChecks {{ checks {{ name }} }} }} }}
        repositoryOrError(repositorySelector: {{repositoryLocationName: "{LOCATION}", repositoryName: "{REPOSITORY}"}}) {{
          ... on Repository {{ schedules {{ name cronSchedule }} sensors {{ name }} jobs {{ name }} }} }} }}
    """,
    )
    served_assets = {"/".join(n["assetKey"]["path"]) for n in data["assetNodes"]}
    served_checks = {
        f"{'/'.join(n['assetKey']['path'])}:{c['name']}"
        for n in data["assetNodes"]
        for c in (n["assetChecksOrError"] or {}).get("checks", [])
    }
    assert expected_assets <= served_assets
    assert expected_checks <= served_checks
    assert any(k.startswith("marts/") for k in served_assets)
    assert any(k.startswith("raw/") for k in served_assets)
    # dbt's tests on the raw sources are checks of the raw assets, not observations.
    assert "raw/email_contacts:source_not_null_email_contacts_contact_id" in served_checks
    assert {c for c in served_checks if c.startswith("raw/") and ":source_" in c} == {
        f"{t.asset_key.to_user_string()}:{t.name}" for t in RAW_SOURCE_TESTS
    }
    assert any(k.startswith("identity/") for k in served_assets)
    repo_data = data["repositoryOrError"]
    assert {s["name"] for s in repo_data["schedules"]} == {"nightly_pipeline", "weekly_training"}
    assert {"landing_zone_sensor", "run_failure_alert"} <= {s["name"] for s in repo_data["sensors"]}
    assert {"cdp_pipeline", "train_predictions"} <= {j["name"] for j in repo_data["jobs"]}


def test_materialize_one_partition_through_the_api_and_screenshot(dagster_ui, artifacts_dir):
    base, landing = dagster_ui
    day = sorted(p.name[3:] for p in (landing / "email" / "contacts").glob("dt=*"))[0]
    launched = _gql(
        f"{base}/graphql",
        """
      mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
        ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }
    """,
        {
            "params": {
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": REPOSITORY,
                    "jobName": "cdp_pipeline",
                },
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day}]},
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    deadline = time.monotonic() + 600
    status = None
    while time.monotonic() < deadline:
        status = _gql(
            f"{base}/graphql", f'{{ runOrError(runId: "{run_id}") {{ ... on Run {{ status }} }} }}'
        )["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(3)
    assert status == "SUCCESS", f"run {run_id} ended {status}"

    materialized = _gql(
        f"{base}/graphql",
        """
      { assetNodes(assetKeys: [{path: ["marts", "dim_customers"]}]) { assetMaterializations(limit: 1) { runId } } }
    """,
    )["assetNodes"][0]["assetMaterializations"]
    assert materialized and materialized[0]["runId"] == run_id

    # The publish step links the overview page it built (asset metadata, a file:// URL).
    published = _gql(
        f"{base}/graphql",
        """
      { assetNodes(assetKeys: [{path: ["published", "marts"]}]) { assetMaterializations(limit: 1) {
          metadataEntries { label ... on UrlMetadataEntry { url } } } } }
    """,
    )["assetNodes"][0]["assetMaterializations"][0]["metadataEntries"]
    overview_url = next(e["url"] for e in published if e["label"] == "overview")
    assert overview_url.startswith("file://") and overview_url.endswith("/overview/index.html")
    assert Path(overview_url.removeprefix("file://")).is_file()

    chromium = require_chromium()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        # The UI polls the server for ever, so "networkidle" never comes: wait for content.
        page.goto(f"{base}/asset-groups", wait_until="load", timeout=120_000)
        skip = page.get_by_role("button", name="Skip")
        try:
            skip.click(timeout=15_000)  # the first-visit "join the community" dialog
        except PlaywrightTimeout:
            pass
        page.get_by_text("identity", exact=True).first.wait_for(timeout=120_000)
        page.wait_for_timeout(2_000)
        overview = artifacts_dir / "dagster-lineage-groups.png"
        page.screenshot(path=str(overview))
        page.goto(
            f"{base}/locations/{LOCATION}/asset-groups/marts", wait_until="load", timeout=120_000
        )
        shot = artifacts_dir / "dagster-asset-graph-marts.png"
        try:
            # The marts group is larger than the viewport, which part of it the initial view
            # shows moves as marts are added, and long names are abbreviated on their nodes:
            # wait for any of the short core mart names, shown whole wherever they land.
            core_marts = re.compile(r"^(customer_360|dim_customers|segment_summary|marts)$")
            page.get_by_text(core_marts).filter(visible=True).first.wait_for(timeout=120_000)
            page.wait_for_timeout(2_000)
        finally:
            page.screenshot(path=str(shot))
        browser.close()
    assert overview.stat().st_size > 20_000
    assert shot.stat().st_size > 20_000
