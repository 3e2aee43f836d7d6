"""Landing rows and warehouse readers shared by the loader tests (every byte visible)."""

from __future__ import annotations

import json
from datetime import date, datetime

from ingestion.contract import RAW_TABLES
from ingestion.load import load_partition

DT = date(2026, 10, 1)
LOADED_AT = datetime(2026, 10, 2, 3, 0, 0)
TS = "2026-10-01T08:00:00Z"
CONTACTS_HEADER = (
    "contact_id,email,first_name,last_name,phone,city,country,subscribed,created_at,updated_at"
)
EVENTS_HEADER = "event_id,contact_id,campaign_id,campaign_name,event_type,occurred_at,url"
INVOICES_HEADER = (
    "invoice_id,customer_id,subscription_id,status,currency,amount_due_cents,"
    "amount_paid_cents,amount_refunded_cents,product,created_at,updated_at,paid_at"
)
SUBSCRIPTIONS_HEADER = (
    "subscription_id,customer_id,plan,status,mrr_cents,currency,started_at,updated_at,canceled_at"
)
CUSTOMERS_HEADER = (
    "customer_id,user_id,email,name,phone,address_line1,address_city,address_postal_code,"
    "address_country,created_at,updated_at,deleted"
)


def invoice(
    invoice_id: str = "in_1",
    status: str = "paid",
    currency: str = "eur",
    due: str = "4900",
    paid: str = "4900",
    refunded: str = "0",
) -> str:
    return (
        f"{invoice_id},cus_1,sub_1,{status},{currency},{due},{paid},{refunded},Pro,{TS},{TS},{TS}"
    )


def subscription(
    subscription_id: str = "sub_1", status: str = "active", mrr: str = "4900", currency: str = "eur"
) -> str:
    return f"{subscription_id},cus_1,Pro,{status},{mrr},{currency},{TS},{TS},"


def customer(customer_id: str = "cus_1", email: str = "ada@example.com") -> str:
    return (
        f'{customer_id},u_1,{email},"LOVELACE, ADA",+44 20 7946 0000,12 St James\'s Sq,London,'
        f"SW1Y 4JH,GB,{TS},{TS},false"
    )


def event(event_id: str = "evt_1", event_type: str = "open", occurred_at: str = TS) -> str:
    return f"{event_id},c1,cmp_1,Spring,{event_type},{occurred_at},"


def contact(
    contact_id: str,
    email: str = "a@example.com",
    subscribed: str = "true",
    created_at: str = TS,
    updated_at: str = TS,
    first_name: str = "Ada",
) -> str:
    return f"{contact_id},{email},{first_name},Lovelace,+44 20 7946 0000,London,GB,{subscribed},{created_at},{updated_at}"


def csv_file(header: str, *lines: str) -> str:
    return "\n".join([header, *lines]) + "\n"


def web_event(**overrides) -> str:
    """One Segment track event as a JSON line; an override of `...` drops that key."""
    event = {
        "messageId": "m-1",
        "type": "track",
        "anonymousId": "anon-1",
        "event": "Order Completed",
        "properties": {"revenue": 42.5},
        "context": {"page": {"url": "https://shop.example/cart"}},
        "timestamp": TS,
    }
    event.update(overrides)
    return json.dumps({k: v for k, v in event.items() if v is not ...})


def load(con, landing, table: str, dt: date = DT):
    return load_partition(con, table, dt, landing.root, loaded_at=LOADED_AT)


def rejects(con, table: str) -> list[dict]:
    cursor = con.execute(
        "SELECT * FROM raw.rejects WHERE source_table = ? ORDER BY source_file, line_number",
        [table],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def only_reject(con, table: str) -> dict:
    found = rejects(con, table)
    assert len(found) == 1, found
    return found[0]


def snapshot(con) -> dict[str, list[tuple]]:
    tables = [f"raw.{name}" for name in RAW_TABLES] + ["raw.rejects", "raw.load_audit"]
    return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
