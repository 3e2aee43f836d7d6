"""The short report `cdp run` prints: what landed, what was rejected, what was built."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from warehouse_engine.catalog import table_exists

# source table -> the staging model that deduplicates it
STAGING_FOR_RAW = {
    "email_contacts": "stg_email__contacts",
    "email_events": "stg_email__events",
    "billing_customers": "stg_billing__customers",
    "billing_invoices": "stg_billing__invoices",
    "billing_subscriptions": "stg_billing__subscriptions",
    "web_events": "stg_web__events",
    "support_tickets": "stg_support__tickets",
    "survey_responses": "stg_surveys__responses",
}


# source table -> the mart rows that represent its staging rows one to one
MART_FOR_RAW = {
    "email_contacts": "marts.customer_identity_map where source_system = 'email'",
    "email_events": "marts.fct_email_events",
    "billing_customers": "marts.customer_identity_map where source_system = 'billing'",
    "billing_invoices": "marts.fct_invoices",
    "support_tickets": "marts.fct_support_tickets",
}


def _count(con, relation: str) -> int | None:
    try:
        return con.execute(f"select count(*) from {relation}").fetchone()[0]
    except duckdb.Error:
        return None


def _fmt(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _erased_rows(con, table: str) -> int:
    """Rows of `raw.<table>` erased (privacy/erasure.py) from a load that is still the
    current one: an erased row of a file loaded again since is not counted, as the reload
    counted it as suppressed. Erasures logged before the per-load record existed count
    by their per-table total (`privacy.erasure_log.rows_per_table`)."""
    if not table_exists(con, "privacy.erasure_log"):
        return 0
    attributed = table_exists(con, "privacy.erased_raw_rows")
    source_table = table.split(".", 1)[1]
    (logged,) = con.execute(
        "select sum(coalesce(cast(json_extract(rows_per_table, ?) as bigint), 0)) "
        "from privacy.erasure_log"
        + (
            " where request_id not in (select request_id from privacy.erased_raw_rows)"
            if attributed
            else ""
        ),
        [f'$."{table}"'],
    ).fetchone()
    if not attributed:
        return int(logged or 0)
    (current,) = con.execute(
        "select sum(e.rows_erased) from privacy.erased_raw_rows e where e.source_table = ? "
        "and exists (select 1 from raw.load_audit a where a.source_table = e.source_table "
        "and a.dt = e.dt and a.source_file = e.source_file and a.loaded_at = e.loaded_at)",
        [source_table],
    ).fetchone()
    return int(logged or 0) + int(current or 0)


def reconciliation_rows(con) -> list[tuple]:
    """(table, landed, raw, rejected, staging, marts) per source table: where every row went."""
    rows = []
    for table, model in STAGING_FOR_RAW.items():
        landed = rejected = None
        try:
            landed, rejected, suppressed = con.execute(
                "select sum(rows_read), sum(rows_rejected), sum(coalesce(rows_suppressed, 0)) "
                "from raw.load_audit where source_table = ?",
                [table],
            ).fetchone()
            if landed is not None:
                # Rows about erased people: suppressed at load, or erased from raw since.
                landed -= (suppressed or 0) + _erased_rows(con, f"raw.{table}")
        except duckdb.Error:
            pass
        mart = MART_FOR_RAW.get(table)
        rows.append(
            (
                table,
                landed,
                _count(con, f"raw.{table}"),
                rejected,
                _count(con, f"staging.{model}"),
                _count(con, mart) if mart else None,
            )
        )
    return rows


def _short(path: Path) -> str:
    """`path` relative to the working directory when it lies under it, else as given.

    Only its folders are resolved, not the path itself: `bi_parquet` is a link that every
    publish moves to the new version, and the link is what a BI tool must be pointed at;
    the version folder it resolves to today is deleted by a later publish.
    """
    absolute = Path(os.path.abspath(path))
    try:
        return str((absolute.parent.resolve() / absolute.name).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_summary(
    result, elapsed_s: float, notes: list[str] = (), log_path: Path | None = None
) -> None:
    """Notes, the outcome, where every row went, and where to look next (~25 lines)."""
    warehouse = Path(os.environ["CDP_WAREHOUSE"])
    published = warehouse.parent / "bi.duckdb"
    for note in notes:
        print(note)
    print()
    outcome = "succeeded" if result.success else "FAILED"
    print(f"run {outcome} in {elapsed_s:.1f}s (run id {result.run_id[:8]})")
    if not result.success:
        print("The warehouse and the BI marts were left exactly as they were before this run.")
        if log_path is not None:
            print(f"full log   {_short(log_path)}")
        print(
            "UI         make ui  ->  http://127.0.0.1:3000 (the run's event log and failed checks)"
        )
        return
    if not warehouse.exists():
        return
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as exc:
        print(f"(could not open {warehouse} for the summary: {exc})")
        return
    with con:
        print(
            "rows landed (less erased people's) -> raw (+ rejected) -> staging (deduplicated) -> marts"
        )
        print(
            f"{'rows: source table':<24}{'landed':>10}{'raw':>10}{'rejected':>10}"
            f"{'staging':>10}{'marts':>10}"
        )
        reconciliation = reconciliation_rows(con)
        for table, landed, raw, rejected, staged, marts in reconciliation:
            print(
                f"{'  ' + table:<24}{_fmt(landed):>10}{_fmt(raw):>10}{_fmt(rejected):>10}"
                f"{_fmt(staged):>10}{_fmt(marts):>10}"
            )
        if any(
            landed is not None
            and raw is not None
            and rejected is not None
            and landed != raw + rejected
            for _, landed, raw, rejected, _, _ in reconciliation
        ):
            print("WARNING: rows landed != raw + rejected for some table; see raw.load_audit")
        records = _count(con, "identity.customer_map")
        customers = _count(con, "identity.golden_customers")
        refused = _count(con, "identity.refused_merges")
        if records is not None:
            print(
                f"identity: {_fmt(records)} source records -> {_fmt(customers)} golden customers"
                f" ({_fmt(refused)} merges refused by guards)"
            )
        marts = 0
        try:
            marts = con.execute(
                "select count(*) from information_schema.tables where table_schema = 'marts'"
            ).fetchone()[0]
        except duckdb.Error:
            pass
    bi = ""
    if published.exists():
        parquet = _short(warehouse.parent / "bi_parquet")
        bi = f"  (BI tools: {_short(published)} or {parquet}/, {marts} marts)"
    print(f"warehouse  {_short(warehouse)}{bi}")
    overview = warehouse.parent / "overview" / "index.html"
    if overview.exists():
        print(f"overview   {_short(overview)}")
    print(f"quality    {_short(warehouse.parent / 'quality_docs' / 'index.html')}")
    if log_path is not None:
        print(f"full log   {_short(log_path)}")
    print("UI         make ui  ->  http://127.0.0.1:3000")
