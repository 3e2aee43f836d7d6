"""Data Docs that render fully offline and are written incrementally, one validation at a time.

GX 1.24's stock Data Docs pull Bootstrap, jQuery, Vega and Font Awesome from public CDNs,
and its index lists validations client-side with bootstrap-table, so offline it comes out
*empty*. The warehouse runs offline, so pages are rendered with templates that drop the
CDN tags and inline a small stylesheet (GX's plugin directory cannot do this: its custom
views are consulted after the built-in templates).

It is also written by us rather than by GX's UpdateDataDocsAction, for speed: that action
builds a new SiteBuilder per validation (recompiling every Jinja template), copies 4 MB of
static assets, re-renders the suite page, and rebuilds the index by re-reading every stored
validation result (up to the index limit) from disk. Here the page views are built once
per process, each validation renders only its own page (same path layout as GX's
HtmlSiteStore), suite pages are rendered once per process, and the index is a plain
server-side table rebuilt from a small JSON-lines manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from quality.gx_import import import_great_expectations

import_great_expectations()  # before any other GX import (quality/gx_import.py)

from great_expectations import __version__ as gx_version  # noqa: E402
from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.render.renderer import (  # noqa: E402
    ExpectationSuitePageRenderer,
    ValidationResultsPageRenderer,
)
from great_expectations.render.view import DefaultJinjaPageView  # noqa: E402
from jinja2 import ChoiceLoader, DictLoader, Environment, select_autoescape  # noqa: E402

#: The index lists at most this many recent validations; the manifest keeps twice as many.
INDEX_VALIDATION_LIMIT = 500
MANIFEST_NAME = "validations_index.jsonl"
#: Fingerprint of the suite each expectation-suite page was rendered from.
SUITE_PAGES_NAME = "suite_pages.json"

OFFLINE_STYLES = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #212529; background: #fff; font-size: 14px; line-height: 1.45; }
a { color: #0b5cad; }
nav.navbar { background: #f3f4f6; border-bottom: 1px solid #d9dce1; padding: 8px 24px; }
nav.navbar img { height: 28px; vertical-align: middle; }
.container-fluid { padding: 16px 28px; }
.row { display: flex; flex-wrap: wrap; gap: 24px; }
.col-md-2 { flex: 0 0 220px; } .col-md-10 { flex: 1 1 600px; min-width: 0; }
.ge-breadcrumbs, .breadcrumb { list-style: none; padding: 0; display: flex; gap: 8px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; }
th, td { border: 1px solid #d9dce1; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
tr.clickable-row:hover { background: #eef4fb; }
.card { border: 1px solid #d9dce1; border-radius: 4px; margin-bottom: 16px; }
.card-header { background: #f3f4f6; padding: 6px 12px; border-bottom: 1px solid #d9dce1; }
.card-body { padding: 8px 12px; }
.text-danger { color: #b42318; } .text-success { color: #067647; }
.badge { border-radius: 3px; padding: 1px 5px; background: #eceff3; }
.sticky { position: sticky; top: 0; }
.d-none:not(.d-md-inline-flex) { display: none; }
.navbar-title { font-size: 18px; font-weight: 600; color: #212529; text-decoration: none; }
/* Font Awesome comes from a CDN; draw the few icons GX uses with plain characters. */
.fa-check-circle::before { content: "\\2714"; color: #067647; font-style: normal; }
.fa-times::before { content: "\\2716"; color: #b42318; font-style: normal; }
.fa-exclamation-triangle::before { content: "\\26A0"; color: #b54708; font-style: normal; }
.fa-question-circle::before { content: "?"; font-style: normal; }
.fa-comment::before { content: "\\2139"; font-style: normal; }
footer { display: none; }
code, pre { background: #f6f8fa; padding: 1px 4px; border-radius: 3px; }
.ge-offline-note { color: #667085; font-style: italic; }
"""

_HEAD = """
    <meta name="viewport" content="width=device-width, initial-scale=1.0" />
    <meta charset="UTF-8">
    <style>{% include 'data_docs_default_styles.css' %}</style>
    <style>{% include 'data_docs_custom_styles.css' ignore missing %}</style>
    <style>{% include 'offline_styles.css' %}</style>
    {% include 'favicon.j2' %}
"""

_BODY = """
    {% include 'top_navbar.j2' %}
    <div class="container-fluid pt-4 pb-4 pl-5 pr-5">
      <div class="row">
        {% include 'sidebar.j2' %}
        <div class="col-md-10 col-lg-10 col-xs-12 pl-md-4 pr-md-3">
        {% for section in sections %}
          {% set section_loop = loop -%}
          {% include 'section.j2' %}
        {% endfor %}
        </div>
      </div>
    </div>
"""

OFFLINE_TEMPLATES: dict[str, str] = {
    "offline_styles.css": OFFLINE_STYLES,
    "js_script_imports.j2": "",
    # The favicon is the only static asset the pages used; not worth copying 4 MB of them.
    "favicon.j2": "",
    "page.j2": (
        "<!DOCTYPE html>\n<html>\n  <head>\n    <title>Data quality: validation results</title>"
        + _HEAD
        + "  </head>\n  <body>"
        + _BODY
        + "  </body>\n</html>\n"
    ),
    # The stock navbar loads GX's logo from S3 (tagged with the data context id); a local
    # title does the same job without a network request.
    "top_navbar.j2": """
{% if expectation_suite_name %}{% set dots = expectation_suite_name.count(".") %}{% else %}{% set dots = 0 %}{% endif %}
{% if "ValidationResults" in renderer_type or "ProfilingResults" in renderer_type %}
  {% set home_url = ((dots + 4) * "../") + "index.html" %}
{% elif "ExpectationSuite" in renderer_type %}
  {% set home_url = ((dots + 1) * "../") + "index.html" %}
{% else %}
  {% set home_url = "index.html" %}
{% endif %}
<nav class="navbar">
  <a class="navbar-title" href="{{ home_url }}">CDP data quality</a>
  {% if page_title %}
  <ol class="ge-breadcrumbs breadcrumb d-md-inline-flex">
    <li><a href="{{ home_url }}">Home</a></li><li>&rsaquo;</li><li>{{ page_title }}</li>
  </ol>
  {% endif %}
</nav>
""",
    # Charts need Vega from a CDN; the numbers they plot are also in the tables.
    "graph.j2": (
        "{% include 'content_block_header.j2' %}"
        '<p class="ge-offline-note">Chart omitted in the offline Data Docs.</p>'
    ),
}


class OfflinePageView(DefaultJinjaPageView):
    """Suite and validation pages without CDN assets."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.loader = ChoiceLoader([DictLoader(OFFLINE_TEMPLATES), self.env.loader])


@cache
def _page_view() -> OfflinePageView:
    """One view per process: its Jinja environment compiles each template once."""
    return OfflinePageView()


INDEX_TEMPLATE = """<!DOCTYPE html>
<html>
<head>
  <meta charset="UTF-8"><meta name="viewport" content="width=device-width, initial-scale=1.0">
  <title>Data quality: Data Docs</title>
  <style>{{ styles | safe }}</style>
</head>
<body>
<nav class="navbar"><a class="navbar-title" href="index.html">CDP data quality</a></nav>
<div class="container-fluid">
  <h2>Validation results</h2>
  <p>{{ validations | length }} most recent validations, newest first{% if failed %};
     <span class="text-danger">{{ failed }} failed</span>{% endif %}.</p>
  <table class="table table-sm">
    <thead><tr><th>Status</th><th>Run time (UTC)</th><th>Scope</th><th>Table</th>
      <th>Expectation suite</th><th>Severity</th><th>Failed partitions</th></tr></thead>
    <tbody>
    {% for v in validations %}
      <tr class="clickable-row">
        <td><a href="{{ v.page }}"><i class="{{ 'fa-check-circle text-success' if v.success else 'fa-times text-danger' }}"></i>
          {{ 'passed' if v.success else 'failed' }}</a></td>
        <td><a href="{{ v.page }}">{{ v.run_time }}</a></td>
        <td>{{ v.scope }}</td>
        <td>{{ v.table }}</td>
        <td><a href="{{ v.page }}">{{ v.suite }}</a> (<a href="{{ v.suite_page }}">expectations</a>)</td>
        <td>{{ v.severity }}</td>
        <td>{{ v.failed_partitions | join(", ") }}</td>
      </tr>
    {% else %}
      <tr><td colspan="7">Nothing recorded yet.</td></tr>
    {% endfor %}
    </tbody>
  </table>
  <h2>Expectation suites</h2>
  <table class="table table-sm">
    <thead><tr><th>Expectation suite</th></tr></thead>
    <tbody>
    {% for suite, page in suites %}
      <tr class="clickable-row"><td><a href="{{ page }}">{{ suite }}</a></td></tr>
    {% endfor %}
    </tbody>
  </table>
</div>
</body>
</html>
"""


@cache
def _index_template():
    return Environment(autoescape=select_autoescape(default=True)).from_string(INDEX_TEMPLATE)


@dataclass(frozen=True)
class IndexEntry:
    """One validation as the index lists it (one line of the manifest)."""

    suite: str
    table: str
    severity: str
    scope: str
    success: bool
    run_time: str
    page: str
    suite_page: str
    failed_partitions: list[str]


class DataDocsSite:
    """The Data Docs folder of one warehouse. Callers serialise writes (QualityContext.exclusive)."""

    def __init__(self, docs_dir: Path, store_dir: Path) -> None:
        self.docs_dir = docs_dir
        self.manifest_path = store_dir / MANIFEST_NAME
        self.suite_pages_path = store_dir / SUITE_PAGES_NAME
        self._suite_pages_written: set[str] = set()

    def validation_page_path(
        self, suite_name: str, run_id: RunIdentifier, batch_identifier: str
    ) -> Path:
        """Where GX's HtmlSiteStore would put this validation's page."""
        run_name, run_time = run_id.to_tuple()
        return self.docs_dir.joinpath(
            "validations", *suite_name.split("."), run_name, run_time, f"{batch_identifier}.html"
        )

    def suite_page_path(self, suite_name: str) -> Path:
        return self.docs_dir.joinpath("expectations", *suite_name.split(".")).with_suffix(".html")

    def write_suite_page(self, suite: ExpectationSuite) -> Path:
        """Render a suite's page when its definition changed (suites are defined in code).

        Checked once per process: the page on disk is kept when the fingerprint recorded
        with it (the suite's expectations, the GX version and these templates) is the
        suite's, so a nightly run does not re-render every suite's page."""
        path = self.suite_page_path(suite.name)
        if suite.name in self._suite_pages_written and path.exists():
            return path
        fingerprint = _suite_fingerprint(suite)
        recorded = read_json_object(self.suite_pages_path)
        if recorded.get(suite.name) != fingerprint or not path.exists():
            document = ExpectationSuitePageRenderer().render(suite)
            write_atomically(path, _page_view().render(document, show_how_to_buttons=False))
            recorded[suite.name] = fingerprint
            write_atomically(self.suite_pages_path, json.dumps(recorded, indent=1, sort_keys=True))
        self._suite_pages_written.add(suite.name)
        return path

    def write_validation_page(self, result: ExpectationSuiteValidationResult, path: Path) -> Path:
        document = ValidationResultsPageRenderer().render(result)
        write_atomically(path, _page_view().render(document, show_how_to_buttons=False))
        return path

    def record_and_write_index(self, entry: IndexEntry) -> Path:
        """Append `entry` to the manifest and rewrite index.html from its newest lines."""
        entries = self._read_manifest()
        entries.append(entry)
        if len(entries) > 2 * INDEX_VALIDATION_LIMIT:
            entries = entries[-INDEX_VALIDATION_LIMIT:]
            write_atomically(
                self.manifest_path, "".join(json.dumps(asdict(e)) + "\n" for e in entries)
            )
        else:
            self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.manifest_path, "a", encoding="utf-8") as manifest:
                manifest.write(json.dumps(asdict(entry)) + "\n")
        return self._write_index(entries[-INDEX_VALIDATION_LIMIT:])

    def _read_manifest(self) -> list[IndexEntry]:
        if not self.manifest_path.exists():
            return []
        entries = []
        for line in self.manifest_path.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(IndexEntry(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a line cut short by a crash: the index just loses that row
        return entries

    def _write_index(self, entries: list[IndexEntry]) -> Path:
        validations = entries[::-1]  # the manifest is in publishing order: newest last
        suites = sorted({(e.suite, e.suite_page) for e in entries})
        html = _index_template().render(
            styles=OFFLINE_STYLES,
            validations=validations,
            failed=sum(not e.success for e in validations),
            suites=suites,
        )
        return write_atomically(self.docs_dir / "index.html", html)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.docs_dir).as_posix()


def _suite_fingerprint(suite: ExpectationSuite) -> str:
    """What a suite page is rendered from, without the ids GX assigns in each process."""
    expectations = []
    for expectation in suite.expectations:
        config = expectation.configuration.to_json_dict()
        config.pop("id", None)
        expectations.append(config)
    content = {
        "name": suite.name,
        "meta": suite.meta,
        "expectations": expectations,
        "gx": gx_version,
        "templates": OFFLINE_TEMPLATES,
    }
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_json_object(path: Path) -> dict:
    """A JSON object file's contents; {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_time_label(run_id: RunIdentifier) -> str:
    run_time: datetime = run_id.run_time
    return run_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def write_atomically(path: Path, text: str) -> Path:
    """Readers (a browser, another step process) never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
