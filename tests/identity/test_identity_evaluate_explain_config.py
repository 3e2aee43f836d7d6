"""Evaluation against truth, explain output, and config loading errors."""

import csv
from datetime import datetime

import duckdb
import pandas as pd
import pytest

from identity.config import IdentityConfig, IdentityConfigError, load_identity_config
from identity.evaluate import evaluate_against_truth, evaluate_assignment
from identity.explain import explain_customer
from identity.pipeline import resolve_identities


def test_pairwise_metrics_from_a_known_assignment():
    truth = pd.DataFrame(
        {
            "source_system": ["email"] * 5,
            "source_record_id": list("abcde"),
            "person_id": ["p1", "p1", "p1", "p2", "p3"],
        }
    )
    # a+b together, c split off (under-merge), d+e wrongly together (over-merge)
    predicted = pd.DataFrame(
        {
            "source_system": ["email"] * 4,
            "source_record_id": list("abde"),
            "customer_id": ["c1", "c1", "c2", "c2"],
        }
    )
    report = evaluate_assignment(truth, predicted)
    assert (report.true_pairs, report.predicted_pairs, report.correct_pairs) == (3, 2, 1)
    assert report.precision == pytest.approx(0.5)
    assert report.recall == pytest.approx(1 / 3)
    assert (report.over_merged_clusters, report.under_merged_people) == (1, 0)
    assert report.coverage == pytest.approx(0.8)
    assert "pairwise precision      0.5000" in report.format()


def test_evaluate_against_truth_file(staging, warehouse, tmp_path):
    staging.contact("ct_1", "ada@home.net")
    staging.billing("cus_1", email="Ada@Home.net")
    staging.contact("ct_2", "grace@navy.mil")
    resolve_identities(warehouse)
    truth = tmp_path / "truth.csv"
    truth.write_text(
        "source_system,source_record_id,person_id\nemail,ct_1,p1\nbilling,cus_1,p1\nemail,ct_2,p2\n"
    )
    report = evaluate_against_truth(warehouse, truth)
    assert (report.precision, report.recall, report.f1, report.coverage) == (1.0, 1.0, 1.0, 1.0)


def test_bad_truth_file_names_the_line(staging, warehouse, tmp_path):
    staging.contact("ct_1", "ada@home.net")
    resolve_identities(warehouse)
    truth = tmp_path / "truth.csv"
    truth.write_text("source_system,source_record_id,person_id\nemail,ct_1\n")
    with pytest.raises(ValueError, match=r"truth.csv, line 2"):
        evaluate_against_truth(warehouse, truth)


def test_explain_lists_records_rules_refusals_and_merges(staging, warehouse, customer_of):
    staging.billing(
        "cus_1", user_id="u_1", email="ada@home.net", name="LOVELACE, ADA", phone="(415) 555-2671"
    )
    staging.contact("ct_1", "ada@home.net", first_name="Ada", last_name="Lovelace")
    staging.web("anon_1", "u_1")
    staging.billing("cus_2", user_id="u_2", email="ada@home.net", name="Byron Lovelace")
    resolve_identities(warehouse, run_at=datetime(2026, 1, 1))
    text = explain_customer(warehouse, customer_of("billing:cus_1"))
    assert "name     Ada Lovelace  <- billing:cus_1" in text
    assert "phone    +14155552671  <- billing:cus_1" in text
    assert "email:ct_1: linked to billing:cus_1 by rule email_key" in text
    assert "web:anon_1: linked to billing:cus_1 by rule user_id" in text
    assert "Shared values, not used as keys" in text
    assert "2 different people's names" in text
    assert "no such customer" in explain_customer(warehouse, "cust_missing")


def test_config_loads_yaml_and_toml_and_names_bad_keys(tmp_path):
    yaml_file = tmp_path / "identity.yml"
    yaml_file.write_text("max_emails_per_customer: 5\nblocked_emails: [junk@shop.com]\n")
    config = load_identity_config(yaml_file)
    assert config.max_emails_per_customer == 5 and config.blocked_emails == ("junk@shop.com",)
    toml_file = tmp_path / "identity.toml"
    toml_file.write_text(
        'match_weight_threshold = 10.0\nhousehold_guard_comparison = "none"\n[[comparisons]]\nname = "phone"\ncolumn = "phone_e164"\n'
    )
    config = load_identity_config(toml_file)
    assert config.match_weight_threshold == 10.0 and [c.name for c in config.comparisons] == [
        "phone"
    ]
    assert config.household_guard_comparison is None

    bad = tmp_path / "bad.yml"
    bad.write_text("max_emails_per_custmer: 5\n")
    with pytest.raises(IdentityConfigError, match="max_emails_per_custmer"):
        load_identity_config(bad)
    bad.write_text("blocked_email_patterns: ['(unclosed']\n")
    with pytest.raises(IdentityConfigError, match="blocked_email_patterns"):
        load_identity_config(bad)
    bad.write_text("max_phones_per_customer: 0\n")
    with pytest.raises(IdentityConfigError, match="max_phones_per_customer"):
        load_identity_config(bad)
    with pytest.raises(IdentityConfigError, match="household_guard_comparison"):
        IdentityConfig(household_guard_comparison="shoe_size")


def test_truth_file_reads_the_same_through_duckdb_and_line_by_line(tmp_path):
    from identity import evaluate

    truth = tmp_path / "truth.csv"
    truth.write_text(
        'source_system,source_record_id,person_id\nemail,ct_1,p1\nweb,"anon,2",p1\n'
        'billing,"cus ""3""",p2\n'
    )
    assert evaluate._read_truth_plain(truth) is not None  # the DuckDB path takes it
    fast = evaluate.read_truth(truth)
    slow = evaluate.read_truth(truth, through_duckdb=False)
    pd.testing.assert_frame_equal(fast.reset_index(drop=True), slow)
    assert fast["source_record_id"].tolist() == ["ct_1", "anon,2", 'cus "3"']


def test_truth_file_in_a_folder_named_like_a_glob_is_read_itself(tmp_path):
    from identity.evaluate import read_truth

    # DuckDB's read_csv expands '*', '?' and '[...]' in a path: "zone[1]" would match the
    # folder "zone1" and read another zone's truth.
    header = "source_system,source_record_id,person_id\n"
    for folder, person in (("zone[1]", "p_own"), ("zone1", "p_other")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "truth.csv").write_text(f"{header}email,ct_1,{person}\n")
    truth = read_truth(tmp_path / "zone[1]" / "truth.csv")
    assert truth["person_id"].tolist() == ["p_own"]


def _warehouse_with_customer_map(tmp_path, rows):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema identity")
    con.execute(
        "create table identity.customer_map "
        "(source_system varchar, source_record_id varchar, customer_id varchar)"
    )
    con.executemany("insert into identity.customer_map values (?, ?, ?)", rows)
    return con


def test_nightly_evaluation_in_the_warehouse_equals_the_frames_one(tmp_path):
    from identity import evaluate

    # over-merged, under-merged, unmapped and cross-source records, and a quoted id
    truth_rows = [
        ("email", "e1", "p1"), ("billing", "b1", "p1"), ("web", "w1", "p1"),
        ("email", "e2", "p2"), ("billing", "b2", "p2"),
        ("email", "e3", "p3"), ("web", 'w,"3"', "p3"),
        ("survey", "s4", "p4"),
    ]  # fmt: skip
    mapped = [
        ("email", "e1", "c1"), ("billing", "b1", "c1"), ("web", "w1", "c9"),
        ("email", "e2", "c1"), ("billing", "b2", "c2"),
        ("email", "e3", "c3"), ("web", 'w,"3"', "c3"),
    ]  # fmt: skip
    truth = tmp_path / "truth.csv"
    with truth.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source_system", "source_record_id", "person_id"])
        writer.writerows(truth_rows)
    con = _warehouse_with_customer_map(tmp_path, mapped)

    in_warehouse = evaluate.evaluate_against_truth(con, truth, evidence_ceiling=False)
    from_frames = evaluate.evaluate_assignment(
        evaluate.read_truth(truth),
        pd.DataFrame(mapped, columns=["source_system", "source_record_id", "customer_id"]),
    )

    assert in_warehouse == from_frames
    assert evaluate._evaluate_in_warehouse(con, truth) is not None  # the warehouse path ran
    assert (in_warehouse.truth_records, in_warehouse.mapped_records) == (8, 7)
    assert (
        con.execute(
            "select count(*) from duckdb_tables() where table_name like '_evaluation%'"
        ).fetchone()[0]
        == 0
    )  # its temp tables are gone


@pytest.mark.parametrize("blank", ["", "   ", "\t", "\u00a0", "\u3000 "])
def test_a_blank_truth_value_is_refused_naming_its_line_on_either_path(tmp_path, blank):
    from identity import evaluate

    truth = tmp_path / "truth.csv"
    truth.write_text(
        f'source_system,source_record_id,person_id\nemail,ct_1,p1\nweb,"{blank}",p1\n',
        encoding="utf-8",
    )
    con = _warehouse_with_customer_map(tmp_path, [("email", "ct_1", "c1")])
    assert evaluate._evaluate_in_warehouse(con, truth) is None  # blank as str.strip() sees it
    assert evaluate._read_truth_plain(truth) is None  # the frames path's reader agrees
    with pytest.raises(ValueError, match="line 3"):
        evaluate.evaluate_against_truth(con, truth, evidence_ceiling=False)


def test_a_truth_file_duckdb_refuses_leaves_the_warehouse_connection_usable(tmp_path):
    from identity import evaluate

    truth = tmp_path / "truth.csv"
    # an unclosed quote: DuckDB's strict reader refuses it, the line-by-line one reads it
    truth.write_text('source_system,source_record_id,person_id\nemail,"ct_1,p1\n')
    con = _warehouse_with_customer_map(tmp_path, [("email", "ct_1", "c1")])
    con.execute("begin")  # even inside the caller's transaction
    assert evaluate._evaluate_in_warehouse(con, truth) is None
    assert con.execute("select count(*) from identity.customer_map").fetchone()[0] == 1
    con.execute("commit")
