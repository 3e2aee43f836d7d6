"""Customer-experience marts (issue 12) on the fixture warehouse: what the hand-written
tickets and responses of fixtures/experience_rows.sql imply, counted by hand."""

from __future__ import annotations

import pytest

EXPERIENCE_MARTS = [
    "fct_support_tickets",
    "nps_by_segment",
    "support_by_segment",
    "nps_trend",
    "nps_monthly",
]


@pytest.mark.parametrize("mart", EXPERIENCE_MARTS)
def test_every_experience_mart_has_rows(built_warehouse, mart):
    assert built_warehouse.scalar(f"select count(*) from marts.{mart}") > 0


def test_nps_all_row_counts_every_deduplicated_response_matched_or_not(built_warehouse):
    # Ada 10 and 6, Dee 9 (delivered twice, counted once), Bob 8, anonymous 3 and 10:
    # 6 responses, promoters 3, passives 1, detractors 2 -> NPS = 100 x (3 - 2) / 6.
    row = built_warehouse.query(
        "select responses, promoters, passives, detractors, nps, matched_responses "
        "from marts.nps_by_segment where segment_type = 'all'"
    )
    assert row == [(6, 3, 1, 2, pytest.approx(100 / 6), 4)]


def test_nps_by_plan_counts_the_responses_of_that_plans_customers(built_warehouse):
    rows = dict(
        (name, (responses, promoters, passives, detractors, nps))
        for name, responses, promoters, passives, detractors, nps in built_warehouse.query(
            "select segment_name, responses, promoters, passives, detractors, nps "
            "from marts.nps_by_segment where segment_type = 'plan'"
        )
    )
    # Ada is on Pro (10 and 6: NPS 0), Dee on Basic (9: 100), Bob has no subscription (8: 0).
    assert rows == {
        "Pro": (2, 1, 0, 1, 0.0),
        "Basic": (1, 1, 0, 0, 100.0),
        "none": (1, 0, 1, 0, 0.0),
    }


def test_every_ticket_is_one_row_with_its_latest_version(built_warehouse):
    rows = built_warehouse.query(
        "select ticket_id, customer_id, status, is_open, priority, satisfaction, "
        "resolution_hours, first_response_hours from marts.fct_support_tickets order by ticket_id"
    )
    assert rows == [
        ("tk_1", "gc_ada", "solved", False, "normal", "good", 12.0, 1.5),
        ("tk_2", "gc_ada", "open", True, "high", None, None, 1.0),
        ("tk_3", "gc_dee", "solved", False, "urgent", "bad", 26.0, 0.5),
        ("tk_4", None, "closed", False, None, None, 0.5, 5 / 60),
    ]


def test_customer_360_carries_the_experience_columns(built_warehouse):
    rows = built_warehouse.query(
        "select customer_id, tickets_90d, open_tickets, median_resolution_hours, csat_good_share, "
        "latest_nps_score, latest_nps_category from marts.customer_360 "
        "where customer_id in ('gc_ada', 'gc_dee', 'gc_cy') order by customer_id"
    )
    assert rows == [
        ("gc_ada", 2, 1, 12.0, 1.0, 6, "detractor"),
        ("gc_cy", 0, 0, None, None, None, None),
        ("gc_dee", 1, 0, 26.0, 0.0, 9, "promoter"),
    ]


def test_support_all_row_covers_every_ticket(built_warehouse):
    tickets, csat_ratings, open_tickets = built_warehouse.query(
        "select tickets, csat_ratings, open_tickets from marts.support_by_segment "
        "where segment_type = 'all'"
    )[0]
    assert (tickets, csat_ratings, open_tickets) == (4, 2, 1)


def test_nps_trend_sums_to_the_all_row(built_warehouse):
    assert built_warehouse.query(
        "select sum(responses), sum(promoters), sum(detractors) from marts.nps_trend"
    ) == [(6, 3, 2)]
    assert built_warehouse.query(
        "select submitted_month, responses, nps from marts.nps_monthly order by 1"
    )[-1][1:] == (5, pytest.approx(100 * (2 - 2) / 5))
