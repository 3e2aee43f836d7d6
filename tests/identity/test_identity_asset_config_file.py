"""The identity asset reads its settings from the `config_file` of its run config."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from orchestration.assets.identity import identity_assets
from orchestration.resources import LandingZoneResource, WarehouseResource
from tests.identity.conftest import StagingBuilder


def _warehouse_with_two_contacts_on_one_address(path) -> None:
    con = duckdb.connect(str(path))
    try:
        staging = StagingBuilder(con)
        staging.contact("ct_1", "orders@bakery.example.org", first_name="Ada", last_name="Lovelace")
        staging.contact("ct_2", "orders@bakery.example.org", first_name="Ada", last_name="Lovelace")
    finally:
        con.close()


def _materialize(tmp_path, run_config: dict) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [identity_assets],
        resources={
            "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
            "landing": LandingZoneResource(path=str(tmp_path / "landing")),
        },
        run_config={"ops": {"resolve_identities": {"config": run_config}}},
        raise_on_error=False,
    )


def _customers(tmp_path) -> int:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(
            "select count(distinct customer_id) from identity.customer_map"
        ).fetchone()[0]
    finally:
        con.close()


def test_config_file_in_run_config_changes_who_is_merged(tmp_path):
    _warehouse_with_two_contacts_on_one_address(tmp_path / "warehouse.duckdb")
    assert _materialize(tmp_path, {}).success
    assert _customers(tmp_path) == 1  # defaults: one email key, one customer

    settings = tmp_path / "identity.yml"
    settings.write_text("blocked_emails:\n  - orders@bakery.example.org\n", encoding="utf-8")
    result = _materialize(tmp_path, {"config_file": str(settings)})
    assert result.success
    assert _customers(tmp_path) == 2  # the file's blocked value no longer links them
    blocked = result.asset_materializations_for_node("resolve_identities")
    golden = next(
        m for m in blocked if m.asset_key == dg.AssetKey(["identity", "golden_customers"])
    )
    assert golden.metadata["blocked_value_records"].value == 2


def test_bad_config_file_fails_the_run_naming_the_file_and_key(tmp_path):
    _warehouse_with_two_contacts_on_one_address(tmp_path / "warehouse.duckdb")
    settings = tmp_path / "identity.toml"
    settings.write_text("max_emails_per_customr = 3\n", encoding="utf-8")
    result = _materialize(tmp_path, {"config_file": str(settings)})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert str(settings) in message and "max_emails_per_customr" in message


@pytest.mark.parametrize("missing", ["nowhere.yml"])
def test_missing_config_file_fails_with_its_path(tmp_path, missing):
    _warehouse_with_two_contacts_on_one_address(tmp_path / "warehouse.duckdb")
    result = _materialize(tmp_path, {"config_file": str(tmp_path / missing)})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert missing in str(failure.event_specific_data.error)


def test_a_wrong_setting_or_override_fails_at_once_without_a_retry(tmp_path):
    """A retry cannot fix a file: the step fails once, naming the file, line and column,
    rather than waiting for the retry policy and failing again."""
    _warehouse_with_two_contacts_on_one_address(tmp_path / "warehouse.duckdb")
    overrides = tmp_path / "identity_overrides.csv"
    overrides.write_text(
        "override_id,kind,record_a,record_b,value_kind,value_sha256,value_masked,author,reason,"
        "created_at\nov_1,merge,email:ct_1,email:ct_2,,,,steward,same bakery,2026-10-01\n",
        encoding="utf-8",
    )
    settings = tmp_path / "identity.yml"
    settings.write_text("max_block_size: -1\n", encoding="utf-8")
    for run_config, named in (
        ({"overrides_file": str(overrides)}, f"{overrides} line 2, column kind"),
        ({"config_file": str(settings)}, f"{settings}"),
    ):
        result = _materialize(tmp_path, run_config)
        assert not result.success
        events = [e.event_type_value for e in result.all_events]
        assert events.count("STEP_FAILURE") == 1 and "STEP_UP_FOR_RETRY" not in events
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert named in str(failure.event_specific_data.error)


def _identity_mode(result: dg.ExecuteInProcessResult) -> str:
    events = result.asset_materializations_for_node("resolve_identities")
    golden = next(m for m in events if m.asset_key == dg.AssetKey(["identity", "golden_customers"]))
    return golden.metadata["identity_mode"].value


def test_nightly_runs_are_incremental_until_full_identity_or_a_config_change(tmp_path):
    _warehouse_with_two_contacts_on_one_address(tmp_path / "warehouse.duckdb")
    assert _identity_mode(_materialize(tmp_path, {})) == "full"  # nothing to build on
    assert _identity_mode(_materialize(tmp_path, {})) == "incremental"
    # `cdp run --full-identity` sets this run config
    assert _identity_mode(_materialize(tmp_path, {"full_identity": True})) == "full"
    settings = tmp_path / "identity.yml"
    settings.write_text("max_block_size: 50\n", encoding="utf-8")
    # other settings than the kept model's: a full run, never a stale model
    assert _identity_mode(_materialize(tmp_path, {"config_file": str(settings)})) == "full"
