"""Publish the marts for BI tools: Parquet files written once, and `bi.duckdb`, a small
DuckDB file of views over them. Built aside; the caller swaps them in.

One copy of the data, not two: every mart is written as Parquet into a new *version*
folder (`bi_parquet_versions/<id>/`), and `bi.duckdb` holds only views
(`marts.<table>` = `read_parquet('<absolute path of that version>/<table>.parquet')`).
A BI tool opens `bi.duckdb` with no setup from any working directory (the paths are
absolute: DuckDB resolves a relative path in a view against the reader's cwd, not the
database file), and `bi_parquet` is a relative symlink to the current version, for tools
that read Parquet. A version folder is never changed once a `bi.duckdb` refers to it, so
a reader sees one complete version whatever it queries, and the swap stays two renames:
`bi.duckdb`, then the `bi_parquet` link. The version before stays until the next publish
(a reader who opened yesterday's `bi.duckdb` just before the swap can still query it),
unless an erasure was carried out since it was written: then it goes at once.

Unchanged marts cost no rewrite: a mart's fingerprint (column list and types, row count
and the sum of a hash of every row, order-free) is stored in its Parquet file's key-value
metadata, so it travels with the data; a mart whose fingerprint equals the file in the
current version is hard-linked into the new version instead of written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

FINGERPRINT_KEY = "cdp_fingerprint"
COMMENT_PREFIX = "cdp-fingerprint:"
ERASURES_MARK = ";erasures:"
ERASURE_LOG = "privacy.erasure_log"


@dataclass
class PublishPlan:
    rows: dict[str, int] = field(default_factory=dict)
    rewritten_parquet: list[str] = field(default_factory=list)
    version: Path | None = None  # the folder of Parquet files the new bi.duckdb reads
    erasures: str = "0"  # the erasure state the version was built under
    keep_previous: bool = False  # may the version in place outlive the swap (for readers)?


def _literal(path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def versions_dir(parquet_link: Path) -> Path:
    """Where the versions of `bi_parquet` live: `bi_parquet_versions/` next to it."""
    return parquet_link.with_name(parquet_link.name + "_versions")


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
    a published version built under another state may hold an erased person."""
    exists = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'privacy' and table_name = 'erasure_log'"
    ).fetchall()[0][0]
    if not exists:
        return "0"
    n, latest = con.execute(f"select count(*), max(erased_at) from {ERASURE_LOG}").fetchall()[0]
    return f"{n}@{latest}"


def published_erasure_states(path: Path) -> set[str | None]:
    """The erasure states the marts of a published `bi.duckdb` were written under (from
    their comments; None for a mart without one, e.g. a file of an older layout)."""
    if not path.exists():
        return set()
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            comments = con.execute(
                "select comment from duckdb_tables() where schema_name = 'marts' "
                "union all select comment from duckdb_views() "
                "where schema_name = 'marts' and not internal"
            ).fetchall()
    except duckdb.Error:
        return {None}
    states: set[str | None] = set()
    for (comment,) in comments:
        if isinstance(comment, str) and comment.startswith(COMMENT_PREFIX):
            states.add(comment.partition(ERASURES_MARK)[2] or None)
        else:
            states.add(None)
    return states


def published_version(path: Path) -> Path | None:
    """The version folder a published `bi.duckdb`'s views read (None: none, or tables)."""
    if not path.exists():
        return None
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            found = con.execute(
                "select sql from duckdb_views() where schema_name = 'marts' and not internal "
                "limit 1"
            ).fetchall()
    except duckdb.Error:
        return None
    if not found or "read_parquet('" not in found[0][0]:
        return None
    file = found[0][0].split("read_parquet('", 1)[1].split("')", 1)[0].replace("''", "'")
    return Path(file).parent


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


def build_published_version(
    con: duckdb.DuckDBPyConnection,
    published_file: Path,
    parquet_link: Path,
    staging_file: Path,
    select_for=_select_all,
) -> PublishPlan:
    """Write the marts of `con` as a new Parquet version (reusing unchanged files of the
    version in place, `parquet_link`) and `staging_file`, a DuckDB file of views over it.
    Nothing a reader opens changes until `swap_in_published`."""
    tables = [
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'marts' and table_catalog = current_database() order by 1"
        ).fetchall()
    ]
    prints = mart_fingerprints(con, tables, select_for)
    erasures = erasure_state(con)
    plan = PublishPlan(rows={t: rows for t, (_, rows) in prints.items()}, erasures=erasures)
    plan.keep_previous = published_erasure_states(published_file) == {erasures}

    store = versions_dir(parquet_link)
    store.mkdir(mode=0o700, exist_ok=True)
    version_id = uuid.uuid4().hex
    building = store / f"{version_id}.tmp"
    building.mkdir(mode=0o700)
    for table in tables:
        name = table + ".parquet"
        previous = parquet_link / name
        if _parquet_fingerprint(con, previous) == prints[table][0]:
            try:
                os.link(previous, building / name)
            except OSError:
                shutil.copyfile(previous, building / name)
            continue
        fingerprint = prints[table][0].replace("'", "''")
        con.execute(
            f"copy ({select_for(table, _mart_columns(con, table))}) to "
            f"{_literal(building / name)} (format parquet, compression zstd, "
            f"kv_metadata {{{FINGERPRINT_KEY}: '{fingerprint}'}})"
        )
        plan.rewritten_parquet.append(table)
    # The views must name the folder's final path (a view is bound when it is created):
    # an unreferenced complete version is inert, and the next publish removes it.
    version = store / version_id
    os.replace(building, version)
    plan.version = version.resolve()

    con.execute(f"attach {_literal(staging_file)} as published")
    try:
        con.execute("create schema if not exists published.marts")
        for table in tables:
            path = plan.version / (table + ".parquet")
            con.execute(
                f'create view published.marts."{table}" as '
                f"select * from read_parquet({_literal(path)})"
            )
            comment = (COMMENT_PREFIX + prints[table][0] + ERASURES_MARK + erasures).replace(
                "'", "''"
            )
            con.execute(f"comment on view published.marts.\"{table}\" is '{comment}'")
    finally:
        con.execute("detach published")
    return plan


def swap_in_published(
    plan: PublishPlan, published_file: Path, parquet_link: Path, staging_file: Path
) -> list[str]:
    """Rename `staging_file` over `bi.duckdb`, point the `bi_parquet` link at the new
    version, and remove the versions no reader needs; returns the ids removed.

    Kept: the new version, and the one in place before (the old `bi.duckdb`'s and the old
    link's: a reader may have opened them a moment ago) unless an erasure was carried out
    since it was written."""
    store = versions_dir(parquet_link)
    previous = {published_version(published_file)}
    if parquet_link.is_symlink():
        previous.add(parquet_link.resolve())
    os.replace(staging_file, published_file)
    link_tmp = parquet_link.with_name(f".{parquet_link.name}.{uuid.uuid4().hex}.tmp")
    os.symlink(os.path.relpath(plan.version, parquet_link.parent), link_tmp)
    old_folder = None
    if parquet_link.is_dir() and not parquet_link.is_symlink():  # the layout before versions
        old_folder = parquet_link.with_name(f".{parquet_link.name}.{uuid.uuid4().hex}.old")
        os.replace(parquet_link, old_folder)
    os.replace(link_tmp, parquet_link)
    if old_folder is not None:
        shutil.rmtree(old_folder, ignore_errors=True)
    keep = {plan.version}
    if plan.keep_previous:
        keep |= {p.resolve() for p in previous if p is not None}
    removed = []
    for entry in store.iterdir():
        if entry.resolve() in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed
