"""The evidence ceiling and the per-source-pair scores of `cdp evaluate`."""

import pandas as pd
import pytest

from identity.evaluate import evaluate_against_truth, evaluate_assignment
from identity.pipeline import resolve_identities


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns).astype(object).where(lambda f: f.notna(), None)


EVIDENCE_COLUMNS = [
    "source_system",
    "source_record_id",
    "email_key",
    "phone_e164",
    "user_id",
    "first_name_key",
    "last_name",
    "address_city",
    "address_postal_code",
]


def test_ceiling_joins_a_persons_records_by_exact_evidence_only():
    truth = _frame(
        [
            ("email", "a", "p1"),
            ("billing", "b", "p1"),
            ("web", "c", "p1"),
            ("email", "d", "p1"),
            ("email", "e", "p2"),
            ("billing", "f", "p2"),
            ("email", "g", "p3"),
            ("billing", "h", "p3"),
            ("email", "i", "p4"),
            ("email", "j", "p4"),
        ],
        ["source_system", "source_record_id", "person_id"],
    )
    evidence = _frame(
        [
            # p1: a-b share an email, b-c a user id (stitching), d only a typo'd name
            ("email", "a", "ada@x.org", None, None, "ada", "lovelace", None, None),
            ("billing", "b", "ada@x.org", None, "u1", "ada", "lovelace", None, None),
            ("web", "c", None, None, "u1", None, None, None, None),
            ("email", "d", "al@y.org", None, None, "adda", "lovelace", "london", None),
            # p2: exact name + postcode
            ("email", "e", "g@x.org", None, None, "grace", "hopper", None, "10001"),
            ("billing", "f", "g2@x.org", None, None, "grace", "hopper", "nyc", "10001"),
            # p3: exact name, no locality in common: not enough
            ("email", "g", "k@x.org", None, None, "kay", "lee", "york", None),
            ("billing", "h", "k2@x.org", None, None, "kay", "lee", None, "Y01"),
            # p4: one phone; a stranger with the same phone must not join them to anyone
            ("email", "i", None, "+15550001", None, None, None, None, None),
            ("email", "j", None, "+15550001", None, None, None, None, None),
        ],
        EVIDENCE_COLUMNS,
    )
    predicted = truth.rename(columns={"person_id": "customer_id"})  # a perfect resolver
    report = evaluate_assignment(truth, predicted, evidence)
    # true pairs: p1 6, p2 1, p3 1, p4 1 = 9; connected: p1 {a,b,c} 3, p2 1, p4 1 = 5
    assert report.true_pairs == 9
    assert report.ceiling_pairs == 5
    assert report.ceiling_recall == pytest.approx(5 / 9)
    pairs = {p.systems: p for p in report.source_pairs}
    assert set(pairs) == {"billing-email", "billing-web", "email-email", "email-web"}
    # billing-email true pairs: a-b, d-b (p1), e-f (p2), g-h (p3) = 4; connected a-b, e-f
    assert (pairs["billing-email"].true_pairs, pairs["billing-email"].ceiling_pairs) == (4, 2)
    assert pairs["billing-web"].ceiling_recall == 1.0
    # email-web: a-c connected, d-c not
    assert (pairs["email-web"].true_pairs, pairs["email-web"].ceiling_pairs) == (2, 1)
    assert "evidence ceiling recall 0.5556" in report.format()


def test_source_pair_precision_and_recall():
    truth = _frame(
        [("email", "a", "p1"), ("billing", "b", "p1"), ("web", "c", "p1"), ("email", "d", "p2")],
        ["source_system", "source_record_id", "person_id"],
    )
    # a, b and the stranger d in one customer; c left alone
    predicted = _frame(
        [("email", "a", "c1"), ("billing", "b", "c1"), ("email", "d", "c1"), ("web", "c", "c2")],
        ["source_system", "source_record_id", "customer_id"],
    )
    report = evaluate_assignment(truth, predicted)
    pairs = {p.systems: p for p in report.source_pairs}
    assert (pairs["billing-email"].precision, pairs["billing-email"].recall) == (0.5, 1.0)
    assert pairs["email-email"].true_pairs == 0 and pairs["email-email"].precision == 0.0
    assert pairs["email-web"].recall == 0.0 and pairs["billing-web"].recall == 0.0
    assert report.ceiling_recall is None and "evidence ceiling" not in report.format()


def test_evaluate_against_truth_reads_the_ceiling_from_identity_records(
    staging, warehouse, tmp_path
):
    staging.contact("ct_1", "ada@home.net", first_name="Ada", last_name="Lovelace", city="London")
    staging.billing("cus_1", user_id="u_1", email="Ada@Home.net")
    staging.web("anon_1", "u_1")
    staging.contact("ct_2", "a.lovelace@work.com", first_name="Ada", last_name="Lovelace")
    resolve_identities(warehouse)
    truth = tmp_path / "truth.csv"
    truth.write_text(
        "source_system,source_record_id,person_id\n"
        "email,ct_1,p1\nbilling,cus_1,p1\nweb,anon_1,p1\nemail,ct_2,p1\n"
    )
    report = evaluate_against_truth(warehouse, truth)
    # ct_2 shares only the name, without a locality: 3 of the 6 true pairs are supported
    assert report.ceiling_pairs == 3
    text = report.format()
    assert "evidence ceiling recall 0.5000" in text
    assert "billing-web" in text and "email-web" in text
