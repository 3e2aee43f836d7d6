"""What one night's publish costs: day D's marts published over day D-1's BI copies.

    nice .venv/bin/python -m bench.publish_nightly HISTORY.duckdb NIGHT.duckdb

HISTORY is a warehouse after the backfill of days 1..D-1, NIGHT the same warehouse after
day D (bench/nightly.py --workdir keeps both: <workdir>/history/warehouse/warehouse.duckdb
and <workdir>/warehouse/warehouse.duckdb). Works on copies: publishes HISTORY's marts
(masked as the publish step masks them), then NIGHT's over that copy twice from the same
start - with `bi.duckdb` written whole (as before dev/nightid) and with yesterday's file
reused (only changed marts replaced) - and prints wall and CPU seconds and what was
rewritten. Writes bench/results/publish_nightly.json.
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

from orchestration.bi_publish import build_published_copies
from orchestration.settings import DBT_PROJECT_DIR
from privacy.publishing import masked_select_list, pii_columns

RESULTS = Path(__file__).resolve().parent / "results"
SALT = "bench-publish-nightly-salt-0123456789abcdef"


def _publish(con, root: Path, reuse: bool) -> dict:
    plan = pii_columns(DBT_PROJECT_DIR / "models" / "marts")
    target, parquet_dir = root / "bi.duckdb", root / "bi_parquet"
    staging, parquet_tmp = root / ".bi.tmp", root / ".bi_parquet.tmp"
    parquet_tmp.mkdir()
    clock, cpu = time.perf_counter(), time.process_time()
    result = build_published_copies(
        con,
        target,
        parquet_dir,
        staging,
        parquet_tmp,
        select_for=lambda table, columns: (
            f'select {masked_select_list(table, columns, plan, SALT)} from marts."{table}"'
        ),
        reuse_duckdb_file=reuse,
    )
    os.replace(staging, target)
    if parquet_dir.exists():
        shutil.rmtree(parquet_dir)
    os.replace(parquet_tmp, parquet_dir)
    return {
        "wall_seconds": round(time.perf_counter() - clock, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "marts": len(result.rows),
        "rewritten_duckdb": len(result.rewritten_duckdb),
        "rewritten_parquet": len(result.rewritten_parquet),
        "duckdb_file_reused": result.reused_duckdb_file,
        "bi_duckdb_mb": round(target.stat().st_size / 2**20, 1),
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
        yesterday = scratch / "yesterday"
        yesterday.mkdir()
        with duckdb.connect(str(scratch / "history.duckdb")) as con:
            con.execute("SET threads = 2")
            report["history_publish"] = _publish(con, yesterday, reuse=False)
        for mode, reuse in (("night_written_whole", False), ("night_reusing_yesterday", True)):
            root = scratch / mode
            shutil.copytree(yesterday, root)
            with duckdb.connect(str(scratch / "night.duckdb")) as con:
                con.execute("SET threads = 2")
                report[mode] = _publish(con, root, reuse)
            print(mode, report[mode])
    report["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    out = RESULTS / "publish_nightly.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
