"""The sensor and the nightly job cover the customer-experience folders (issue 12)."""

from __future__ import annotations

import dagster as dg

from orchestration.automation import landing_fingerprints, pipeline_job
from orchestration.definitions import defs


def test_a_delivery_to_the_new_folders_changes_its_days_fingerprint(tmp_path):
    day = tmp_path / "email" / "contacts" / "dt=2026-10-01"
    day.mkdir(parents=True)
    (day / "part-0000.csv").write_text("x\n")
    before = landing_fingerprints(tmp_path)
    for folder in ("support/tickets", "surveys/responses"):
        delivered = tmp_path / folder / "dt=2026-10-01"
        delivered.mkdir(parents=True)
        (delivered / "part-0000.csv").write_text("x\n")
        after = landing_fingerprints(tmp_path)
        assert after["2026-10-01"] != before["2026-10-01"], folder
        before = after
    new_day = tmp_path / "surveys" / "responses" / "dt=2026-10-02"
    new_day.mkdir()
    (new_day / "part-0000.csv").write_text("x\n")
    assert "2026-10-02" in landing_fingerprints(tmp_path)


def test_the_nightly_job_loads_both_tables_and_builds_their_marts():
    job = defs.resolve_job_def(pipeline_job.name)
    keys = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert {
        "raw/support_tickets",
        "raw/survey_responses",
        "staging/stg_support__tickets",
        "staging/stg_surveys__responses",
        "marts/fct_support_tickets",
        "marts/nps_by_segment",
        "marts/support_by_segment",
        "marts/nps_trend",
        "marts/nps_monthly",
    } <= keys
    graph = defs.resolve_asset_graph()
    identity_inputs = {
        parent.to_user_string()
        for key in graph.get_all_asset_keys()
        if key.path[0] == "identity"
        for parent in graph.get(key).parent_keys
    }
    assert {"staging/stg_support__tickets", "staging/stg_surveys__responses"} <= identity_inputs
    assert (
        dg.AssetKey(["landing", "support", "tickets"])
        in graph.get(dg.AssetKey(["raw", "support_tickets"])).parent_keys
    )
