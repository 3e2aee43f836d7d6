"""Steward overrides (link, unlink, block a value) win over the rules and survive every run.

Small in-process zones: a nightly run is one more resolve on a warehouse that grew by a
day's records; a full run re-resolves the same warehouse; a backfill rebuilds the
identity tables from scratch (schema dropped) with only the reviewable file left.
"""

from __future__ import annotations

import os
from datetime import datetime

import duckdb
import pytest

from identity.overrides import (
    OverrideError,
    new_override,
    read_file,
    read_table,
    record_override,
    synchronise,
)
from identity.pipeline import resolve_identities
from identity.quality_report import identity_quality, record_quality_history, write_quality_page
from orchestration.cli import main as cdp

RUN_1, RUN_2, RUN_3, RUN_4 = (datetime(2026, 1, d, 2) for d in (1, 2, 3, 4))


@pytest.fixture
def overrides_file(tmp_path):
    return tmp_path / "identity_overrides.csv"


def _zone(staging):
    """Three cases a steward fixes: an over-merge by one shared email (ct_1 / cus_1),
    two records of one person the rules cannot see (ct_5 / ct_6), a family mailbox with
    one name on it (ct_7 / ct_8); and a bystander (Grace)."""
    staging.contact("ct_1", "ada@home.net", first_name="Ada", last_name="Lovelace")
    staging.billing("cus_1", user_id="u_1", email="ada@home.net", name="Ada Byron")
    staging.web("anon_1", "u_1")
    staging.contact("ct_5", "charles@engine.org", first_name="Charles", last_name="Babbage")
    staging.contact("ct_6", "cb1791@post.co.uk", first_name="Chas", last_name="Bbg")
    staging.contact("ct_7", "family@smith.net", first_name="Sam", last_name="Smith")
    staging.contact("ct_8", "family@smith.net", first_name="Sam", last_name="Smith")
    staging.contact("ct_9", "grace@navy.mil", first_name="Grace", last_name="Hopper")


def _steward(con, path):
    for row in (
        new_override("unlink", "ann", "two people on one email", "billing:cus_1", "email:ct_1"),
        new_override("link", "ann", "same person, confirmed by phone", "email:ct_5", "email:ct_6"),
        new_override(
            "block", "ann", "a family mailbox", value_kind="email", value="Family@Smith.net"
        ),
    ):
        record_override(con, path, row)


def _check(customer_of):
    assert customer_of("billing:cus_1") != customer_of("email:ct_1")
    assert customer_of("billing:cus_1") == customer_of("web:anon_1")
    assert customer_of("email:ct_5") == customer_of("email:ct_6")
    assert customer_of("email:ct_7") != customer_of("email:ct_8")


def _check_quality_page(con, docs_dir):
    """The QA page of these runs: the steward's work is visible, no raw value is."""
    quality = identity_quality(con)
    assert quality.run_at == RUN_3
    runs = quality.runs.set_index("run_at")
    assert runs.loc[RUN_2, "merges"] == 1 and runs.loc[RUN_2, "splits"] == 2
    assert runs.loc[RUN_3, "merges"] == runs.loc[RUN_3, "splits"] == 0
    assert "steward_link" in set(quality.by_rule["match_rule"])
    assert "steward_unlink" in set(quality.refused_by_guard["guard"])
    assert quality.size_distribution["records"].sum() == quality.records == 10
    assert set(quality.overrides["kind"]) == {"link", "unlink", "block"}
    page = write_quality_page(quality, docs_dir).read_text()
    biggest = quality.largest.iloc[0]
    assert "user_id u_1 x3" in biggest["identifiers"], biggest.to_dict()
    assert "a***@h***.net" in page and "Near-merges the guards refused" in page
    for raw in ("ada@home.net", "family@smith.net", "grace@navy.mil", "Lovelace"):
        assert raw not in page
    metadata = quality.to_metadata()
    assert metadata["largest_customer_records"] == biggest["n_records"] >= 3


def test_each_override_kind_survives_nightly_full_and_backfill(
    staging, warehouse, customer_of, overrides_file, tmp_path
):
    _zone(staging)
    resolve_identities(warehouse, run_at=RUN_1, overrides_file=overrides_file)
    # the rules alone: the over-merge and the family mailbox merged, Charles apart
    assert customer_of("billing:cus_1") == customer_of("email:ct_1")
    assert customer_of("email:ct_7") == customer_of("email:ct_8")
    assert customer_of("email:ct_5") != customer_of("email:ct_6")
    _steward(warehouse, overrides_file)

    # nightly: a new day's records, two of which would re-tie what was unlinked/blocked
    staging.contact("ct_10", "ada@home.net", first_name="Ada", last_name="Lovelace")
    staging.web("anon_2", "u_1", email="family@smith.net")
    summary = resolve_identities(warehouse, run_at=RUN_2, overrides_file=overrides_file)
    _check(customer_of)
    assert summary.steward["unlinks"] == summary.steward["links"] == 1
    assert summary.steward["blocked_value_records"] == 3
    rules = dict(
        warehouse.sql("select source_record_id, match_rule from identity.customer_map").fetchall()
    )
    assert "steward_link" in (rules["ct_5"], rules["ct_6"])
    refused = warehouse.sql(
        "select count(*) from identity.refused_merges where guard = 'steward_unlink'"
    ).fetchall()[0][0]
    assert refused >= 1
    grace = customer_of("email:ct_9")
    record_quality_history(warehouse, RUN_2)

    # full: the same warehouse re-resolved changes nothing
    resolve_identities(warehouse, run_at=RUN_3, overrides_file=overrides_file)
    _check(customer_of)
    assert customer_of("email:ct_9") == grace
    record_quality_history(warehouse, RUN_3)
    _check_quality_page(warehouse, tmp_path)

    # backfill: identity rebuilt from scratch; only the reviewable file remembers
    warehouse.execute("drop schema identity cascade")
    resolve_identities(warehouse, run_at=RUN_4, overrides_file=overrides_file)
    _check(customer_of)
    assert len(read_table(warehouse)) == 3

    # and the other way round: the file lost, the warehouse table restores it (what every
    # run does first, so no resolve is needed to see it)
    overrides_file.unlink()
    assert len(synchronise(warehouse, overrides_file)) == 3
    assert len(read_file(overrides_file)) == 3


def test_unlink_splits_the_customer_and_every_other_record_keeps_its_own(
    staging, warehouse, customer_of, overrides_file
):
    staging.contact("ct_1", "ada@home.net", first_name="Ada", last_name="Lovelace")
    staging.contact("ct_9", "grace@navy.mil", first_name="Grace", last_name="Hopper")
    staging.billing("cus_9", user_id="u_9", email="grace@navy.mil", name="Grace Hopper")
    resolve_identities(warehouse, run_at=RUN_1, overrides_file=overrides_file)
    original = customer_of("email:ct_1")
    # a day later two more records join Ada's customer: the newer part is the bigger one
    staging.billing("cus_1", user_id="u_1", email="ada@home.net", name="Ada Byron")
    staging.web("anon_1", "u_1")
    resolve_identities(warehouse, run_at=RUN_2, overrides_file=overrides_file)
    assert customer_of("billing:cus_1") == customer_of("web:anon_1") == original
    before = dict(
        warehouse.sql(
            "select source_system || ':' || source_record_id, customer_id from identity.customer_map"
        ).fetchall()
    )

    record_override(
        warehouse,
        overrides_file,
        new_override("unlink", "ann", "Byron is her mother", "email:ct_1", "billing:cus_1"),
    )
    summary = resolve_identities(warehouse, run_at=RUN_3, overrides_file=overrides_file)

    assert customer_of("email:ct_1") == original  # the part with the older record keeps the id
    split_off = customer_of("billing:cus_1")
    assert split_off != original and customer_of("web:anon_1") == split_off
    after = dict(
        warehouse.sql(
            "select source_system || ':' || source_record_id, customer_id from identity.customer_map"
        ).fetchall()
    )
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"billing:cus_1", "web:anon_1"}
    log = warehouse.execute(
        "select customer_id, n_records_moved from identity.split_log "
        "where original_customer_id = ? order by n_records_moved",
        [original],
    ).fetchall()
    assert log == [(original, 0), (split_off, 2)]
    assert summary.split_customers == 1


def test_overrides_name_known_records_and_keep_no_raw_value(
    staging, warehouse, overrides_file, capsys
):
    _zone(staging)
    resolve_identities(warehouse, run_at=RUN_1, overrides_file=overrides_file)
    with pytest.raises(OverrideError, match="unknown record billing:nobody"):
        record_override(
            warehouse,
            overrides_file,
            new_override("unlink", "ann", "x", "billing:nobody", "email:ct_1"),
        )
    warehouse.close()
    db = str(overrides_file.parent / "warehouse.duckdb")
    where = ["--warehouse", db, "--overrides-file", str(overrides_file), "--author", "ann"]
    assert (
        cdp(["identity", "block-value", "email", "Family@Smith.net", "--reason", "family", *where])
        == 0
    )
    assert cdp(["identity", "unlink", "billing:cus_1", "email:ct_1", "--reason", "r", *where]) == 0
    assert cdp(["identity", "link", "billing:cus_1", "email:ct_1", "--reason", "r", *where]) == 1
    assert "revoke it first" in capsys.readouterr().err
    assert cdp(["identity", "unlink", "email:ct_1", "web:nope", "--reason", "r", *where]) == 1
    assert "unknown record web:nope" in capsys.readouterr().err
    assert cdp(["identity", "overrides", *where[:-2]]) == 0
    listing = capsys.readouterr().out
    assert "f***@s***.net" in listing and "unlink" in listing
    text = overrides_file.read_text()
    assert "family@smith.net" not in text.lower() and "block" in text


def test_an_override_without_author_is_signed_with_the_login_name_even_without_user(
    staging, warehouse, overrides_file, capsys, monkeypatch
):
    """A container's root has no $USER: the override is signed with the OS account name,
    not refused."""
    import pwd

    _zone(staging)
    resolve_identities(warehouse, run_at=RUN_1, overrides_file=overrides_file)
    warehouse.close()
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(variable, raising=False)
    db = str(overrides_file.parent / "warehouse.duckdb")
    where = ["--warehouse", db, "--overrides-file", str(overrides_file)]
    assert cdp(["identity", "unlink", "billing:cus_1", "email:ct_1", "--reason", "r", *where]) == 0
    with duckdb.connect(db, read_only=True) as con:
        (author,) = con.execute("select author from identity.overrides").fetchone()
    assert author == pwd.getpwuid(os.getuid()).pw_name
