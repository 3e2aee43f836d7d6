"""Failure alerts that arrive: one payload shape, retries with backoff, no surprises.

Used by the Dagster failure sensors (orchestration/automation.py) and by `cdp run`, so an
alert looks the same whoever started the failed run. Plain Python: no Dagster here.

* https only, unless `CDP_ALERT_ALLOW_HTTP=1` (a webhook URL is a secret and the payload
  names the warehouse's runs; neither should travel in clear text by accident).
* Timeouts, connection errors, 429 and 5xx are retried with exponential backoff; other
  4xx are not (the request itself is wrong).
* Redirects are followed by hand, and only to the same host over the same scheme: a
  webhook that redirects elsewhere is refused rather than sending the payload there.
* Payloads hold run ids, job, partition and the failure message with anything that looks
  like an e-mail address or a phone number masked (`quality.masking.mask_text`, the
  project's one masking policy). Errors name the webhook's host, never
  its full URL (which carries the secret token).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import requests

from orchestration.settings import SettingError, flag_setting
from quality.masking import mask_text

WEBHOOK_ENV = "CDP_ALERT_WEBHOOK"
ALLOW_HTTP_ENV = "CDP_ALERT_ALLOW_HTTP"
ATTEMPTS = 4
BACKOFF_S = 1.0
TIMEOUT_S = 10.0
MAX_REDIRECTS = 3
MESSAGE_LIMIT = 1000

# Run tags that make an alert's fate visible in the UI (Runs, filter by tag).
ALERT_TAG = "cdp/alert"  # sent | failed | gave_up
ALERT_ATTEMPTS_TAG = "cdp/alert_attempts"


class AlertDeliveryError(Exception):
    """The alert could not be delivered (after retries, or not retryable)."""


def failure_payload(
    *,
    run_id: str,
    job: str,
    partition: str | None,
    message: str,
    trigger: str | None = None,
    failed_at: datetime | None = None,
) -> dict:
    """The JSON body of a failure alert (the shape Slack and Teams incoming webhooks accept)."""
    message = " ".join(mask_text(message or "run failed").split())
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT] + " …"
    when = (failed_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return {
        "text": f"cdp pipeline run {run_id[:8]} failed ({job}, partition {partition}): {message}",
        "run_id": run_id,
        "job": job,
        "partition": partition,
        "trigger": trigger,
        "message": message,
        "failed_at": when.isoformat().replace("+00:00", "Z"),
    }


def webhook_from_env() -> str | None:
    return os.environ.get(WEBHOOK_ENV) or None


def describe_webhook(url: str) -> str:
    """The webhook without its path (the secret part)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "<invalid webhook URL>"


def http_alerts_allowed() -> bool:
    """CDP_ALERT_ALLOW_HTTP: 1 allows a plain-http webhook; unset or 0 does not."""
    return flag_setting(ALLOW_HTTP_ENV, on=("1",), off=("0",))


def check_webhook(url: str) -> None:
    parts = urlsplit(url)
    try:
        allow_http = http_alerts_allowed()
    except SettingError as exc:
        raise AlertDeliveryError(str(exc)) from None
    if parts.scheme == "https" or (parts.scheme == "http" and allow_http):
        if parts.netloc:
            return
    raise AlertDeliveryError(
        f"{WEBHOOK_ENV} must be an https:// URL (got {describe_webhook(url) if parts.netloc else 'a ' + (parts.scheme or 'schemeless') + ' URL'}); "
        f"set {ALLOW_HTTP_ENV}=1 to allow plain http, e.g. for a webhook on localhost"
    )


def _retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def deliver_alert(
    url: str,
    payload: dict,
    *,
    attempts: int | None = None,
    backoff_s: float | None = None,
    timeout_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """POST `payload` to the webhook; returns the number of attempts it took.

    Raises AlertDeliveryError naming the webhook host and the last error."""
    attempts = ATTEMPTS if attempts is None else attempts
    backoff_s = BACKOFF_S if backoff_s is None else backoff_s
    timeout_s = TIMEOUT_S if timeout_s is None else timeout_s
    check_webhook(url)
    origin = urlsplit(url)
    last_error = "no attempt made"
    for attempt in range(1, attempts + 1):
        target = url
        try:
            for _redirect in range(MAX_REDIRECTS + 1):
                response = requests.post(
                    target, json=payload, timeout=timeout_s, allow_redirects=False
                )
                if not response.is_redirect:
                    break
                location = urljoin(target, response.headers.get("Location", ""))
                moved = urlsplit(location)
                if (moved.scheme, moved.netloc) != (origin.scheme, origin.netloc):
                    raise AlertDeliveryError(
                        f"the webhook {describe_webhook(url)} redirected to another host "
                        f"({describe_webhook(location)}); not following it. Point "
                        f"{WEBHOOK_ENV} at the final URL."
                    )
                target = location
            else:
                raise AlertDeliveryError(
                    f"the webhook {describe_webhook(url)} redirected more than {MAX_REDIRECTS} times"
                )
            if response.status_code < 300:
                return attempt
            last_error = f"HTTP {response.status_code}"
            if not _retryable_status(response.status_code):
                raise AlertDeliveryError(
                    f"the webhook {describe_webhook(url)} refused the alert ({last_error}); "
                    f"check {WEBHOOK_ENV}"
                )
        except (requests.Timeout, requests.ConnectionError) as exc:
            last_error = type(exc).__name__
        if attempt < attempts:
            sleep(backoff_s * 2 ** (attempt - 1))
    raise AlertDeliveryError(
        f"the webhook {describe_webhook(url)} did not take the alert after {attempts} "
        f"attempts (last: {last_error})"
    )
