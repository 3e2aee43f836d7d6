"""The overview page (overview/page.py) from the marts of the session's built warehouse:
offline, aggregates only, and drawn by headless Chromium with every chart in place."""

from __future__ import annotations

import duckdb
import pytest

from overview.page import write_overview
from tests.conftest import CHROMIUM_ARGS, require_chromium

pytestmark = [pytest.mark.ui]

SECTIONS = (
    "By lifecycle stage",
    "By RFM segment",
    "By churn risk",
    "Retention by first-purchase cohort",
    "MRR movements, last 12 months (USD)",
    "Net Promoter Score",
    "Predictions",
)


def test_overview_page_is_offline_aggregate_and_renders(built_warehouse, tmp_path, artifacts_dir):
    with duckdb.connect(str(built_warehouse.path), read_only=True) as con:
        page = write_overview(con, tmp_path / "overview")
        personal = con.execute(
            "select email, full_name, phone, first_name || ' ' || last_name from marts.customer_360"
        ).fetchall()
        segments = con.execute(
            "select segment_name, customers from marts.segment_summary "
            "where segment_type = 'lifecycle_stage'"
        ).fetchall()
    html = page.read_text(encoding="utf-8")

    # Offline: nothing to fetch, nothing to run.
    assert "<script" not in html and "http://" not in html and "https://" not in html
    for title in SECTIONS:
        assert title in html
    # The charts carry the marts' figures (each bar's tooltip: "<segment>: <customers>").
    assert segments
    for name, customers in segments:
        assert f"<title>{name}: {customers:,}</title>" in html
    # No personal data: not one name, email or phone of the 360 view is on the page.
    values = {v for row in personal for v in row if v and len(v) > 4}
    assert values, "the fixture warehouse has customers with names and emails"
    assert not [v for v in values if v in html]

    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    shot = artifacts_dir / "overview-page.png"
    requests = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        view = browser.new_page(viewport={"width": 1240, "height": 900})
        view.on("request", lambda r: requests.append(r.url))
        view.goto(page.as_uri(), wait_until="load")
        assert view.locator("section").count() == len(SECTIONS) + 1  # + the key figures
        charts = view.locator("svg.chart")
        assert charts.count() >= 12
        box = charts.first.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 40
        view.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert requests == [page.as_uri()], "the page fetched something besides itself"
    assert shot.stat().st_size > 30_000
