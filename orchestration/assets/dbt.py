"""dbt models as Dagster assets, split around the identity step.

The staging models feed the Python identity engine and the marts read its output, so
they cannot be one Dagster step: `dbt_staging` builds the staging models built from raw
(the same split as `staging_from_raw` in `dbt_project/selectors.yml`), the identity
assets run, then `dbt_marts` builds everything else (`after_identity`): seeds, the views
over identity.*, intermediate models, marts, and every test that reads them.
dagster-dbt cannot evaluate those selectors itself (dbt's selector API fails on their
per-branch indirect selection), so the same split is spelled as paths here; naming the
source folders (rather than `models/staging` minus `identity`) matters, because dbt
attaches tests before it applies an exclude. Every
dbt test becomes an asset check (dagster-dbt does this from the manifest).
Asset keys follow the warehouse: `<schema>/<model>` (e.g. `marts/dim_customers`).
"""

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from orchestration.resources import WarehouseResource
from orchestration.settings import DBT_PROJECT_DIR

cdp_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

GROUP_BY_FOLDER = {"staging": "staging", "intermediate": "marts", "marts": "marts"}


def _newest_source_mtime(project_dir: Path) -> float:
    candidates = [project_dir / "dbt_project.yml"]
    for folder in ("models", "macros", "tests", "seeds", "snapshots"):
        candidates.extend(p for p in (project_dir / folder).rglob("*") if p.is_file())
    return max((p.stat().st_mtime for p in candidates if p.exists()), default=0.0)


def ensure_manifest(project: DbtProject = cdp_dbt_project) -> Path:
    """Parse the dbt project only when its manifest is missing or older than its sources.

    The @dbt_assets below need the manifest when this module is imported. A warm start
    (`cdp run`, `dagster dev`, the tests) reads the manifest on disk and starts no process;
    a fresh clone or a changed model pays one `dbt parse`. A stale manifest would silently
    run yesterday's SQL, so staleness is checked every time.
    """
    manifest = project.manifest_path
    if not manifest.exists() or manifest.stat().st_mtime < _newest_source_mtime(
        project.project_dir
    ):
        dbt = Path(sys.executable).with_name("dbt")
        proc = subprocess.run(
            [
                str(dbt),
                "parse",
                "--project-dir",
                str(project.project_dir),
                "--profiles-dir",
                str(project.profiles_dir),
                "--quiet",
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"`dbt parse` failed in {project.project_dir}:\n{proc.stdout}\n{proc.stderr}"
            )
    return manifest


class CdpDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        parts = Path(dbt_resource_props.get("original_file_path", "")).parts
        if parts[1:3] == ("staging", "identity"):
            return "identity"
        return GROUP_BY_FOLDER.get(parts[1] if len(parts) > 1 else "", "marts")

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        return ["team:analytics-engineering"]


translator = CdpDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
# dbt's tests on the raw sources stay observations, not checks of raw/*: as checks inside
# dbt_staging (enable_source_tests_as_checks) they make Dagster drop dbt_staging's wait on
# the blocking GX checks of raw/*, so a failed ERROR suite no longer stops staging
# (tests/orchestration/test_quality_gates.py caught it).
staging_translator = translator
ensure_manifest()

STAGING_FROM_RAW = (
    "path:models/staging/email path:models/staging/billing path:models/staging/web "
    "path:models/staging/support path:models/staging/surveys"
)
AFTER_IDENTITY = (
    "path:seeds path:models/staging/identity path:models/staging/predictions "
    "path:models/intermediate path:models/marts"
)

DBT_RETRY = dg.RetryPolicy(max_retries=1, delay=15, backoff=dg.Backoff.EXPONENTIAL)


def _run_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    # dbt opens the DuckDB file in its own process: hold the writer lock for it and
    # point it at the file this run writes.
    # "buildable": a test runs in the step where all its models exist, e.g. the revenue
    # reconciliation between staging and marts runs with the marts.
    # Unit tests check SQL logic, not data: they run in `make test` (tests/dbt), not nightly
    # (dbt's own advice), which saves ~10 model builds per run.
    with warehouse.dbt_environment(context.log):
        yield from dbt.cli(
            [
                "build",
                "--indirect-selection",
                "buildable",
                "--exclude-resource-type",
                "unit_test",
            ],
            context=context,
            target_path=warehouse.dbt_target_dir,
        ).stream()


@dbt_assets(
    manifest=cdp_dbt_project.manifest_path,
    project=cdp_dbt_project,
    select=STAGING_FROM_RAW,
    name="dbt_staging",
    dagster_dbt_translator=staging_translator,
    retry_policy=DBT_RETRY,
)
def dbt_staging(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """Typed, deduplicated, latest-wins views of every source table."""
    yield from _run_dbt(context, dbt, warehouse)


@dbt_assets(
    manifest=cdp_dbt_project.manifest_path,
    project=cdp_dbt_project,
    select=AFTER_IDENTITY,
    # The tests on the identity.* sources would, as checks, split this step in four (dbt
    # started four times); the identity suites (quality/suites/identity.py) check the same
    # keys before the marts are built, and `make test` runs these tests in dbt.
    exclude="source:identity",
    name="dbt_marts",
    dagster_dbt_translator=translator,
    retry_policy=DBT_RETRY,
)
def dbt_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """The BI contract: the 360 view, segments, lifetime value, engagement, sessions, cohorts."""
    yield from _run_dbt(context, dbt, warehouse)


def mart_keys() -> list[dg.AssetKey]:
    return sorted(
        (k for k in dbt_marts.keys if k.path[0] == "marts"), key=lambda k: k.to_user_string()
    )
