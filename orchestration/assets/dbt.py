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

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
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
from packaging import version

from orchestration.dbt_in_process import InProcessDbtCliResource, parse_profile_warehouse
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
        # Parsed with the profile the run's dbt steps parse with (dbt re-parses in full when
        # the profile differs), so the partial_parse.msgpack written here serves every
        # warehouse of the default name, the first run's included.
        link = WarehouseResource().dbt_link
        # Always the duckdb output: the assets only need names and lineage, which are the
        # same on both engines, and a Spark run's dbt parses with its own profile anyway.
        env = {
            **os.environ,
            "CDP_ENGINE": "duckdb",
            "CDP_WAREHOUSE": str(parse_profile_warehouse(project.project_dir, link.name)),
        }
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
            env=env,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"`dbt parse` failed in {project.project_dir}:\n{proc.stdout}\n{proc.stderr}"
            )
    return manifest


class CdpDbtCliResource(InProcessDbtCliResource):
    """dagster-dbt's dbt CLI resource, running dbt in this process (orchestration/
    dbt_in_process.py), without two things it does before dbt commands that this pipeline
    never uses.

    DbtCliResource (dagster-dbt 0.29, pinned) runs `dbt --version` in a subprocess once per
    run (2.5 CPU seconds here) and, before every command, builds a dbt adapter in this
    process, which imports dbt and parses every macro (2.0 s for the first, 0.45 s each
    after), while the run waits. The adapter serves only
    `fetch_row_counts()` / `fetch_column_metadata()`, which no asset here calls; the version
    is the dbt-core package's own, since `dbt_executable` is this virtualenv's dbt.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 - signature of the base
        return None


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

# What a second attempt can fix: another process holding the DuckDB file, a disk or
# mount hiccup, memory taken by something else at the time, a Spark session or Spark
# Connect server that went away. Any other dbt error (a failing test, a SQL, compilation
# or contract error, an incremental model refusing a schema change) fails the same way
# again, so the step fails at once instead of waiting out the retry and rebuilding.
TRANSIENT_DBT_ERRORS = (
    "could not set lock",
    "conflicting lock",
    "io error",
    "out of memory",
    "database is locked",
    "resource temporarily unavailable",
    "connection refused",
    "connection reset",
    "py4jnetworkerror",
    "status = statuscode.unavailable",
)
# dbt statuses of a node that failed (a skipped node only follows an upstream failure).
_FAILED_STATUSES = {"error", "fail", "runtime error"}


@dataclass(frozen=True)
class DbtStepFailure:
    """Why a `dbt build` step failed, from its run_results.json: what a person reads in
    the UI, and whether a retry could help."""

    description: str
    retriable: bool


def _error_kind(message: str) -> str:
    """The error's class without its text ("Catalog Error", "Compilation Error"): dbt and
    DuckDB messages can quote a row's values, which are personal data."""
    for line in (message or "").splitlines():
        head = line.strip().split(":", 1)[0].strip()
        if head and len(head) <= 40 and head.replace(" ", "").isalpha():
            return head
    return "error"


def dbt_step_failure(run_results: Mapping[str, Any] | None, command: str) -> DbtStepFailure:
    """Explain a failed `dbt build` (`command` names it for the person re-running it).

    Retriable only when every failed node failed in a way a retry can fix
    (`TRANSIENT_DBT_ERRORS`), or when dbt wrote no results at all (it stopped before
    running a node: nothing says the cause is in the data or the project)."""
    failed = [
        r
        for r in (run_results or {}).get("results", [])
        if str(r.get("status", "")).lower() in _FAILED_STATUSES
    ]
    if not failed:
        return DbtStepFailure(
            f"`{command}` failed before it ran a model or test; its output is in the run log.",
            retriable=True,
        )
    transient = all(
        any(marker in str(r.get("message") or "").lower() for marker in TRANSIENT_DBT_ERRORS)
        for r in failed
    )
    # models first: a failed model explains the tests and models it skipped
    failed.sort(key=lambda r: r["unique_id"].startswith(("test.", "unit_test.")))
    lines = []
    for r in failed[:12]:
        kind, _, rest = r["unique_id"].partition(".")
        name = rest.split(".")[1] if rest.count(".") else rest
        detail = (
            f"{r.get('failures')} failing row(s)"
            if str(r.get("status")).lower() == "fail"
            else _error_kind(str(r.get("message") or ""))
        )
        lines.append(f"  {kind} {name}: {r.get('status')} ({detail})")
    if len(failed) > 12:
        lines.append(f"  ... and {len(failed) - 12} more")
    advice = (
        "it may pass when retried (another process held the file, or memory or a connection "
        "was short)"
        if transient
        else "a retry would fail the same way, so there is none: dbt's full messages are in "
        "the run's log (`cdp run` prints its path); fix the data or the model, then run the "
        "day again"
    )
    return DbtStepFailure(
        f"`{command}` failed on {len(failed)} node(s):\n" + "\n".join(lines) + f"\n{advice}.",
        retriable=transient,
    )


@dataclass(frozen=True)
class SourceTest:
    """A dbt test on one raw.* source table, run as an asset check of that raw asset."""

    unique_id: str
    name: str
    asset_key: dg.AssetKey
    severity: str  # dbt's: "error" or "warn"
    column: str | None


def raw_source_tests(manifest: Mapping[str, Any]) -> list[SourceTest]:
    """The dbt tests that read one raw.* source and nothing else, from the manifest."""
    tests = []
    for unique_id, node in manifest["nodes"].items():
        parents = node.get("depends_on", {}).get("nodes", [])
        if node["resource_type"] != "test" or len(parents) != 1:
            continue
        source = manifest["sources"].get(parents[0])
        if source is None or source["schema"] != "raw":
            continue
        tests.append(
            SourceTest(
                unique_id=unique_id,
                name=node["name"],
                asset_key=translator.get_asset_key(source),
                severity=str(node["config"].get("severity", "error")).lower(),
                column=node.get("column_name"),
            )
        )
    return sorted(tests, key=lambda t: t.name)


MANIFEST = json.loads(cdp_dbt_project.manifest_path.read_text())
RAW_SOURCE_TESTS = raw_source_tests(MANIFEST)


def _source_test_spec(test: SourceTest) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name=test.name,
        asset=test.asset_key,
        description=(
            f"[dbt {test.severity.upper()}] dbt source test `{test.name}`"
            + (f" on column `{test.column}`" if test.column else "")
            + ": run on raw before staging is built, as `dbt build` would"
        ),
        # dbt build skips a source's models when an error-severity test on it fails; a
        # blocking check keeps that: staging waits for it, as it waits for the GX suites.
        blocking=test.severity == "error",
    )


@dg.multi_asset_check(
    specs=[_source_test_spec(t) for t in RAW_SOURCE_TESTS],
    name="dbt_raw_source_tests",
    can_subset=True,
    retry_policy=DBT_RETRY,
)
def dbt_raw_source_tests(
    context: dg.AssetCheckExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[dg.AssetCheckResult]:
    """dbt's tests on the raw sources, in one small `dbt test` of their own.

    They are not run inside `dbt_staging`: a dbt step that reports checks of raw/* would
    no longer wait for the blocking GX checks of raw/* (tests/orchestration/
    test_quality_gates.py), so they run here, beside the GX suites, before staging.
    """
    selected = {key.name for key in context.selected_asset_check_keys}
    tests = [t for t in RAW_SOURCE_TESTS if t.name in selected]
    with warehouse.dbt_environment(context.log):
        invocation = dbt.cli(
            ["test", "--select", " ".join(t.name for t in tests)],
            manifest=cdp_dbt_project.manifest_path,
            dagster_dbt_translator=translator,
            raise_on_error=False,
            target_path=warehouse.dbt_target_dir,
        ).wait()
    try:
        results = {
            r["unique_id"]: r for r in invocation.get_artifact("run_results.json")["results"]
        }
    except FileNotFoundError:
        raise dg.Failure(
            description=(
                "`dbt test` on the raw sources wrote no results; its output is in the run log. "
                "Run `dbt test --select source:*` in dbt_project/ to see why."
            )
        ) from None
    for test in tests:
        result = results.get(test.unique_id, {})
        status = str(result.get("status", "not run"))
        yield dg.AssetCheckResult(
            asset_key=test.asset_key,
            check_name=test.name,
            passed=status == "pass",
            severity=(
                dg.AssetCheckSeverity.ERROR
                if test.severity == "error"
                else dg.AssetCheckSeverity.WARN
            ),
            metadata={
                "dbt_status": status,
                "failing_rows": dg.MetadataValue.int(int(result.get("failures") or 0)),
                "dbt_unique_id": test.unique_id,
                "execution_seconds": float(result.get("execution_time") or 0.0),
            },
        )


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False
    """Rebuild the incremental models from all of raw (`cdp run --full-refresh`): needed
    once after an upgrade changes an incremental model's columns, which their
    `on_schema_change='fail'` refuses rather than silently dropping or NULL-filling."""


def dbt_build_args(full_refresh: bool = False) -> list[str]:
    """The `dbt build` command line of the staging and marts steps."""
    # "buildable": a test runs in the step where all its models exist, e.g. the revenue
    # reconciliation between staging and marts runs with the marts.
    # Unit tests check SQL logic, not data: they run in `make test` (tests/dbt), not nightly
    # (dbt's own advice), which saves ~10 model builds per run.
    return [
        "build",
        "--indirect-selection",
        "buildable",
        "--exclude-resource-type",
        "unit_test",
        *(["--full-refresh"] if full_refresh else []),
    ]


def _run_dbt(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config: DbtBuildConfig,
):
    # dbt opens the DuckDB file: hold the writer lock for it and point it at the file
    # this run writes.
    with warehouse.dbt_environment(context.log):
        invocation = dbt.cli(
            dbt_build_args(config.full_refresh),
            context=context,
            target_path=warehouse.dbt_target_dir,
            raise_on_error=False,
        )
        yield from invocation.stream()
    if not invocation.is_successful():
        try:
            run_results = invocation.get_artifact("run_results.json")
        except (FileNotFoundError, ValueError):
            run_results = None
        failure = dbt_step_failure(run_results, f"dbt build ({context.op_def.name})")
        raise dg.Failure(description=failure.description, allow_retries=failure.retriable)
    if warehouse.engine.is_spark:
        # The Python steps after this one (identity, predictions, erasure, publishing) read
        # what dbt built; on Spark they get a copy of it in the local step store.
        warehouse.import_from_spark(
            spark_tables_built(invocation.get_artifact("run_results.json")), context.log
        )


def spark_tables_built(run_results: Mapping[str, Any]) -> list[str]:
    """`schema.table` of every model and seed a dbt run built as a table (views have no
    data of their own), from its run_results.json and the manifest."""
    nodes = MANIFEST["nodes"]
    built = []
    for result in run_results["results"]:
        node = nodes.get(result["unique_id"])
        if (
            node is None
            or node["resource_type"] not in ("model", "seed")
            or result.get("status") != "success"
            or node["config"].get("materialized") == "view"
        ):
            continue
        built.append(f"{node['schema']}.{node.get('alias') or node['name']}")
    return sorted(built)


@dbt_assets(
    manifest=cdp_dbt_project.manifest_path,
    project=cdp_dbt_project,
    select=STAGING_FROM_RAW,
    # The raw sources' own tests run as checks of raw/* in dbt_raw_source_tests.
    exclude=" ".join(t.name for t in RAW_SOURCE_TESTS),
    name="dbt_staging",
    dagster_dbt_translator=translator,
    retry_policy=DBT_RETRY,
)
def dbt_staging(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config: DbtBuildConfig,
):
    """Typed, deduplicated, latest-wins views of every source table."""
    yield from _run_dbt(context, dbt, warehouse, config)


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
def dbt_marts(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config: DbtBuildConfig,
):
    """The BI contract: the 360 view, segments, lifetime value, engagement, sessions, cohorts."""
    yield from _run_dbt(context, dbt, warehouse, config)


def mart_keys() -> list[dg.AssetKey]:
    return sorted(
        (k for k in dbt_marts.keys if k.path[0] == "marts"), key=lambda k: k.to_user_string()
    )


def full_refresh_run_config() -> dict[str, Any]:
    """Run config of the job's two `dbt build` steps for `cdp run --full-refresh`."""
    return {
        step: {"config": {"full_refresh": True}}
        for step in (dbt_staging.op.name, dbt_marts.op.name)
    }
