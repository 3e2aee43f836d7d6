"""The overview page: what the marts say about the customers, on one offline HTML page.

Reads only aggregate marts (segment sizes, revenue, cohorts, MRR movements, NPS, model
status and score distributions), never a row about one person, so the page can be shared
like a report. `write_overview` replaces the page atomically next to the Data Docs.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import duckdb

from overview.charts import bar_chart, heatmap, stacked_columns

SEGMENT_TYPES = (
    ("lifecycle_stage", "By lifecycle stage"),
    ("rfm_segment", "By RFM segment"),
    ("churn_risk", "By churn risk"),
)

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #111827;
       margin: 0; background: #f3f4f6; }
header { background: #111827; color: #f9fafb; padding: 16px 28px; }
header h1 { margin: 0; font-size: 20px; } header p { margin: 4px 0 0; color: #d1d5db; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 18px;
       padding: 18px 28px; }
section { background: #fff; border-radius: 8px; padding: 14px 18px;
          box-shadow: 0 1px 2px rgba(0,0,0,.08); }
section h2 { font-size: 15px; margin: 0 0 10px; }
.kpis { display: flex; gap: 28px; flex-wrap: wrap; grid-column: 1 / -1; }
.kpi b { display: block; font-size: 22px; } .kpi span { color: #6b7280; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #374151; }
table { border-collapse: collapse; font-size: 12px; } td, th { padding: 3px 10px 3px 0; text-align: left; }
th { color: #6b7280; font-weight: 600; } td.num { text-align: right; }
.empty, .note { color: #6b7280; font-style: italic; }
"""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params=()) -> list[tuple]:
    try:
        return con.execute(sql, list(params)).fetchall()
    except duckdb.Error:
        return []  # a mart this build does not have: its section says so


def _usd(cents: float | None) -> float:
    return (cents or 0) / 100.0


def _section(title: str, body: str, note: str = "") -> str:
    note_html = f'<p class="note">{escape(note)}</p>' if note else ""
    return f"<section><h2>{escape(title)}</h2>{body}{note_html}</section>"


def _kpis(con) -> str:
    customers = _rows(con, "select count(*) from marts.dim_customers")
    revenue = _rows(con, "select sum(lifetime_revenue_usd_cents) from marts.customer_360")
    mrr = _rows(con, "select sum(current_mrr_usd_cents) from marts.customer_360")
    nps = _rows(con, "select nps, responses from marts.nps_by_segment where segment_type = 'all'")

    def first(rows):  # the single value of a one-row query, None when absent or null
        return rows[0][0] if rows and rows[0] and rows[0][0] is not None else None

    n_customers, total_revenue, total_mrr = first(customers), first(revenue), first(mrr)
    score = first(nps)
    items = [
        ("golden customers", "-" if n_customers is None else f"{n_customers:,}"),
        ("lifetime revenue", "-" if total_revenue is None else f"${_usd(total_revenue):,.0f}"),
        ("current MRR", "-" if total_mrr is None else f"${_usd(total_mrr):,.0f}"),
        ("NPS", "-" if score is None else f"{score:+.0f} ({nps[0][1] or 0:,} responses)"),
    ]
    cells = "".join(
        f'<div class="kpi"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for k, v in items
    )
    return f'<section class="kpis">{cells}</section>'


def _segments(con) -> list[str]:
    sections = []
    for segment_type, title in SEGMENT_TYPES:
        rows = _rows(
            con,
            "select segment_name, customers, revenue_usd_cents, average_clv_usd_cents "
            "from marts.segment_summary where segment_type = ? order by customers desc",
            [segment_type],
        )
        sizes = bar_chart([(name, n) for name, n, _, _ in rows])
        revenue = bar_chart([(name, _usd(r)) for name, _, r, _ in rows], "$", colour="#16a34a")
        clv = bar_chart([(name, _usd(c)) for name, _, _, c in rows], "$", colour="#7c3aed")
        sections.append(
            _section(
                title,
                f"<h3>Customers</h3>{sizes}<h3>Revenue (USD)</h3>{revenue}<h3>Average historical CLV (USD)</h3>{clv}",
            )
        )
    return sections


def _cohorts(con) -> str:
    rows = _rows(
        con,
        "select cohort_month, months_since_first_purchase, retention_rate, cohort_customers "
        "from marts.retention_cohorts order by cohort_month, months_since_first_purchase",
    )
    rows = [r for r in rows if r[1] is not None and r[1] <= 12]
    cohorts = sorted({r[0] for r in rows})[-12:]
    months = sorted({r[1] for r in rows})
    labels = {c: c.strftime("%Y-%m") for c in cohorts}
    values = {(labels[c], str(m)): rate for c, m, rate, _ in rows if c in labels}
    sizes = {labels[c]: n for c, m, _, n in rows if c in labels and m == 0}
    row_labels = [f"{labels[c]}" for c in cohorts]
    grid = heatmap(row_labels, [str(m) for m in months], values)
    note = "Share of each first-purchase cohort active n months later; cohort sizes: " + (
        ", ".join(f"{k} {v:,}" for k, v in sizes.items()) or "none"
    )
    return _section("Retention by first-purchase cohort", grid, note)


def _mrr(con) -> str:
    rows = _rows(
        con,
        "select strftime(month_start, '%Y-%m') as month, movement_type, "
        "sum(mrr_change_usd_cents) from marts.fct_mrr_movements "
        "where month_start >= (select max(month_start) from marts.fct_mrr_movements) - interval 11 month "
        "group by all order by 1",
    )
    periods = sorted({r[0] for r in rows})
    series: dict[str, dict[str, float]] = {}
    for month, movement, cents in rows:
        series.setdefault(movement, {})[month] = _usd(cents)
    return _section(
        "MRR movements, last 12 months (USD)",
        stacked_columns(periods, series, "$"),
        "New, expansion and reactivation add MRR; contraction and churn remove it.",
    )


def _nps(con) -> str:
    monthly = _rows(
        con,
        "select strftime(submitted_month, '%Y-%m'), nps, responses from marts.nps_monthly "
        "order by submitted_month",
    )
    by_segment = _rows(
        con,
        "select segment_name, nps from marts.nps_by_segment "
        "where segment_type = 'lifecycle_stage' order by nps desc",
    )
    body = (
        "<h3>By month</h3>"
        + bar_chart([(m, nps) for m, nps, _ in monthly], "", colour="#0891b2")
        + "<h3>By lifecycle stage</h3>"
        + bar_chart(by_segment, "", colour="#0891b2")
    )
    return _section("Net Promoter Score", body, "NPS = % promoters - % detractors (-100 to 100).")


def _predictions(con) -> str:
    models = _rows(
        con,
        "select model_name, status, coalesce(production_status, ''), auc, baseline_auc, "
        "coalesce(reason, '') from marts.model_performance where is_latest order by model_name",
    )
    table = ["<table><tr><th>model</th><th>status</th><th>AUC</th><th>baseline AUC</th></tr>"]
    for name, status, production, auc, baseline, _reason in models:
        shown = status + (f" ({production})" if production else "")
        table.append(
            f"<tr><td>{escape(name)}</td><td>{escape(shown)}</td>"
            f'<td class="num">{"" if auc is None else f"{auc:.3f}"}</td>'
            f'<td class="num">{"" if baseline is None else f"{baseline:.3f}"}</td></tr>'
        )
    table.append("</table>")
    churn = _rows(
        con,
        "select cast(floor(churn_probability * 10) as integer) as decile, count(*) "
        "from marts.customer_predictions where churn_probability is not null group by 1 order by 1",
    )
    products = _rows(
        con,
        "select coalesce(next_best_product, 'none yet'), count(*) from marts.customer_predictions "
        "group by 1 order by 2 desc limit 8",
    )
    churn_chart = bar_chart([(f"{10 * d}-{10 * d + 10}%", n) for d, n in churn], colour="#dc2626")
    body = (
        "".join(table)
        + "<h3>Customers by predicted churn probability</h3>"
        + churn_chart
        + "<h3>Next best product</h3>"
        + bar_chart(products, colour="#f59e0b")
    )
    note = (
        "Models train weekly on history; with too little history they report "
        "insufficient_history and score nothing (the demo's 14 days are not enough)."
        if any(status == "insufficient_history" for _, status, *_ in models)
        else ""
    )
    return _section("Predictions", body, note)


def render_overview(con: duckdb.DuckDBPyConnection, generated_at: datetime | None = None) -> str:
    """The whole page as one HTML string (inline CSS and SVG, no scripts)."""
    generated_at = generated_at or datetime.now(UTC)
    as_of = _rows(con, "select max(as_of_date) from marts.customer_segments")
    as_of_text = f"data as of {as_of[0][0]}" if as_of and as_of[0][0] else ""
    sections = [
        _kpis(con),
        *_segments(con),
        _cohorts(con),
        _mrr(con),
        _nps(con),
        _predictions(con),
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Customer overview</title>"
        f"<style>{STYLE}</style></head><body>"
        "<header><h1>Customer overview</h1>"
        f"<p>{escape(as_of_text)} · built {generated_at:%Y-%m-%d %H:%M} UTC from the published "
        "marts · aggregates only, no personal data</p></header>"
        f"<main>{''.join(sections)}</main></body></html>"
    )


def write_overview(con: duckdb.DuckDBPyConnection, folder: Path) -> Path:
    """Write `<folder>/index.html` (replaced atomically: a reader never sees half a page)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "index.html"
    staged = folder / f".index.html.{os.getpid()}.tmp"
    staged.write_text(render_overview(con), encoding="utf-8")
    os.replace(staged, target)
    return target
