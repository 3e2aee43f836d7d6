"""Support tickets and NPS responses through the real loader (issue 12): the new bad kinds
are rejected at their line with a reason naming column and value, descriptive values a
helpdesk invents still load, and a multi-line comment is stored byte for byte without
shifting the line numbers of the records after it."""

from __future__ import annotations

import pytest

from tests.ingestion.landing_rows import TS, csv_file, load, only_reject, rejects

TICKETS_HEADER = (
    "ticket_id,requester_email,requester_name,requester_phone,subject,status,priority,channel,"
    "created_at,updated_at,first_responded_at,solved_at,satisfaction"
)
RESPONSES_HEADER = "response_id,survey_id,respondent_email,score,comment,submitted_at"


def ticket(ticket_id: str = "1001", status: str = "open", satisfaction: str = "") -> str:
    return (
        f"{ticket_id},ada@example.com,Ada Lovelace,+44 20 7946 0000,Refund,{status},normal,"
        f"email,{TS},{TS},{TS},,{satisfaction}"
    )


def response(response_id: str = "r1", score: str = "9", submitted_at: str = TS) -> str:
    return f"{response_id},nps-q4,ada@example.com,{score},,{submitted_at}"


@pytest.mark.parametrize(
    ("score", "reason"),
    [
        ("11", "column 'score' has value '11', but an NPS score"),
        ("-1", "must be a whole number from 0 to 10"),
        ("ten", "column 'score' has value 'ten', which is not a whole number"),
        ("9.5", "column 'score' has value '9.5'"),
        ("", "required column 'score' is missing or empty"),
    ],
)
def test_an_nps_score_outside_0_to_10_is_rejected_at_its_line(con, landing, score, reason):
    path = landing.write(
        "survey_responses",
        "part-0.csv",
        csv_file(RESPONSES_HEADER, response("r1"), response("r2", score), response("r3", "10")),
    )
    result = load(con, landing, "survey_responses")
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    reject = only_reject(con, "survey_responses")
    assert (reject["source_file"], reject["line_number"], reject["column_name"]) == (
        landing.relative(path),
        3,
        "score",
    )
    assert reason in reject["reason"]
    assert con.execute("SELECT list(score ORDER BY score) FROM raw.survey_responses").fetchone()[
        0
    ] == [9, 10]


def test_the_score_bounds_themselves_load(con, landing):
    landing.write(
        "survey_responses",
        "part-0.csv",
        csv_file(
            RESPONSES_HEADER, response("r0", "0"), response("r10", " 10 "), response("r9", "9.0")
        ),
    )
    load(con, landing, "survey_responses")
    assert rejects(con, "survey_responses") == []
    assert con.execute("SELECT list(score ORDER BY score) FROM raw.survey_responses").fetchone()[
        0
    ] == [0, 9, 10]


def test_a_bad_submitted_at_is_rejected(con, landing):
    landing.write(
        "survey_responses",
        "part-0.csv",
        csv_file(RESPONSES_HEADER, response("r1", submitted_at="yesterday at 5pm")),
    )
    load(con, landing, "survey_responses")
    reject = only_reject(con, "survey_responses")
    assert reject["column_name"] == "submitted_at"
    assert "column 'submitted_at' has value 'yesterday at 5pm'" in reject["reason"]


def test_an_unknown_ticket_status_and_a_missing_ticket_id_are_rejected(con, landing):
    landing.write(
        "support_tickets",
        "part-0.csv",
        csv_file(
            TICKETS_HEADER,
            ticket("1001", "Solved"),
            ticket("1002", "escalated"),
            ticket("", "open"),
            ticket("1004", "pending"),
        ),
    )
    result = load(con, landing, "support_tickets")
    assert (result.rows_loaded, result.rows_rejected) == (2, 2)
    found = rejects(con, "support_tickets")
    assert [(r["line_number"], r["column_name"]) for r in found] == [
        (3, "status"),
        (4, "ticket_id"),
    ]
    assert (
        "column 'status' has value 'escalated', expected one of new, open, pending"
        in (found[0]["reason"])
    )
    assert "required column 'ticket_id' is missing or empty" in found[1]["reason"]
    assert con.execute(
        "SELECT list(status ORDER BY ticket_id) FROM raw.support_tickets"
    ).fetchone()[0] == ["solved", "pending"]


def test_a_helpdesks_own_satisfaction_value_loads_as_delivered(con, landing):
    """Zendesk exports 'offered' for a survey sent but not answered: not a reason to lose the ticket."""
    landing.write(
        "support_tickets",
        "part-0.csv",
        csv_file(
            TICKETS_HEADER, ticket("1001", "solved", "offered"), ticket("1002", "solved", "Good")
        ),
    )
    load(con, landing, "support_tickets")
    assert rejects(con, "support_tickets") == []
    assert con.execute(
        "SELECT list(satisfaction ORDER BY ticket_id) FROM raw.support_tickets"
    ).fetchone()[0] == ["offered", "Good"]


def test_a_multi_line_comment_is_stored_byte_for_byte_and_later_lines_keep_their_numbers(
    con, landing
):
    comment = ' Fast, "friendly" —\nthen nothing,\nfor weeks. '
    quoted = '"' + comment.replace('"', '""') + '"'
    content = (
        RESPONSES_HEADER
        + "\n"
        + f"r1,nps-q4,ada@example.com,9,{quoted},{TS}\n"
        + response("r2", "eleven")
        + "\n"
        + response("r3", "3")
        + "\n"
    )
    landing.write("survey_responses", "part-0.csv", content)
    result = load(con, landing, "survey_responses")
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    assert (
        con.execute("SELECT comment FROM raw.survey_responses WHERE response_id = 'r1'").fetchone()[
            0
        ]
        == comment
    )
    # r1 spans physical lines 2-4, so r2 is line 5 and r3 line 6
    assert only_reject(con, "survey_responses")["line_number"] == 5
    assert con.execute(
        "SELECT list(_line_number ORDER BY response_id) FROM raw.survey_responses"
    ).fetchone()[0] == [2, 6]
