"""Identity QA for stewards: find an over-merge in a minute (after Amperity's Stitch QA).

Read from the identity.* tables after a run: how big customers are, the biggest ones and
what holds them together, the merges the guards nearly made, merges and splits per run
over time, and which rule linked how many records. Returned as figures (for asset
metadata) and as one offline HTML page written next to the Data Docs. Identifier values
are masked with `quality.masking` everywhere: the page is a static file with no login.

Each run also appends one row to `identity.quality_history` (customers, records, merges,
splits, refusals), so rates per run stay readable after the logs grow.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from identity.persistence import table_exists
from quality.masking import mask_text, mask_value

SCHEMA = "identity"
HISTORY_TABLE = "quality_history"
SIZE_BUCKETS = ((1, 1), (2, 2), (3, 3), (4, 5), (6, 10), (11, 20), (21, 50), (51, None))
TOP_CUSTOMERS = 10
TOP_REFUSED = 15
RUNS_SHOWN = 30
HISTORY_COLUMNS = {
    "run_at": "TIMESTAMP",
    "records": "BIGINT",
    "customers": "BIGINT",
    "largest_customer": "BIGINT",
    "merges": "BIGINT",
    "splits": "BIGINT",
    "refused_merges": "BIGINT",
    "steward_overrides": "BIGINT",
}


@dataclass
class IdentityQuality:
    run_at: datetime
    records: int
    customers: int
    size_distribution: pd.DataFrame  # size_bucket, customers, records
    largest: pd.DataFrame  # customer_id, n_records, sources, rules, weakest_link, identifiers
    refused: pd.DataFrame  # guard, customer_a, customer_b, match_rule, match_weight, detail
    refused_by_guard: pd.DataFrame  # guard, pairs
    runs: pd.DataFrame  # run_at, customers, merges, splits, merge_rate, split_rate
    by_rule: pd.DataFrame  # match_rule, records, share
    overrides: pd.DataFrame  # kind, n

    def to_metadata(self) -> dict[str, object]:
        """Markdown tables and numbers for Dagster asset metadata (values masked)."""
        largest = self.largest.iloc[0] if len(self.largest) else None
        return {
            "records": self.records,
            "customers": self.customers,
            "largest_customer_records": int(largest["n_records"]) if largest is not None else 0,
            "cluster_sizes": _markdown(self.size_distribution),
            "largest_customers": _markdown(self.largest),
            "near_merges_refused": _markdown(self.refused_by_guard),
            "strongest_refused_merges": _markdown(self.refused.head(TOP_REFUSED)),
            "merges_and_splits_per_run": _markdown(self.runs.tail(10)),
            "records_by_match_rule": _markdown(self.by_rule),
            "steward_overrides": _markdown(self.overrides),
        }


def _markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "none"
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = [
        "| " + " | ".join(_cell(v) for v in row) + " |"
        for row in frame.itertuples(index=False, name=None)
    ]
    return "\n".join([head, rule, *rows])


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:,.3g}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value).replace("|", "/")


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def _size_distribution(con) -> pd.DataFrame:
    cases = " ".join(
        f"when n >= {lo}" + (f" and n <= {hi}" if hi else "") + f" then {i}"
        for i, (lo, hi) in enumerate(SIZE_BUCKETS)
    )
    frame = _df(
        con,
        f"""
        select case {cases} end as bucket, count(*) as customers, sum(n) as records
        from (select customer_id, count(*) as n from {SCHEMA}.customer_map group by 1)
        group by 1 order by 1
        """,
    )
    labels = [f"{lo}" if lo == hi else f"{lo}-{hi}" if hi else f"{lo}+" for lo, hi in SIZE_BUCKETS]
    frame.insert(0, "size", frame.pop("bucket").map(lambda i: labels[int(i)]))
    frame["records"] = frame["records"].astype("int64")
    return frame


def _largest(con) -> pd.DataFrame:
    """The biggest customers and their evidence: records per source, links per rule, the
    weakest probabilistic link, and the identifiers most of their records share (masked)."""
    top = _df(
        con,
        f"""
        select customer_id, count(*) as n_records,
               string_agg(distinct source_system, ', ' order by source_system) as sources,
               min(case when match_rule = 'probabilistic' then match_weight end) as weakest_link
        from {SCHEMA}.customer_map group by customer_id
        order by n_records desc, customer_id limit {TOP_CUSTOMERS}
        """,
    )
    if top.empty:
        return top
    ids = top["customer_id"].tolist()
    rules = _df(
        con,
        f"""
        select customer_id, match_rule, count(*) as n from {SCHEMA}.customer_map
        where list_contains(?, customer_id) group by 1, 2 order by 1, 3 desc, 2
        """,
        [ids],
    )
    top["rules"] = top["customer_id"].map(
        rules.groupby("customer_id").apply(
            lambda g: ", ".join(f"{r} {n}" for r, n in zip(g["match_rule"], g["n"], strict=True)),
            include_groups=False,
        )
    )
    top["identifiers"] = ""
    if table_exists(con, "identity_records"):
        shared = _df(
            con,
            f"""
            with values_of as (
                select customer_id, 'email' as kind, email_key as value from {SCHEMA}.identity_records
                where list_contains(?, customer_id) and email_key is not null
                union all
                select customer_id, 'phone', phone_e164 from {SCHEMA}.identity_records
                where list_contains(?, customer_id) and phone_e164 is not null
                union all
                select customer_id, 'user_id', user_id from {SCHEMA}.identity_records
                where list_contains(?, customer_id) and user_id is not null
            )
            select customer_id, kind, value, count(*) as n,
                   row_number() over (partition by customer_id order by count(*) desc, kind, value) as k,
                   count(*) over (partition by customer_id, kind) as distinct_values
            from values_of group by 1, 2, 3
            qualify k <= 4
            """,
            [ids, ids, ids],
        )
        shared["shown"] = [
            f"{kind} {mask_value(value, kind) if kind != 'user_id' else mask_text(str(value))} x{n}"
            for kind, value, n in zip(shared["kind"], shared["value"], shared["n"], strict=True)
        ]
        top["identifiers"] = (
            top["customer_id"].map(shared.groupby("customer_id")["shown"].agg("; ".join)).fillna("")
        )
    return top[["customer_id", "n_records", "sources", "rules", "weakest_link", "identifiers"]]


def _refused(con) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not table_exists(con, "refused_merges"):
        empty = pd.DataFrame(columns=["guard", "pairs"])
        return pd.DataFrame(), empty
    by_guard = _df(
        con,
        f"select guard, count(*) as pairs from {SCHEMA}.refused_merges group by 1 order by 2 desc, 1",
    )
    top = _df(
        con,
        f"""
        select guard, customer_a, customer_b, record_a, record_b, match_rule, match_weight, detail
        from {SCHEMA}.refused_merges
        order by match_weight desc nulls last, guard, customer_a, customer_b
        limit {TOP_REFUSED}
        """,
    )
    top["detail"] = top["detail"].map(lambda d: mask_text(d) if isinstance(d, str) else d)
    return top, by_guard


def _runs(con) -> pd.DataFrame:
    parts = []
    if table_exists(con, "merge_log"):
        parts.append(
            f"select merged_at as run_at, count(*) as merges, 0 as splits "
            f"from {SCHEMA}.merge_log group by 1"
        )
    if table_exists(con, "split_log"):
        parts.append(
            f"select split_at, 0, count(distinct original_customer_id) "
            f"from {SCHEMA}.split_log group by 1"
        )
    if table_exists(con, HISTORY_TABLE):
        parts.append(f"select run_at, 0, 0 from {SCHEMA}.{HISTORY_TABLE}")
    if not parts:
        return pd.DataFrame(columns=["run_at", "customers", "merges", "splits"])
    customers = (
        f"left join (select run_at, max(customers) as customers from {SCHEMA}.{HISTORY_TABLE} "
        f"group by 1) h using (run_at)"
        if table_exists(con, HISTORY_TABLE)
        else ""
    )
    frame = _df(
        con,
        f"""
        select run_at, {"h.customers" if customers else "null::bigint as customers"},
               sum(merges)::bigint as merges, sum(splits)::bigint as splits
        from ({" union all ".join(parts)}) e {customers}
        group by all order by run_at desc limit {RUNS_SHOWN}
        """,
    ).sort_values("run_at")
    frame["merge_rate"] = frame["merges"] / frame["customers"]
    frame["split_rate"] = frame["splits"] / frame["customers"]
    return frame.reset_index(drop=True)


def _by_rule(con) -> pd.DataFrame:
    frame = _df(
        con,
        f"""
        select match_rule, count(*) as records from {SCHEMA}.customer_map
        group by 1 order by 2 desc, 1
        """,
    )
    frame["share"] = frame["records"] / max(int(frame["records"].sum()), 1)
    return frame


def _overrides(con) -> pd.DataFrame:
    if not table_exists(con, "overrides"):
        return pd.DataFrame(columns=["kind", "n"])
    from identity.overrides import active_overrides, read_table

    active = active_overrides(read_table(con))
    return active.groupby("kind").size().rename("n").reset_index()


def record_quality_history(con: duckdb.DuckDBPyConnection, run_at: datetime) -> None:
    """Append this run's figures to identity.quality_history (once per run_at)."""
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute(
        f"create table if not exists {SCHEMA}.{HISTORY_TABLE} ("
        + ", ".join(f"{c} {t}" for c, t in HISTORY_COLUMNS.items())
        + ")"
    )
    stamp = f"timestamp '{pd.Timestamp(run_at).isoformat(sep=' ')}'"

    def this_run(table: str, column: str, counted: str = "*") -> str:
        if not table_exists(con, table):
            return "0"
        return f"(select count({counted}) from {SCHEMA}.{table} where {column} = {stamp})"

    overrides = (
        f"(select count(*) from {SCHEMA}.overrides where kind <> 'revoke')"
        if table_exists(con, "overrides")
        else "0"
    )
    con.execute(
        f"""
        insert into {SCHEMA}.{HISTORY_TABLE}
        select ?::timestamp, count(*), count(distinct customer_id),
               (select max(n) from (select count(*) as n from {SCHEMA}.customer_map group by customer_id)),
               {this_run("merge_log", "merged_at")},
               {this_run("split_log", "split_at", "distinct original_customer_id")},
               (select count(*) from {SCHEMA}.refused_merges), {overrides}
        from {SCHEMA}.customer_map
        where not exists (select 1 from {SCHEMA}.{HISTORY_TABLE} where run_at = ?::timestamp)
        """,
        [run_at, run_at],
    )


def last_resolution_time(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """When identity was last resolved (the run time stamped on model_parameters)."""
    if not table_exists(con, "model_parameters"):
        return None
    value = con.execute(f"select max(resolved_at) from {SCHEMA}.model_parameters").fetchall()[0][0]
    return value


def identity_quality(
    con: duckdb.DuckDBPyConnection, run_at: datetime | None = None
) -> IdentityQuality:
    """Figures of the identity tables as they are now (run after resolve_identities)."""
    if not table_exists(con, "customer_map"):
        raise ValueError("identity.customer_map does not exist: run identity resolution first")
    run_at = run_at or last_resolution_time(con) or datetime.now()
    totals = con.execute(
        f"select count(*), count(distinct customer_id) from {SCHEMA}.customer_map"
    ).fetchall()[0]
    refused, by_guard = _refused(con)
    return IdentityQuality(
        run_at=run_at,
        records=int(totals[0]),
        customers=int(totals[1]),
        size_distribution=_size_distribution(con),
        largest=_largest(con),
        refused=refused,
        refused_by_guard=by_guard,
        runs=_runs(con),
        by_rule=_by_rule(con),
        overrides=_overrides(con),
    )


# --- the offline page ------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2733;max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d5dbe1}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #d5dbe1;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f1f4f7}.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#4a7dbf;height:.8rem;display:inline-block}.note{color:#5b6672;font-size:.85rem}
.kpi{display:inline-block;margin-right:2rem}.kpi b{font-size:1.4rem;display:block}
"""


def _table_html(frame: pd.DataFrame, bar_column: str | None = None) -> str:
    if frame is None or frame.empty:
        return '<p class="note">none</p>'
    peak = float(frame[bar_column].max()) if bar_column else 0.0
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    if bar_column:
        head += "<th></th>"
    rows = []
    for row in frame.itertuples(index=False, name=None):
        cells = []
        for value in row:
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{html.escape(_cell(value))}</td>")
        if bar_column:
            value = float(row[list(frame.columns).index(bar_column)] or 0)
            width = 0 if peak <= 0 else max(1, int(240 * value / peak))
            cells.append(f'<td><span class="bar" style="width:{width}px"></span></td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def render_quality_page(quality: IdentityQuality) -> str:
    """One self-contained HTML page (no scripts, no external resources)."""
    largest = quality.largest.iloc[0]["n_records"] if len(quality.largest) else 0
    sections = [
        (
            "Cluster sizes",
            "Customers by number of source records; a long tail is where over-merges hide.",
            _table_html(quality.size_distribution, "customers"),
        ),
        (
            "Largest customers and what holds them together",
            "Links per rule, the weakest probabilistic link (log2 Bayes factor) and the identifiers most "
            "of the customer's records share (masked). `cdp explain CUSTOMER_ID` shows every link; "
            "`cdp identity unlink A B --reason ...` separates two records for good.",
            _table_html(quality.largest, "n_records"),
        ),
        (
            "Near-merges the guards refused",
            "Pairs of customers kept apart, by guard.",
            _table_html(quality.refused_by_guard, "pairs") + _table_html(quality.refused),
        ),
        (
            "Merges and splits per run",
            "Rates are per customer of that run.",
            _table_html(quality.runs, "merges"),
        ),
        (
            "Records by match rule",
            "How each record joined its customer.",
            _table_html(quality.by_rule, "records"),
        ),
        (
            "Steward overrides in force",
            "`cdp identity overrides` lists them.",
            _table_html(quality.overrides),
        ),
    ]
    body = "".join(
        f'<h2>{html.escape(title)}</h2><p class="note">{html.escape(note)}</p>{content}'
        for title, note, content in sections
    )
    kpis = "".join(
        f'<span class="kpi"><b>{value:,}</b>{label}</span>'
        for label, value in (
            ("source records", quality.records),
            ("customers", quality.customers),
            ("records in the largest customer", int(largest)),
        )
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Identity quality</title>"
        f"<style>{_STYLE}</style></head><body>"
        f'<h1>Identity quality</h1><p class="note">As of the run at {quality.run_at:%Y-%m-%d %H:%M} UTC. '
        'Identifier values are masked. <a href="index.html">Data Docs</a></p>'
        f"<p>{kpis}</p>{body}</body></html>"
    )


def write_quality_page(quality: IdentityQuality, docs_dir: Path) -> Path:
    docs_dir.mkdir(parents=True, exist_ok=True)
    path = docs_dir / "identity_quality.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_quality_page(quality), encoding="utf-8")
    tmp.replace(path)
    return path
