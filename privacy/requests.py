"""`cdp forget`: an operator files an erasure request exactly as the intake system would.

The request becomes a CSV under `<landing>/privacy/requests/dt=<today, UTC>/`, so it goes
through the same loader, the same erasure step and the same log as any other request:
there is one way a person is forgotten, whoever asked.
"""

from __future__ import annotations

import csv
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

REQUEST_COLUMNS = ("request_id", "request_type", "email", "phone", "received_at")


class ForgetError(Exception):
    """A request that cannot be filed; the message says what to give instead."""


def customer_identifiers(
    con: duckdb.DuckDBPyConnection, customer_id: str
) -> tuple[str | None, str | None]:
    """The best email and phone of a golden customer, to name them in a request."""
    row = con.execute(
        "SELECT email, phone FROM marts.dim_customers WHERE customer_id = ?", [customer_id]
    ).fetchone()
    if row is None:
        raise ForgetError(
            f"no golden customer {customer_id} in marts.dim_customers (already erased, or "
            "a typo?); `cdp explain` shows a customer's records"
        )
    if not row[0] and not row[1]:
        raise ForgetError(
            f"customer {customer_id} has neither an email nor a phone to name in a request; "
            "ask the person for the identifier they used"
        )
    return row[0], row[1]


def file_erasure_request(
    landing_dir: Path,
    email: str | None = None,
    phone: str | None = None,
    now: datetime | None = None,
) -> tuple[str, Path]:
    """Write one erase request; returns its id and the file written (mode 600)."""
    email = (email or "").strip() or None
    phone = (phone or "").strip() or None
    if not email and not phone:
        raise ForgetError("give --email, --phone or --customer")
    if email and "@" not in email:
        raise ForgetError("--email does not look like an email address (no '@')")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    request_id = f"cli-{uuid.uuid4().hex[:16]}"
    folder = Path(landing_dir) / "privacy" / "requests" / f"dt={moment.date().isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{request_id}.csv"
    tmp = folder / f".{request_id}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(REQUEST_COLUMNS)
        writer.writerow(
            [request_id, "erase", email or "", phone or "", moment.strftime("%Y-%m-%dT%H:%M:%SZ")]
        )
    os.replace(tmp, path)
    return request_id, path
