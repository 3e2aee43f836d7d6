"""The same night run twice from one history: are the two warehouses the same?

    nice .venv/bin/python bench/night_twice.py --history <workdir>/history

`--history` is a history `bench/nightly.py --workdir` kept (its warehouse, Dagster home
and the landing zone it was built from). Its warehouse is copied twice; `cdp run --date
<the zone's last day>` runs once on each copy; then every table and view of the two
warehouses is compared row for row (as multisets, `EXCEPT ALL` both ways) and
`bi.duckdb`'s views too. What a run stamps with its own clock is not data: timestamps
inside each run's own time window are compared as "the run's time", and run ids are left
out. Anything else that differs is a result that depends on something other than the data
(a hash order, a thread's timing, an unordered aggregate), which a nightly pipeline
must not have: re-running a night would then change customers, scores or marts. Prints
the tables that differ and writes bench/results/night_twice.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from bench import cdp_runs  # noqa: E402

# Columns that name the run itself, whatever their type.
RUN_COLUMNS = {"run_id", "dagster_run_id"}
CLOCK_TYPES = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE")
# A run's own stamps fall inside its wall-clock window, widened by this much either side.
WINDOW_MARGIN = timedelta(minutes=2)


def _run_night(history: Path, folder: Path, landing: Path, night: str, first: str) -> dict:
    """Copy the history into `folder` and run the night there; the run's clock window."""
    warehouse = folder / "warehouse" / "warehouse.duckdb"
    cdp_runs.restore_history(history, warehouse.parent, folder / "dagster_home")
    env = cdp_runs.night_env(folder / "dagster_home", warehouse, landing)
    env["CDP_PARTITIONS_START"] = first
    started = datetime.now(UTC).replace(tzinfo=None) - WINDOW_MARGIN
    run = cdp_runs.run_cdp(["run", "--date", night], env)
    ended = datetime.now(UTC).replace(tzinfo=None) + WINDOW_MARGIN
    return {"warehouse": warehouse, "window": (started, ended), "seconds": run.wall_seconds}


def _relations(con: duckdb.DuckDBPyConnection, catalog: str) -> list[tuple[str, str]]:
    return con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = ? and table_schema not in ('information_schema', 'pg_catalog') "
        "order by 1, 2",
        [catalog],
    ).fetchall()


def _projection(
    con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str, window: tuple
) -> str:
    """The relation's columns, with the run's own timestamps replaced by a marker."""
    columns = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_catalog = ? and table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [catalog, schema, table],
    ).fetchall()
    low, high = (f"timestamp '{t.isoformat(sep=' ')}'" for t in window)
    picked = []
    for name, kind in columns:
        quoted = '"' + name.replace('"', '""') + '"'
        if name in RUN_COLUMNS:
            continue
        if kind in CLOCK_TYPES:
            plain = f"{quoted}::timestamp" if kind != "TIMESTAMP" else quoted
            picked.append(
                f"case when {plain} between {low} and {high} then 'run time' "
                f"else cast({quoted} as varchar) end as {quoted}"
            )
        else:
            picked.append(quoted)
    return ", ".join(picked) or "1 as no_column"


def compare(first: dict, second: dict, database: str = "warehouse.duckdb") -> dict:
    """Per relation of `database` in both runs' folders: rows that differ (0 = equal)."""
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    con.execute(
        f"attach '{first['warehouse'].parent / database}' as a (read_only); "
        f"attach '{second['warehouse'].parent / database}' as b (read_only)"
    )
    only_a = set(_relations(con, "a"))
    only_b = set(_relations(con, "b"))
    result: dict = {"only_in_first": sorted(map(".".join, only_a - only_b)),
                    "only_in_second": sorted(map(".".join, only_b - only_a)),
                    "relations": {}}  # fmt: skip
    for schema, table in sorted(only_a & only_b):
        left = _projection(con, "a", schema, table, first["window"])
        right = _projection(con, "b", schema, table, second["window"])
        name = f'"{schema}"."{table}"'
        try:
            rows, differing = con.execute(f"""
                select (select count(*) from a.{name}),
                       (select count(*) from (
                           (select {left} from a.{name} except all select {right} from b.{name})
                           union all
                           (select {right} from b.{name} except all select {left} from a.{name})
                       ))
            """).fetchone()
        except duckdb.Error as exc:
            result["relations"][f"{schema}.{table}"] = {"error": str(exc).splitlines()[0]}
            continue
        result["relations"][f"{schema}.{table}"] = {"rows": rows, "rows_differing": differing}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=Path, required=True, help="bench/nightly.py's history")
    parser.add_argument("--workdir", type=Path, help="keep the two nights here (default: temp)")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/night_twice.json")
    args = parser.parse_args(argv)
    landing = cdp_runs.history_landing(args.history)
    if landing is None:
        raise SystemExit(f"{args.history} is not a history bench/nightly.py --workdir kept")
    days = sorted({p.name[3:] for p in landing.glob("*/*/dt=*") if p.is_dir()})
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cdp-night-twice-"))
    runs = []
    for label in ("first", "second"):
        folder = workdir / label
        runs.append(_run_night(args.history, folder, landing, days[-1], days[0]))
        print(f"{label} night {days[-1]}: {runs[-1]['seconds']} s")
    report: dict = {
        "history": str(args.history),
        "night": days[-1],
        "night_seconds": [run["seconds"] for run in runs],
        "run_windows_utc": [[str(t) for t in run["window"]] for run in runs],
        "databases": {},
    }
    differing = []
    for database in ("warehouse.duckdb", "bi.duckdb"):
        compared = compare(runs[0], runs[1], database)
        report["databases"][database] = compared
        for relation, outcome in compared["relations"].items():
            if outcome.get("rows_differing") or "error" in outcome:
                differing.append(f"{database}:{relation}")
                print(f"  DIFFERS {database} {relation}: {outcome}")
        for side in ("only_in_first", "only_in_second"):
            for relation in compared[side]:
                differing.append(f"{database}:{relation} ({side})")
                print(f"  {side} {database} {relation}")
    relations = sum(len(d["relations"]) for d in report["databases"].values())
    report["relations_compared"] = relations
    report["relations_differing"] = differing
    print(f"{relations} relations compared, {len(differing)} differ")
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
