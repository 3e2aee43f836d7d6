"""Build the BI copies of the marts (`bi.duckdb`, `bi_parquet/`) aside, rewriting only the
marts whose content changed since the copies in place; the caller swaps them in.

A mart's fingerprint is its column list and types, its row count and the sum of a hash of
every row (order-free, so a rebuilt but identical mart is unchanged). The fingerprint a
copy was written from is stored *inside* that copy - the DuckDB table's comment, the
Parquet file's key-value metadata - so it is swapped in atomically with the data and can
never describe another version of it, whatever was killed when.

Unchanged marts cost no rewrite in Parquet: the new folder hard-links yesterday's files
(a changed mart's file is written whole, and yesterday's goes with the old folder). The
new `bi.duckdb` starts as a file copy of yesterday's with only the changed tables
replaced (`reuse_duckdb_file`). A dropped table's blocks stay in that file as free space,
so an erased person's values could outlive the erasure there: each table's comment also
records the state of `privacy.erasure_log` the file was built under, and when an erasure
was carried out since (or the comments predate this record), the file is rebuilt from
scratch - as it is when more than half of it would be free blocks. Free blocks of a reused
file therefore only ever hold earlier versions of marts written after the last erasure.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

FINGERPRINT_KEY = "cdp_fingerprint"
COMMENT_PREFIX = "cdp-fingerprint:"
ERASURES_MARK = ";erasures:"
ERASURE_LOG = "privacy.erasure_log"
MAX_FREE_SHARE = 0.5


@dataclass
class PublishPlan:
    rows: dict[str, int] = field(default_factory=dict)
    rewritten_duckdb: list[str] = field(default_factory=list)
    rewritten_parquet: list[str] = field(default_factory=list)
    reused_duckdb_file: bool = False
    fresh_duckdb_reason: str = ""  # why bi.duckdb was written from scratch, if it was


def _literal(path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _mart_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [
        c
        for (c,) in con.execute(
            "select column_name from information_schema.columns where table_schema = 'marts' "
            "and table_name = ? and table_catalog = current_database() order by ordinal_position",
            [table],
        ).fetchall()
    ]


def _select_all(table: str, columns: list[str]) -> str:
    return f'select * from marts."{table}"'


def mart_fingerprints(
    con: duckdb.DuckDBPyConnection, tables: list[str], select_for=_select_all
) -> dict[str, tuple[str, int]]:
    """table -> (fingerprint, rows) of what is published of each `marts.<table>`."""
    result = {}
    for table in tables:
        columns = con.execute(
            "select string_agg(column_name || ' ' || data_type, ',' order by ordinal_position) "
            "from information_schema.columns where table_schema = 'marts' and table_name = ? "
            "and table_catalog = current_database()",
            [table],
        ).fetchall()[0][0]
        select = select_for(table, _mart_columns(con, table))
        rows, digest = con.execute(
            f"select count(*), coalesce(sum(hash(t)), 0) from ({select}) t"
        ).fetchall()[0]
        schema = hashlib.sha1(columns.encode("utf-8")).hexdigest()[:16]
        result[table] = (f"{rows}:{digest}:{schema}", int(rows))
    return result


def erasure_state(con: duckdb.DuckDBPyConnection) -> str:
    """The erasures carried out so far (count and latest time of `privacy.erasure_log`):
    a published file built under another state may hold an erased person in free blocks."""
    exists = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'privacy' and table_name = 'erasure_log'"
    ).fetchall()[0][0]
    if not exists:
        return "0"
    n, latest = con.execute(f"select count(*), max(erased_at) from {ERASURE_LOG}").fetchall()[0]
    return f"{n}@{latest}"


def _published_duckdb_fingerprints(path: Path) -> tuple[dict[str, str], set[str | None], float]:
    """(table -> fingerprint from its comment, erasure states the tables were written
    under, share of free blocks) of a published file."""
    if not path.exists():
        return {}, set(), 0.0
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            found = con.execute(
                "select table_name, comment from duckdb_tables() where schema_name = 'marts'"
            ).fetchall()
            size = con.execute("pragma database_size").df()
    except duckdb.Error:
        return {}, set(), 1.0
    total = int(size["total_blocks"].iloc[0]) or 1
    free = int(size["free_blocks"].iloc[0]) / total
    prints, states = {}, set()
    for table, comment in found:
        if not (isinstance(comment, str) and comment.startswith(COMMENT_PREFIX)):
            states.add(None)
            continue
        fingerprint, _, state = comment[len(COMMENT_PREFIX) :].partition(ERASURES_MARK)
        prints[table] = fingerprint
        states.add(state or None)
    return prints, states, free


def _parquet_fingerprint(con: duckdb.DuckDBPyConnection, path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        rows = con.execute(
            "select value::varchar from parquet_kv_metadata(?) where key::varchar = ?",
            [str(path), FINGERPRINT_KEY],
        ).fetchall()
    except duckdb.Error:
        return None
    return rows[0][0] if rows else None


def build_published_copies(
    con: duckdb.DuckDBPyConnection,
    published_file: Path,
    parquet_dir: Path,
    staging_file: Path,
    parquet_tmp: Path,
    select_for=_select_all,
    reuse_duckdb_file: bool = False,
) -> PublishPlan:
    """Write the marts of `con` into `staging_file` and `parquet_tmp`, reusing what the
    copies in place (`published_file`, `parquet_dir`) already hold unchanged."""
    tables = [
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'marts' and table_catalog = current_database() order by 1"
        ).fetchall()
    ]
    prints = mart_fingerprints(con, tables, select_for)
    plan = PublishPlan(rows={t: rows for t, (_, rows) in prints.items()})

    published, states, free_share = _published_duckdb_fingerprints(published_file)
    erasures = erasure_state(con)
    unchanged = {t for t in tables if published.get(t) == prints[t][0]}
    if not reuse_duckdb_file:
        plan.fresh_duckdb_reason = "reuse off"
    elif not unchanged:
        plan.fresh_duckdb_reason = "no unchanged mart"
    elif states != {erasures}:
        plan.fresh_duckdb_reason = "an erasure since the file was written"
    elif free_share > MAX_FREE_SHARE:
        plan.fresh_duckdb_reason = "more than half the file is free blocks"
    reuse = not plan.fresh_duckdb_reason
    if reuse:
        shutil.copyfile(published_file, staging_file)
    plan.reused_duckdb_file = reuse
    con.execute(f"attach {_literal(staging_file)} as published")
    try:
        con.execute("create schema if not exists published.marts")
        if reuse:
            for (table,) in con.execute(
                "select table_name from duckdb_tables() "
                "where database_name = 'published' and schema_name = 'marts'"
            ).fetchall():
                if table not in unchanged:
                    con.execute(f'drop table published.marts."{table}"')
        for table in tables:
            if reuse and table in unchanged:
                continue
            select = select_for(table, _mart_columns(con, table))
            con.execute(f'create table published.marts."{table}" as {select}')
            comment = (COMMENT_PREFIX + prints[table][0] + ERASURES_MARK + erasures).replace(
                "'", "''"
            )
            con.execute(f"comment on table published.marts.\"{table}\" is '{comment}'")
            plan.rewritten_duckdb.append(table)
    finally:
        con.execute("detach published")

    for table in tables:
        name = table + ".parquet"
        previous = parquet_dir / name
        if _parquet_fingerprint(con, previous) == prints[table][0]:
            try:
                os.link(previous, parquet_tmp / name)
            except OSError:
                shutil.copyfile(previous, parquet_tmp / name)
            continue
        fingerprint = prints[table][0].replace("'", "''")
        con.execute(
            f"copy ({select_for(table, _mart_columns(con, table))}) to {_literal(parquet_tmp / name)} "
            f"(format parquet, compression zstd, kv_metadata {{{FINGERPRINT_KEY}: '{fingerprint}'}})"
        )
        plan.rewritten_parquet.append(table)
    return plan
