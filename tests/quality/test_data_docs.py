"""Data Docs: built on every run, offline-safe, and readable in headless Chromium."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from quality.runner import run_suite
from quality.suites import suite_by_name
from tests.conftest import CHROMIUM_ARGS, require_chromium

DAY = date(2026, 10, 1)
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def validated_docs(warehouse, insert_raw, docs_dir):
    invoice = (
        "in_1",
        "cus_1",
        None,
        "paid",
        "eur",
        -100,
        0,
        0,
        "pro",
        "2026-09-30 10:00:00",
        "2026-09-30 10:00:00",
        None,
    )
    insert_raw(warehouse, "raw.billing_invoices", DAY, [invoice])
    verdicts = [
        run_suite(warehouse, suite_by_name(name), docs_dir, DAY)
        for name in ("raw_billing_invoices__errors", "raw_billing_invoices__warnings")
    ]
    return docs_dir, verdicts


def test_index_and_validation_pages_exist_after_a_run(validated_docs):
    docs_dir, (errors, warnings) = validated_docs
    assert (docs_dir / "index.html").is_file()
    for verdict in (errors, warnings):
        assert verdict.docs_path.is_file() and verdict.docs_path.suffix == ".html"
        assert docs_dir in verdict.docs_path.parents
        assert "dt=2026-10-01" in str(verdict.docs_path)
    index = (docs_dir / "index.html").read_text()
    assert "raw_billing_invoices__errors" in index and "raw_billing_invoices__warnings" in index


def test_range_validation_is_one_page_listed_with_its_scope_and_failed_days(
    validated_docs, warehouse, insert_raw
):
    docs_dir, _ = validated_docs
    next_day = date(2026, 10, 2)
    clean = ("in_2", "cus_1", None, "paid", "eur", 100, 100, 0, "pro", "2026-10-01 10:00:00",
             "2026-10-01 10:00:00", None)  # fmt: skip
    insert_raw(warehouse, "raw.billing_invoices", next_day, [clean])
    verdict = run_suite(
        warehouse,
        suite_by_name("raw_billing_invoices__errors"),
        docs_dir,
        partition_range=(DAY, next_day),
    )
    assert verdict.docs_path.is_file() and "dt=2026-10-01..2026-10-02" in str(verdict.docs_path)
    assert "dt=2026-10-01..2026-10-02" in verdict.docs_path.read_text()  # run name on the page
    index = (docs_dir / "index.html").read_text()
    row = next(line for line in index.split("<tr") if "dt=2026-10-01..2026-10-02" in line)
    assert "failed" in row and "2026-10-01" in row.split("</td>")[-2]  # failed partitions cell
    # Three validations so far, newest first, each linking to its own page.
    assert index.count('class="clickable-row"') == 3 + 2  # + two suite links
    assert index.index("dt=2026-10-01..2026-10-02") < index.index("raw_billing_invoices__warnings")


def test_docs_load_nothing_from_the_network(validated_docs):
    """Stock GX pages pull Bootstrap/jQuery/logo from CDNs; ours must work air-gapped."""
    docs_dir, _ = validated_docs
    remote_resource = re.compile(
        r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["'](?:https?:)?//[^"']+"""
    )
    for page in docs_dir.rglob("*.html"):
        found = remote_resource.findall(page.read_text())
        assert not found, f"{page} loads remote resources: {found[:3]}"


@pytest.mark.ui
def test_index_renders_in_headless_chromium(validated_docs, artifacts_dir):
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    docs_dir, (errors, _) = validated_docs
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            remote_requests: list[str] = []
            page.on(
                "request",
                lambda r: remote_requests.append(r.url) if not r.url.startswith("file:") else None,
            )
            page.goto((docs_dir / "index.html").as_uri())
            page.screenshot(path=str(artifacts_dir / "quality_docs_index.png"), full_page=True)
            text = page.inner_text("body")
            assert "raw_billing_invoices__errors" in text
            assert "raw.billing_invoices" in text
            # The validation list is server-rendered: one row per validation run.
            assert page.locator("table tbody tr").count() >= 2

            page.goto(errors.docs_path.as_uri())
            page.screenshot(path=str(artifacts_dir / "quality_docs_validation.png"), full_page=True)
            assert "amount_due_cents" in page.inner_text("body")
            assert remote_requests == []
        finally:
            browser.close()


def test_a_suite_page_is_rendered_again_only_when_its_suite_changed(tmp_path):
    """Suites are defined in code: a new process keeps a page rendered from the same suite
    (no re-render every night) and renders it again when an expectation changed."""
    import great_expectations.expectations as gxe

    from quality.docs_site import DataDocsSite

    spec = suite_by_name("marts_fct_invoices__warnings")
    docs, store = tmp_path / "docs", tmp_path / "docs" / "_gx_store"
    page = DataDocsSite(docs, store).write_suite_page(spec.build())
    page.write_text("rendered by an earlier process")

    # Another process (a new site object), the same suite: the page stays as it is.
    assert DataDocsSite(docs, store).write_suite_page(spec.build()) == page
    assert page.read_text() == "rendered by an earlier process"

    changed = replace(
        spec,
        expectations=lambda: [
            *spec.expectations(),
            gxe.ExpectColumnValuesToNotBeNull(column="invoice_id"),
        ],
    )
    DataDocsSite(docs, store).write_suite_page(changed.build())
    assert "invoice_id" in page.read_text()
