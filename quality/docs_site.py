"""Data Docs views that render fully offline.

GX 1.24's stock Data Docs pull Bootstrap, jQuery, bootstrap-table, Vega and Font Awesome
from public CDNs (unpkg, jsdelivr, cdnjs, code.jquery.com). Without network access the
index page is worse than unstyled: its list of validations is drawn client-side by
bootstrap-table, so it comes out *empty*. The warehouse runs offline, so these views
swap in templates that render every table server-side, drop the CDN tags, and inline
a small stylesheet. GX's plugin directory cannot do this (its custom views are
consulted after the built-in templates), hence view classes wired in through the site
config (see quality/gx_context.py). Templates live here as strings so they ship with
the Python package without package-data configuration.
"""

from __future__ import annotations

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import ChoiceLoader, DictLoader

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
    "page.j2": (
        "<!DOCTYPE html>\n<html>\n  <head>\n    <title>Data quality: validation results</title>"
        + _HEAD
        + "  </head>\n  <body>"
        + _BODY
        + "  </body>\n</html>\n"
    ),
    "index_page.j2": (
        "<!DOCTYPE html>\n<html>\n  <head>\n    <title>Data quality: Data Docs</title>"
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
    # Server-side rendering of GX's bootstrap-table blocks (index of validations and
    # suites): same columns, rows sorted like the JS table would, first cell is the link.
    "bootstrap_table.j2": """
{% include 'content_block_header.j2' %}
{% set table_options = content_block.get("table_options", {}) %}
{% set table_columns = content_block["table_columns"] %}
{% set rows = content_block["table_data"] | render_bootstrap_table_data %}
{% set sort = namespace(key=table_options.get("sortName")) %}
{% for column in table_columns %}
  {% if column["field"] == sort.key and column.get("sortName") %}{% set sort.key = column["sortName"] %}{% endif %}
{% endfor %}
{% if sort.key %}
  {% set rows = rows | sort(attribute=sort.key, reverse=(table_options.get("sortOrder") == "desc")) %}
{% endif %}
<table class="table table-sm">
  {% if content_block.get("title_row") %}
  <tr><th colspan="{{ table_columns | length }}">{{ content_block["title_row"] | render_content_block }}</th></tr>
  {% endif %}
  <thead><tr>{% for column in table_columns %}<th>{{ column["title"] }}</th>{% endfor %}</tr></thead>
  <tbody>
  {% for row in rows %}
    <tr class="clickable-row">
    {% for column in table_columns %}
      {% set cell = row.get(column["field"], "") %}
      <td>{% if (loop.first or column["field"] == "run_time") and row.get("_table_row_link_path") and "<a " not in (cell | string) %}<a href="{{ row["_table_row_link_path"] }}">{{ cell | safe }}</a>{% else %}{{ cell | safe }}{% endif %}</td>
    {% endfor %}
    </tr>
  {% else %}
    <tr><td colspan="{{ table_columns | length }}">Nothing recorded yet.</td></tr>
  {% endfor %}
  </tbody>
</table>
""",
}


def _prepend_offline_templates(view: DefaultJinjaPageView) -> None:
    view.env.loader = ChoiceLoader([DictLoader(OFFLINE_TEMPLATES), view.env.loader])


class OfflinePageView(DefaultJinjaPageView):
    """Suite and validation pages without CDN assets."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        _prepend_offline_templates(self)


class OfflineIndexPageView(DefaultJinjaIndexPageView):
    """The site index with its tables rendered server-side."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        _prepend_offline_templates(self)
