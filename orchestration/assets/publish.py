"""Publish the marts for BI tools: Parquet and a read-only DuckDB file of views over it,
swapped atomically.

BI tools never open the warehouse the nightly run writes: DuckDB has one writer per
file, and a reader there would block the run or see a half-built mart. They open
`bi.duckdb` (and/or `bi_parquet/`) next to the warehouse instead. Both are built
aside and renamed into place at the end of a successful run, so a reader sees either
yesterday's complete marts or today's, never a mix. This is also the step that commits
the run's private copy of the warehouse (see `WarehouseResource`), and the one that
rebuilds the overview page (`overview/index.html`, charts of the published marts).
"""

import os
import shutil
import time
import uuid

import dagster as dg
import duckdb

from ingestion.suppression import PrivacyKeyError, privacy_salt
from orchestration.assets.dbt import mart_keys
from orchestration.assets.privacy import ERASURE_ASSET
from orchestration.bi_publish import build_published_version, swap_in_published, versions_dir
from orchestration.file_modes import (
    PRIVATE_FILE,
    FileModeError,
    set_published_modes,
)
from orchestration.resources import WarehouseResource
from orchestration.settings import DBT_PROJECT_DIR, flag_setting
from overview.page import write_overview
from privacy.publishing import masked_select_list, pii_columns

CONTACTS_ENV = "CDP_PUBLISH_CONTACTS"
CONTACTS_GROUP_ENV = "CDP_CONTACTS_GROUP"
CONTACTS_FILE_NAME = "bi_contacts.duckdb"


def contacts_opted_in() -> bool:
    return flag_setting(CONTACTS_ENV)


def set_contacts_mode(path) -> None:
    """Owner-only, or readable by CDP_CONTACTS_GROUP: never the (wider) BI group."""
    value = os.environ.get(CONTACTS_GROUP_ENV, "").strip()
    if not value:
        os.chmod(path, PRIVATE_FILE)
        return
    import grp

    try:
        gid = grp.getgrnam(value).gr_gid
    except KeyError:
        if not value.isdigit():
            raise FileModeError(
                f"{CONTACTS_GROUP_ENV}={value!r} is not a group on this machine; create it or "
                f"unset it to keep {CONTACTS_FILE_NAME} owner-only"
            ) from None
        gid = int(value)
    os.chown(path, -1, gid)
    os.chmod(path, 0o640)


def _sql_literal(path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _segment_sizes_markdown(con) -> str:
    """Customers per segment, the number an engineer checks at 8am after a nightly run."""
    try:
        rows = con.execute(
            "select segment_type, segment_name, customers from marts.segment_summary "
            "order by segment_type, customers desc"
        ).fetchall()
    except duckdb.Error:  # the summary mart is optional for publishing
        return "_marts.segment_summary is not available_"
    lines = ["| segment type | segment | customers |", "|---|---|---:|"]
    lines += [f"| {t} | {n} | {c:,} |" for t, n, c in rows]
    return "\n".join(lines)


@dg.asset(
    key=["published", "marts"],
    deps=[*mart_keys(), ERASURE_ASSET],
    group_name="marts",
    kinds={"duckdb", "parquet"},
    owners=["team:analytics-engineering"],
    description=(
        "Read-only copy of every `marts.*` table for BI tools (`bi_parquet/` and "
        "`bi.duckdb`, views over those files), swapped in atomically at the end of a successful run; then the "
        "overview page (`overview/index.html`, charts of the marts) is rebuilt from it."
    ),
)
def published_marts(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    started = time.monotonic()
    target = warehouse.published_path
    # Under the run lock for the whole swap: a run of this asset alone (picked in the UI)
    # must not interleave with another run's commit.
    with warehouse.holding_run_lock(context.log):
        staging_file = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        parquet_dir = warehouse.published_parquet_dir
        contacts_target = target.with_name(CONTACTS_FILE_NAME)
        contacts_file = (
            target.with_name(f".{CONTACTS_FILE_NAME}.{uuid.uuid4().hex}.tmp")
            if contacts_opted_in()
            else None
        )
        plan = pii_columns(DBT_PROJECT_DIR / "models" / "marts")
        try:
            salt = privacy_salt(create=True)
        except PrivacyKeyError as exc:
            raise dg.Failure(description=f"Cannot hash the BI file's PII columns: {exc}") from None
        publish = None
        removed_versions: list[str] | None = None
        try:
            with warehouse.connect(context.log) as con:
                # PII masked per the marts' yml (meta pii); the marts are written once, as
                # Parquet (only those whose published content changed), and bi.duckdb is
                # views over them (orchestration/bi_publish.py).
                publish = build_published_version(
                    con,
                    target,
                    parquet_dir,
                    staging_file,
                    select_for=lambda table, columns: (
                        f"select {masked_select_list(table, columns, plan, salt)} "
                        f'from marts."{table}"'
                    ),
                )
                rows = publish.rows
                if contacts_file is not None:  # clear values, opt-in, always written whole
                    con.execute(f"attach {_sql_literal(contacts_file)} as contacts")
                    con.execute("create schema contacts.marts")
                    for table in rows:
                        if table in plan:
                            con.execute(
                                f'create table contacts.marts."{table}" as '
                                f'select * from marts."{table}"'
                            )
                    con.execute("detach contacts")
                segments_md = _segment_sizes_markdown(con)
            # Private, or readable by CDP_BI_GROUP, before they become visible under their names.
            set_published_modes(staging_file)
            set_published_modes(versions_dir(parquet_dir))
            if contacts_file is not None:
                try:
                    set_contacts_mode(contacts_file)
                except FileModeError as exc:
                    raise dg.Failure(description=str(exc)) from None
            # The warehouse first (the source of truth; refused if another run committed since
            # this run's copy), then the BI files. A kill in between leaves complete BI files of
            # the previous run, which the next run replaces.
            committed = warehouse.commit_run()
            removed_versions = swap_in_published(publish, target, parquet_dir, staging_file)
            # Opted out (or never in): no stale contact data may outlive an erasure.
            if contacts_file is not None:
                os.replace(contacts_file, contacts_target)
            else:
                contacts_target.unlink(missing_ok=True)
        finally:
            staging_file.unlink(missing_ok=True)
            if contacts_file is not None:
                contacts_file.unlink(missing_ok=True)
            if removed_versions is None and publish is not None and publish.version:
                shutil.rmtree(publish.version, ignore_errors=True)  # never swapped in
    # The overview page reads the marts just published (aggregates only, no personal data).
    with duckdb.connect(str(target), read_only=True) as published:
        overview = write_overview(published, warehouse.overview_dir)
    table_md = "\n".join(
        [
            "| table | rows | rewritten |",
            "|---|---:|---|",
            *(
                f"| marts.{t} | {n:,} | {'yes' if t in publish.rewritten_parquet else 'no'} |"
                for t, n in rows.items()
            ),
        ]
    )
    context.log.info(
        f"Published {len(rows)} marts to {target} in {time.monotonic() - started:.1f}s "
        f"({len(publish.rewritten_parquet)} changed and rewritten)"
    )
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(target)),
            "overview": dg.MetadataValue.url(overview.as_uri()),
            "overview_path": dg.MetadataValue.path(str(overview)),
            "warehouse_committed": dg.MetadataValue.bool(committed),
            "parquet_dir": dg.MetadataValue.path(str(parquet_dir)),
            "pii_columns_masked": dg.MetadataValue.int(sum(len(c) for c in plan.values())),
            "contacts_file": dg.MetadataValue.text(
                str(contacts_target) if contacts_file is not None else "not published (opt-in)"
            ),
            "tables": dg.MetadataValue.md(table_md),
            "marts_rewritten": dg.MetadataValue.int(len(publish.rewritten_parquet)),
            "marts_unchanged": dg.MetadataValue.int(len(rows) - len(publish.rewritten_parquet)),
            "parquet_version": dg.MetadataValue.path(str(publish.version)),
            "versions_removed": dg.MetadataValue.int(len(removed_versions)),
            "segment_sizes": dg.MetadataValue.md(segments_md),
            "connect": dg.MetadataValue.md(
                f"```\nduckdb -readonly {target}\n```\nSQLAlchemy: `duckdb:///{target}?access_mode=read_only`"
            ),
        }
    )
