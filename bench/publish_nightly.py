"""What one night's publish costs: day D's marts published over day D-1's BI copies.

    nice .venv/bin/python -m bench.publish_nightly HISTORY.duckdb NIGHT.duckdb

HISTORY is a warehouse after the backfill of days 1..D-1, NIGHT the same warehouse after
day D (bench/nightly.py --workdir keeps both: <workdir>/history/warehouse/warehouse.duckdb
and <workdir>/warehouse/warehouse.duckdb). Works on copies: publishes HISTORY's marts
(masked as the publish step masks them), then NIGHT's over them, the way the publish step
does since dev/nightly: the changed marts written once, as Parquet, and `bi.duckdb` a
file of views over them (`orchestration/bi_publish.py`). Beside it, from the same start,
what the layout before wrote on top of that: the changed marts a second time, as tables
of `bi.duckdb` (`night_tables_copy_before`, the work the views remove). Prints wall and
CPU seconds, marts rewritten and megabytes written. Writes bench/results/publish_nightly.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from orchestration.bi_publish import (
    _mart_columns,
    build_published_version,
    swap_in_published,
)
from orchestration.settings import DBT_PROJECT_DIR
from privacy.publishing import masked_select_list, pii_columns

RESULTS = Path(__file__).resolve().parent / "results"
SALT = "bench-publish-nightly-salt-0123456789abcdef"
PLAN = pii_columns(DBT_PROJECT_DIR / "models" / "marts")


def _select(table: str, columns: list[str]) -> str:
    return f'select {masked_select_list(table, columns, PLAN, SALT)} from marts."{table}"'


def _megabytes(paths) -> float:
    return round(sum(p.stat().st_size for p in paths) / 2**20, 1)


def _publish(con, root: Path) -> dict:
    target, parquet_link = root / "bi.duckdb", root / "bi_parquet"
    staging = root / ".bi.tmp"
    clock, cpu = time.perf_counter(), time.process_time()
    plan = build_published_version(con, target, parquet_link, staging, select_for=_select)
    swap_in_published(plan, target, parquet_link, staging)
    return {
        "wall_seconds": round(time.perf_counter() - clock, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "marts": len(plan.rows),
        "rewritten_parquet": len(plan.rewritten_parquet),
        "parquet_mb_written": _megabytes(
            plan.version / f"{t}.parquet" for t in plan.rewritten_parquet
        ),
        "bi_duckdb_mb": round(target.stat().st_size / 2**20, 2),
        "_rewritten": plan.rewritten_parquet,
    }


def _tables_copy(con, root: Path, tables: list[str]) -> dict:
    """The second copy the layout before wrote: the changed marts as bi.duckdb tables."""
    target = root / "bi_tables.duckdb"
    clock, cpu = time.perf_counter(), time.process_time()
    con.execute(f"attach '{target}' as published")
    con.execute("create schema published.marts")
    for table in tables:
        con.execute(
            f'create table published.marts."{table}" as {_select(table, _mart_columns(con, table))}'
        )
    con.execute("detach published")
    return {
        "wall_seconds": round(time.perf_counter() - clock, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "tables": len(tables),
        "mb_written": round(target.stat().st_size / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("history")
    parser.add_argument("night")
    args = parser.parse_args()
    report: dict = {"load_average_1m_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="publish_nightly_") as scratch:
        scratch = Path(scratch)
        for name, source in (("history", args.history), ("night", args.night)):
            shutil.copyfile(source, scratch / f"{name}.duckdb")
        root = scratch / "published"
        root.mkdir()
        with duckdb.connect(str(scratch / "history.duckdb")) as con:
            con.execute("SET threads = 2")
            report["history_publish"] = _publish(con, root)
            report["history_publish"].pop("_rewritten")
        with duckdb.connect(str(scratch / "night.duckdb")) as con:
            con.execute("SET threads = 2")
            night = _publish(con, root)
            rewritten = night.pop("_rewritten")
            report["night"] = night
            report["night_tables_copy_before"] = _tables_copy(con, scratch, rewritten)
        print(json.dumps(report, indent=2))
    report["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    out = RESULTS / "publish_nightly.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
