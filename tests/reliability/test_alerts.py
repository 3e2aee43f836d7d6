"""Failure alerts against a real local webhook: retried, never redirected elsewhere, and
sent for a failed `cdp run` as well as for runs the failure sensor sees."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from orchestration import alerts
from orchestration.alerts import AlertDeliveryError, deliver_alert, failure_payload
from orchestration.automation import alert_retry, run_failure_alert
from orchestration.cli import main as cdp
from orchestration.run_lock import RunLock


class Webhook:
    """A local webhook that answers with the next status of a script (then the last one)."""

    def __init__(self, host: str = "127.0.0.1"):
        self.statuses: list[int] = [200]
        self.redirect_to: str | None = None
        self.received: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = hook.statuses.pop(0) if len(hook.statuses) > 1 else hook.statuses[0]
                if status in (301, 302, 307, 308):
                    self.send_response(status)
                    self.send_header("Location", hook.redirect_to)
                    self.end_headers()
                    return
                if status < 300:
                    hook.received.append(json.loads(body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_port}/hook/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def webhook(monkeypatch):
    monkeypatch.setenv("CDP_ALERT_ALLOW_HTTP", "1")
    monkeypatch.setattr(alerts, "BACKOFF_S", 0.01)
    hook = Webhook()
    yield hook
    hook.close()


PAYLOAD_KEYS = {"text", "run_id", "job", "partition", "trigger", "message", "failed_at"}


def test_a_5xx_is_retried_with_backoff_until_the_webhook_takes_it(webhook):
    webhook.statuses = [500, 503, 200]
    waits = []
    payload = failure_payload(run_id="r" * 36, job="cdp_pipeline", partition=None, message="x")
    assert deliver_alert(webhook.url, payload, backoff_s=0.5, sleep=waits.append) == 3
    assert waits == [0.5, 1.0], "exponential backoff"
    assert webhook.received == [payload]


def test_a_webhook_that_keeps_failing_raises_naming_the_host_not_the_token(webhook):
    webhook.statuses = [500]
    with pytest.raises(AlertDeliveryError) as failed:
        deliver_alert(webhook.url, {"text": "x"}, attempts=3)
    assert "after 3 attempts (last: HTTP 500)" in str(failed.value)
    assert "secret-token" not in str(failed.value)


def test_a_redirect_to_another_host_is_refused(webhook):
    elsewhere = Webhook(host="127.0.0.2")
    try:
        webhook.statuses = [307]
        webhook.redirect_to = elsewhere.url
        with pytest.raises(AlertDeliveryError, match="redirected to another host"):
            deliver_alert(webhook.url, {"text": "x"})
        assert elsewhere.received == []
    finally:
        elsewhere.close()


def test_a_same_host_redirect_is_followed(webhook):
    webhook.statuses = [308, 200]
    webhook.redirect_to = webhook.url.replace("/hook/", "/moved/")
    assert deliver_alert(webhook.url, {"text": "x"}) == 1
    assert webhook.received == [{"text": "x"}]


def test_plain_http_needs_an_explicit_setting(webhook, monkeypatch):
    monkeypatch.delenv("CDP_ALERT_ALLOW_HTTP")
    with pytest.raises(AlertDeliveryError, match="must be an https:// URL"):
        deliver_alert(webhook.url, {"text": "x"})
    assert webhook.received == []


def test_payloads_mask_personal_values():
    payload = failure_payload(
        run_id="0" * 36,
        job="cdp_pipeline",
        partition="2026-10-01",
        message="bad row: jane.doe@example.com, +1 (415) 555-0134",
    )
    assert set(payload) == PAYLOAD_KEYS
    text = json.dumps(payload)
    assert "jane.doe" not in text and "example.com" not in text and "555" not in text
    assert "j***@e***.com" in payload["message"] and "***34" in payload["message"]


def _failed_run(instance):
    @dg.op
    def explode():
        raise RuntimeError("landing zone unreadable")

    @dg.job(tags={"dagster/partition": "2026-10-01"})
    def failing_job():
        explode()

    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return result.dagster_run


def _failure_context(instance, run):
    record = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records[0]
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=record.event_log_entry.dagster_event,
    ).for_run_failure()


def test_a_lost_alert_is_tagged_on_the_run_and_retried_by_the_next_tick(webhook, monkeypatch):
    monkeypatch.setenv("CDP_ALERT_WEBHOOK", webhook.url)
    instance = dg.DagsterInstance.ephemeral()
    run = _failed_run(instance)

    webhook.statuses = [500]  # the webhook is down during the failure sensor's tick
    run_failure_alert(_failure_context(instance, run))
    tags = instance.get_run_by_id(run.run_id).tags
    assert tags["cdp/alert"] == "failed" and tags["cdp/alert_attempts"] == "1"
    assert webhook.received == []

    webhook.statuses = [200]  # back up: the retry sensor delivers it, once
    skip = alert_retry(dg.build_sensor_context(instance=instance))
    assert "1 delivered now" in skip.skip_message
    assert instance.get_run_by_id(run.run_id).tags["cdp/alert"] == "sent"
    assert [a["run_id"] for a in webhook.received] == [run.run_id]
    assert set(webhook.received[0]) == PAYLOAD_KEYS
    assert webhook.received[0]["partition"] == "2026-10-01"
    assert (
        "No undelivered alerts"
        in alert_retry(dg.build_sensor_context(instance=instance)).skip_message
    )


def test_the_retry_sensor_gives_up_after_its_limit(webhook, monkeypatch):
    monkeypatch.setenv("CDP_ALERT_WEBHOOK", webhook.url)
    monkeypatch.setattr(alerts, "ATTEMPTS", 1)
    monkeypatch.setattr("orchestration.automation.ALERT_RETRY_LIMIT", 2)
    instance = dg.DagsterInstance.ephemeral()
    run = _failed_run(instance)
    webhook.statuses = [500]
    run_failure_alert(_failure_context(instance, run))
    for _tick in range(3):
        alert_retry(dg.build_sensor_context(instance=instance))
    tags = instance.get_run_by_id(run.run_id).tags
    assert tags["cdp/alert"] == "gave_up" and tags["cdp/alert_attempts"] == "3"


def test_a_cdp_run_refused_by_the_lock_alerts_with_the_same_payload(webhook, monkeypatch, tmp_path):
    monkeypatch.setenv("CDP_ALERT_WEBHOOK", webhook.url)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    (tmp_path / "landing" / "email" / "contacts" / "dt=2026-10-01").mkdir(parents=True)
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    lock = RunLock(warehouse)
    lock.acquire("holder-run", timeout_s=0)
    try:
        code = cdp(
            [
                "run",
                "--landing",
                str(tmp_path / "landing"),
                "--warehouse",
                str(warehouse),
                "--no-wait",
            ]
        )
    finally:
        lock.release("holder-run")
    assert code == 1
    assert len(webhook.received) == 1
    alert = webhook.received[0]
    assert set(alert) == PAYLOAD_KEYS
    assert alert["trigger"] == "cli" and alert["partition"] == "2026-10-01"
    assert "holder-run" in alert["message"]
