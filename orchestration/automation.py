"""When the pipeline runs: the job, the nightly schedule and the sensors."""

import hashlib
import json
import re
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from orchestration.alerts import (
    ALERT_ATTEMPTS_TAG,
    ALERT_TAG,
    AlertDeliveryError,
    deliver_alert,
    failure_payload,
    webhook_from_env,
)
from orchestration.partitions import daily_partitions
from orchestration.resources import PIPELINE_JOB_NAME
from orchestration.settings import configured_path, schedule_cron, schedule_timezone

# One job for the schedule, the sensor, backfills from the UI and `cdp run`: a day's
# partition of every raw table, then everything downstream. The in-process executor runs
# the steps one after another in one process, which is what a single-writer DuckDB file
# wants (and it skips a Python start-up per step).
pipeline_job = dg.define_asset_job(
    name=PIPELINE_JOB_NAME,
    # Model training is weekly (orchestration/assets/predictions.py); nightly runs score.
    selection=dg.AssetSelection.all()
    - dg.AssetSelection.groups("landing")
    - dg.AssetSelection.assets(["predictions", "model_performance"]),
    partitions_def=daily_partitions,
    executor_def=dg.in_process_executor,
    description="Load a day's landing files, check them, resolve identities, build and publish the marts.",
    tags={"cdp/writes": "warehouse"},
)


@dg.schedule(
    job=pipeline_job,
    cron_schedule=schedule_cron(),
    execution_timezone=schedule_timezone(),
    name="nightly_pipeline",
    description="Every night: yesterday's landing day and everything downstream.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    tick = context.scheduled_execution_time.astimezone(ZoneInfo(schedule_timezone()))
    day = (tick - timedelta(days=1)).date().isoformat()
    if day < daily_partitions.start.date().isoformat():
        return dg.SkipReason(
            f"{day} is before the first partition ({daily_partitions.start.date()})."
        )
    return dg.RunRequest(
        run_key=f"nightly:{day}", partition_key=day, tags={"cdp/trigger": "schedule"}
    )


DAY_FOLDER = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")


def landing_fingerprints(landing_root: Path) -> dict[str, str]:
    """One fingerprint per landing day: the names, sizes and mtimes of all its files."""
    per_day: dict[str, list[str]] = {}
    if not landing_root.exists():
        return {}
    for table_dir in sorted(p for p in landing_root.glob("*/*") if p.is_dir()):
        for day_dir in table_dir.iterdir():
            match = DAY_FOLDER.match(day_dir.name)
            if not match or not day_dir.is_dir():
                continue
            for f in sorted(day_dir.iterdir()):
                if f.is_file() and not f.name.startswith("."):
                    st = f.stat()
                    rel = f.relative_to(landing_root)
                    per_day.setdefault(match.group(1), []).append(
                        f"{rel}:{st.st_size}:{st.st_mtime_ns}"
                    )
    return {
        day: hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:16]
        for day, entries in sorted(per_day.items())
    }


@dg.sensor(
    job=pipeline_job,
    name="landing_zone_sensor",
    minimum_interval_seconds=60,
    description="Starts a run for a landing day when its files appear or change.",
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def landing_zone_sensor(context: dg.SensorEvaluationContext):
    root = Path(configured_path("CDP_LANDING_DIR"))
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    current = landing_fingerprints(root)
    first, last = daily_partitions.start.date(), date.today() + timedelta(days=1)
    requests_: list[dg.RunRequest] = []
    for day, fingerprint in current.items():
        if seen.get(day) == fingerprint:
            continue
        if not (first <= date.fromisoformat(day) < last):
            context.log.warning(
                f"Ignoring landing day {day}: outside the partitions {first}..{last}."
            )
            continue
        requests_.append(
            dg.RunRequest(
                run_key=f"landing:{day}:{fingerprint}",
                partition_key=day,
                tags={"cdp/trigger": "landing_sensor"},
            )
        )
    context.update_cursor(json.dumps(current, sort_keys=True))
    if not requests_:
        return dg.SkipReason(f"No new or changed files under {root}.")
    return requests_


def run_partition(tags: dict) -> str | None:
    """The partition (or range) a run covered, from its tags."""
    if tags.get("dagster/partition"):
        return tags["dagster/partition"]
    if tags.get("dagster/asset_partition_range_start"):
        return (
            f"{tags['dagster/asset_partition_range_start']}.."
            f"{tags.get('dagster/asset_partition_range_end')}"
        )
    return None


def send_failure_alert(
    instance: dg.DagsterInstance | None, run: dg.DagsterRun, message: str, log
) -> str | None:
    """Log the failure and POST it to CDP_ALERT_WEBHOOK when set; record the outcome on the
    run as the tag `cdp/alert` (sent | failed) so a lost alert is visible and retried.

    Returns the tag value, or None when no webhook is configured."""
    payload = failure_payload(
        run_id=run.run_id,
        job=run.job_name,
        partition=run_partition(dict(run.tags)),
        message=message,
        trigger=run.tags.get("cdp/trigger"),
    )
    log.error(payload["text"])
    webhook = webhook_from_env()
    if not webhook:
        return None
    attempts = int(run.tags.get(ALERT_ATTEMPTS_TAG, "0")) + 1
    try:
        deliver_alert(webhook, payload)
        outcome = "sent"
    except AlertDeliveryError as exc:
        outcome = "failed"
        log.error(f"Alert for failed run {run.run_id} not delivered: {exc}")
    if instance is not None:
        instance.add_run_tags(run.run_id, {ALERT_TAG: outcome, ALERT_ATTEMPTS_TAG: str(attempts)})
    return outcome


def run_failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    if records:
        return records[-1].event_log_entry.dagster_event.message or "run failed"
    return "run failed"


@dg.run_failure_sensor(
    name="run_failure_alert",
    description=(
        "Logs every failed run and POSTs it to CDP_ALERT_WEBHOOK when that is set "
        "(retried with backoff; the run is tagged cdp/alert=sent or failed)."
    ),
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=False,
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    if run.tags.get(ALERT_TAG):  # `cdp run` alerted for it already
        return
    message = context.failure_event.message or "run failed"
    send_failure_alert(context.instance, run, message, context.log)


# An undelivered alert is retried this many times (once a tick), then given up on
# (tag cdp/alert=gave_up, one more error in the log).
ALERT_RETRY_LIMIT = 10


@dg.sensor(
    name="alert_retry",
    minimum_interval_seconds=120,
    description=(
        "Re-sends failure alerts whose delivery failed (runs tagged cdp/alert=failed), "
        f"up to {ALERT_RETRY_LIMIT} times."
    ),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def alert_retry(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    instance = context.instance
    pending = instance.get_runs(filters=dg.RunsFilter(tags={ALERT_TAG: "failed"}), limit=50)
    if not pending:
        return dg.SkipReason("No undelivered alerts.")
    delivered = gave_up = 0
    for run in pending:
        attempts = int(run.tags.get(ALERT_ATTEMPTS_TAG, "1"))
        if attempts > ALERT_RETRY_LIMIT:
            instance.add_run_tags(run.run_id, {ALERT_TAG: "gave_up"})
            context.log.error(
                f"Giving up on the alert for failed run {run.run_id} after {attempts - 1} "
                "deliveries failed; check CDP_ALERT_WEBHOOK."
            )
            gave_up += 1
            continue
        outcome = send_failure_alert(
            instance, run, run_failure_message(instance, run.run_id), context.log
        )
        delivered += outcome == "sent"
    return dg.SkipReason(
        f"{len(pending)} undelivered alert(s): {delivered} delivered now, {gave_up} given up, "
        f"{len(pending) - delivered - gave_up} to retry on the next tick."
    )
