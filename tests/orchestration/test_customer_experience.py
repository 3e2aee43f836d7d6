"""Customer experience end to end through `cdp run` (issue 12): support tickets and NPS
responses with known values, dropped into a generated zone, come out of the real loader,
dbt build, identity engine and quality checks as the numbers counted here by hand.

The generated zone gives realistic company for the hand-written people; its own tickets
and responses are replaced by ours, so every NPS figure below is exact.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import duckdb
import pytest

from ingestion.contract import (
    BILLING_CUSTOMERS,
    BILLING_SUBSCRIPTIONS,
    SUPPORT_TICKETS,
    SURVEY_RESPONSES,
)
from orchestration.cli import main as cdp

pytestmark = pytest.mark.slow

DAY_1, DAY_2 = "2026-10-01", "2026-10-02"
# A plan nobody in the generated zone is on: its NPS row holds only our people.
PLAN = "Zenith Annual"
COMMENT = ' She said "fast, friendly",\nthen nothing — for weeks. '

# Three billing customers on the Zenith plan; Zora is the one who later calls by phone.
CUSTOMERS = [
    ("cus_zx_zora", "zora.quill@quillworks.io", "Zora Quill", "+1 415 555 0199"),
    ("cus_zx_odo", "odo.brannigan@brannigan.io", "Odo Brannigan", None),
    ("cus_zx_ivy", "ivy.marsh@marsh-family.net", "Ivy Marsh", None),
]
# response id, email (None: anonymous), score, comment
RESPONSES = [
    ("resp-zx-1", "zora.quill@quillworks.io", 10, COMMENT),
    ("resp-zx-2", " ODO.Brannigan@brannigan.io ", 6, None),
    ("resp-zx-3", "ivy.marsh@marsh-family.net", 9, "ok, fine"),
    ("resp-zx-4", "ivy.marsh@marsh-family.net", 7, None),
    ("resp-zx-5", None, 3, "anonymous, and unhappy"),
    ("resp-zx-6", None, 10, None),
    ("resp-zx-7", "someone.new@elsewhere.io", 8, None),
]
# Zero-based: promoters 10, 9, 10 (3); passives 7, 8 (2); detractors 6, 3 (2); 7 responses.
ALL_ROW = (7, 3, 2, 2, pytest.approx(100 * (3 - 2) / 7))
# The Zenith plan's customers answered 10, 6, 9, 7: 2 promoters, 1 passive, 1 detractor.
ZENITH_ROW = (4, 2, 1, 1, pytest.approx(25.0))


def _csv(header: list[str], rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in header])
    return buffer.getvalue().encode("utf-8")


def _deliver(zone: Path, landing_path: str, day: str, header: list[str], rows: list[dict]) -> None:
    folder = zone / landing_path / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part-9000.csv").write_bytes(_csv(header, rows))


def _header(spec) -> list[str]:
    return [c.name for c in spec.columns]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    zone = tmp_path_factory.mktemp("cx_zone") / "landing"
    assert (
        cdp(["generate", "--out", str(zone), "--customers", "150", "--days", "2", "--seed", "5"])
        == 0
    )
    for generated in ("support/tickets", "surveys/responses"):
        shutil.rmtree(zone / generated)
    _deliver(
        zone,
        "billing/customers",
        DAY_1,
        _header(BILLING_CUSTOMERS),
        [
            {
                "customer_id": cid,
                "email": email,
                "name": name,
                "phone": phone,
                "address_country": "US",
                "created_at": "2026-06-01T10:00:00Z",
                "updated_at": "2026-06-01T10:00:00Z",
                "deleted": "false",
            }
            for cid, email, name, phone in CUSTOMERS
        ],
    )
    _deliver(
        zone,
        "billing/subscriptions",
        DAY_1,
        _header(BILLING_SUBSCRIPTIONS),
        [
            {
                "subscription_id": f"sub_{cid}",
                "customer_id": cid,
                "plan": PLAN,
                "status": "active",
                "mrr_cents": "9900",
                "currency": "usd",
                "started_at": "2026-06-01T10:00:00Z",
                "updated_at": "2026-06-01T10:00:00Z",
            }
            for cid, *_ in CUSTOMERS
        ],
    )
    ticket = {
        "ticket_id": "90001",
        "requester_name": "Zora Quill",
        "requester_phone": "(415) 555-0199",
        "subject": "Cannot log in",
        "priority": "High",
        "channel": "phone",
        "created_at": "2026-10-01 09:00:00",
    }
    _deliver(
        zone,
        "support/tickets",
        DAY_1,
        _header(SUPPORT_TICKETS),
        [
            {**ticket, "status": "new", "updated_at": "2026-10-01 09:00:00"},
            {
                "ticket_id": "90002",
                "requester_email": "Odo.Brannigan@brannigan.io",
                "status": "open",
                "created_at": "2026-10-01T11:00:00Z",
                "updated_at": "2026-10-01T12:00:00Z",
                "first_responded_at": "2026-10-01T12:00:00Z",
            },
        ],
    )
    _deliver(
        zone,
        "support/tickets",
        DAY_2,
        _header(SUPPORT_TICKETS),
        [
            {
                **ticket,
                "status": "solved",
                "updated_at": "2026-10-02T03:00:00+02:00",
                "first_responded_at": "2026-10-01 09:30:00",
                "solved_at": "2026-10-02T03:00:00+02:00",
                "satisfaction": "good",
            }
        ],
    )
    responses = [
        {
            "response_id": rid,
            "survey_id": "nps-2026-q4",
            "respondent_email": email,
            "score": str(score),
            "comment": comment,
            "submitted_at": f"{DAY_1}T1{i}:00:00Z",
        }
        for i, (rid, email, score, comment) in enumerate(RESPONSES)
    ]
    _deliver(zone, "surveys/responses", DAY_1, _header(SURVEY_RESPONSES), responses)
    # At-least-once: two responses arrive again the next day; they count once.
    _deliver(zone, "surveys/responses", DAY_2, _header(SURVEY_RESPONSES), responses[:2])

    path = tmp_path_factory.mktemp("cx_warehouse") / "warehouse.duckdb"
    assert cdp(["run", "--landing", str(zone), "--warehouse", str(path)]) == 0
    return path


def _query(warehouse: Path, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def test_nps_all_row_counts_every_response_once_anonymous_included(warehouse):
    assert _query(
        warehouse,
        "select responses, promoters, passives, detractors, nps from marts.nps_by_segment "
        "where segment_type = 'all'",
    ) == [ALL_ROW]


def test_nps_of_a_hand_checked_plan_segment(warehouse):
    assert _query(
        warehouse,
        "select responses, promoters, passives, detractors, nps from marts.nps_by_segment "
        "where segment_type = 'plan' and segment_name = ?",
        PLAN,
    ) == [ZENITH_ROW]


def test_anonymous_responses_are_no_identity_record_and_stay_unmatched(warehouse):
    mapped = {
        r[0]
        for r in _query(
            warehouse,
            "select source_record_id from marts.customer_identity_map where source_system = 'survey'",
        )
    }
    assert mapped == {"resp-zx-1", "resp-zx-2", "resp-zx-3", "resp-zx-4", "resp-zx-7"}
    (matched,) = _query(
        warehouse,
        "select matched_responses from marts.nps_by_segment where segment_type = 'all'",
    )[0]
    assert matched == 5


def test_a_ticket_re_exported_as_solved_is_one_row_with_the_later_status(warehouse):
    rows = _query(
        warehouse,
        "select status, is_open, priority, satisfaction, n_versions, resolution_hours "
        "from marts.fct_support_tickets where ticket_id = '90001'",
    )
    # created 09:00 UTC on day 1, solved 03:00+02:00 = 01:00 UTC on day 2: 16 hours
    assert rows == [("solved", False, "high", "good", 2, 16.0)]


def test_a_requester_known_only_by_phone_joins_their_customer(warehouse):
    rows = _query(
        warehouse,
        """
        select ticket.customer_id = billing.customer_id
        from marts.customer_identity_map ticket
        join marts.customer_identity_map billing
          on billing.source_system = 'billing' and billing.source_record_id = 'cus_zx_zora'
        where ticket.source_system = 'support' and ticket.source_record_id = '90001'
        """,
    )
    assert rows == [(True,)]
    zora = _query(
        warehouse,
        "select c.tickets_90d, c.open_tickets, c.csat_good_share, c.latest_nps_score, "
        "c.latest_nps_category from marts.customer_360 c join marts.customer_identity_map m "
        "on m.customer_id = c.customer_id where m.source_record_id = 'cus_zx_zora'",
    )
    assert zora == [(1, 0, 1.0, 10, "promoter")]


def test_a_comment_with_quote_comma_and_newline_survives_byte_for_byte(warehouse):
    assert _query(
        warehouse,
        "select comment from staging.stg_surveys__responses where response_id = 'resp-zx-1'",
    ) == [(COMMENT,)]


def test_the_run_summary_accounts_for_the_new_tables(warehouse):
    from orchestration.run_summary import reconciliation_rows

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = {r[0]: r[1:] for r in reconciliation_rows(con)}
    # landed, raw, rejected, staging, marts
    assert rows["support_tickets"] == (3, 3, 0, 2, 2)
    assert rows["survey_responses"] == (9, 9, 0, 7, None)
