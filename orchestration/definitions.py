"""The Dagster code location: `dagster dev -w workspace.yaml` loads `defs` from here."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from orchestration.file_modes import apply_private_umask

# The UI, the daemon and every run worker load this module: what they write is private.
apply_private_umask()

import dagster as dg  # noqa: E402

# backfill_policy and freshness policies are marked beta/preview; we rely on them knowingly.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from orchestration.assets.dbt import (  # noqa: E402
    CdpDbtCliResource,
    cdp_dbt_project,
    dbt_marts,
    dbt_raw_source_tests,
    dbt_staging,
)
from orchestration.assets.identity import (  # noqa: E402
    identity_assets,
    identity_quality_report,
)
from orchestration.assets.ingestion import landing_specs, raw_assets  # noqa: E402
from orchestration.assets.predictions import (  # noqa: E402
    prediction_assets,
    prediction_checks,
    train_predictions_job,
    weekly_training_schedule,
)
from orchestration.assets.privacy import privacy_erasure  # noqa: E402
from orchestration.assets.publish import published_marts  # noqa: E402
from orchestration.automation import (  # noqa: E402
    alert_retry,
    landing_zone_sensor,
    nightly_schedule,
    pipeline_job,
    run_failure_alert,
)
from orchestration.checks import build_quality_checks  # noqa: E402
from orchestration.resources import LandingZoneResource, WarehouseResource  # noqa: E402

_assets = [
    *landing_specs(),
    *raw_assets,
    dbt_staging,
    identity_assets,
    identity_quality_report,
    *prediction_assets,
    dbt_marts,
    privacy_erasure,
    published_marts,
]
_asset_keys = {key for a in _assets for key in (a.keys if hasattr(a, "keys") else [a.key])}

# One Definitions object at module scope (Dagster refuses a module with several): the
# pipeline plus weekly model training and its baseline checks (assets/predictions.py).
defs = dg.Definitions(
    assets=_assets,
    asset_checks=[
        *build_quality_checks(_asset_keys),
        dbt_raw_source_tests,
        *prediction_checks,
    ],
    jobs=[pipeline_job, train_predictions_job],
    schedules=[nightly_schedule, weekly_training_schedule],
    sensors=[landing_zone_sensor, run_failure_alert, alert_retry],
    resources={
        # No path: each run reads $CDP_WAREHOUSE / $CDP_LANDING_DIR (or their defaults),
        # resolved from the repository root when relative, so every process agrees on the
        # files whatever its directory, and importing this module changes no environment.
        "warehouse": WarehouseResource(),
        "landing": LandingZoneResource(),
        # The dbt of this virtualenv, whether or not .venv/bin is on PATH.
        "dbt": CdpDbtCliResource(
            project_dir=cdp_dbt_project, dbt_executable=str(Path(sys.executable).with_name("dbt"))
        ),
    },
)
