"""The nightly schedule, the landing-zone sensor and the failure alert, through Dagster's own test utilities."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from orchestration.automation import landing_zone_sensor, nightly_schedule, run_failure_alert


def test_nightly_schedule_requests_yesterdays_partition():
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 10, 15, 2, 0, tzinfo=UTC)
    )
    request = nightly_schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2026-10-14"
    assert request.run_key == "nightly:2026-10-14"
    assert nightly_schedule.cron_schedule == "0 2 * * *"
    assert nightly_schedule.execution_timezone == "UTC"


def _deliver(
    root, day: str, table: str = "email/contacts", name: str = "part-0000.csv", body: str = "x\n"
):
    folder = root / table / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(body)


def test_landing_sensor_runs_each_delivery_once(tmp_path, monkeypatch):
    monkeypatch.setenv("CDP_LANDING_DIR", str(tmp_path))
    _deliver(tmp_path, "2026-10-01")
    _deliver(tmp_path, "2026-10-01", table="web/events", name="part-0000.jsonl", body="{}\n")

    first = dg.build_sensor_context(cursor=None)
    requests = list(landing_zone_sensor(first))
    assert [r.partition_key for r in requests] == ["2026-10-01"], (
        "one run per new day, not per file"
    )

    # Nothing new: no run.
    again = dg.build_sensor_context(cursor=first.cursor)
    assert isinstance(landing_zone_sensor(again), dg.SkipReason)

    # A new day: exactly one run, for that day only.
    _deliver(tmp_path, "2026-10-02")
    third = dg.build_sensor_context(cursor=again.cursor or first.cursor)
    requests = list(landing_zone_sensor(third))
    assert [r.partition_key for r in requests] == ["2026-10-02"]

    # A re-delivery (a day's files change): that day runs again, with a new run key.
    _deliver(tmp_path, "2026-10-01", name="part-0001.csv")
    fourth = dg.build_sensor_context(cursor=third.cursor)
    requests = list(landing_zone_sensor(fourth))
    assert [r.partition_key for r in requests] == ["2026-10-01"]
    assert requests[0].run_key != f"landing:2026-10-01:{json.loads(third.cursor)['2026-10-01']}"


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_server():
    _Recorder.received = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Recorder.received
    server.shutdown()


def test_failure_sensor_posts_to_webhook(webhook_server, monkeypatch):
    url, received = webhook_server
    monkeypatch.setenv("CDP_ALERT_WEBHOOK", url)
    monkeypatch.setenv("CDP_ALERT_ALLOW_HTTP", "1")  # a local test server; real webhooks are https

    @dg.op
    def explode():
        raise RuntimeError("landing zone unreadable")

    @dg.job
    def failing_job():
        explode()

    instance = dg.DagsterInstance.ephemeral()
    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    records = instance.get_records_for_run(
        result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    failure_event = records[0].event_log_entry.dagster_event
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=failure_event,
    ).for_run_failure()
    run_failure_alert(context)

    assert len(received) == 1
    alert = received[0]
    assert alert["run_id"] == result.run_id
    assert alert["job"] == "failing_job"
    assert "failed" in alert["text"]
    assert os.environ["CDP_ALERT_WEBHOOK"] == url
