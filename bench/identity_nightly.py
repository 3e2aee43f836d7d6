"""A nightly identity run against a full one, on a warehouse whose staging models are built.

    nice .venv/bin/python -m bench.identity_nightly WAREHOUSE.duckdb [--truth truth.csv]
        [--new-share 0.01] [--label NAME] [--previous HISTORY.duckdb] [--profile]

Works on a copy. 1 % (`--new-share`) of every staging source's rows are held back as "the
day's delivery"; identity is resolved in full without them (that trains the model), the
rows are put back, and then the same data is resolved twice from that state: the nightly
way (incremental: only what the new rows touch is re-clustered, identity/incremental.py)
and with `full_identity=True` (retrain, re-resolve everything). Prints the seconds per stage
of both, how many records each re-clustered, how many records the two put in different
customers, and (with --truth) the accuracy of each; writes bench/results/identity_nightly.json.

`--previous HISTORY.duckdb` replaces the held-back share by a real day: WAREHOUSE is the
warehouse after a night's staging build (e.g. bench/nightly.py's), HISTORY the same
warehouse before that night (its `<workdir>/history`); the previous state is HISTORY's
identity.* tables, so the nightly run sees exactly the delta `cdp run --date` sees.
`--profile` prints the functions the nightly run spends its time in (cProfile).
`--nightly-only` skips the full run; `--run-at` fixes the runs' clock, so that the digest of
every identity.* table the nightly run leaves (`nightly.digest`: rows and a hash of their
content) compares between two checkouts' runs on the same state (`PYTHONPATH=<checkout>`).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb

from identity.evaluate import evaluate_against_truth
from identity.pipeline import resolve_identities

RESULTS = Path(__file__).resolve().parent / "results"
SOURCES = (
    "stg_email__contacts",
    "stg_billing__customers",
    "stg_web__events",
    "stg_support__tickets",
    "stg_surveys__responses",
)


def _as_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Staging sources present, each made a table (a view cannot lose and regain rows)."""
    present = []
    for name in SOURCES:
        kind = con.execute(
            "select table_type from information_schema.tables "
            "where table_schema = 'staging' and table_name = ?",
            [name],
        ).fetchall()
        if not kind:
            continue
        if kind[0][0] == "VIEW":
            con.execute(f"create table staging._{name} as select * from staging.{name}")
            con.execute(f"drop view staging.{name}")
            con.execute(f"alter table staging._{name} rename to {name}")
        present.append(name)
    return present


def _partition(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(
        con.sql(
            "select source_system || ':' || source_record_id, customer_id from identity.customer_map"
        ).fetchall()
    )


def _changed_customer(a: dict[str, str], b: dict[str, str]) -> int:
    """Records whose co-members differ between two clusterings (labels aside)."""
    group_a: dict[str, set[str]] = {}
    group_b: dict[str, set[str]] = {}
    for key, customer in a.items():
        group_a.setdefault(customer, set()).add(key)
    for key, customer in b.items():
        group_b.setdefault(customer, set()).add(key)
    return sum(1 for key in a if key in b and group_a[a[key]] != group_b[b[key]])


def _digest(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """identity.* table -> [rows, hash of the rows' content] (order aside)."""
    digest = {}
    for (table,) in con.execute(
        "select table_name from duckdb_tables() where schema_name = 'identity' order by 1"
    ).fetchall():
        columns = ", ".join(
            f'"{c}"' for c, *_ in con.execute(f"describe identity.{table}").fetchall()
        )
        rows, content = con.execute(
            f"select count(*), sum(hash({columns})) from identity.{table}"
        ).fetchone()
        digest[table] = [str(rows), str(content)]
    return digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("warehouse")
    parser.add_argument("--truth")
    parser.add_argument("--new-share", type=float, default=0.01)
    parser.add_argument("--label", default="")
    parser.add_argument("--previous", help="the warehouse before the night (its identity.*)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", default="identity_nightly.json")
    parser.add_argument("--nightly-only", action="store_true", help="skip the full run")
    parser.add_argument("--run-at", type=datetime.fromisoformat, help="the runs' clock (UTC)")
    args = parser.parse_args()
    result: dict = {
        "label": args.label,
        "warehouse": str(args.warehouse),
        "new_share": args.new_share,
        "threads": 2,
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }
    buckets = round(1 / args.new_share)
    with tempfile.TemporaryDirectory(prefix="identity_nightly_") as scratch:
        copy = Path(scratch) / "warehouse.duckdb"
        shutil.copyfile(args.warehouse, copy)
        con = duckdb.connect(str(copy))
        con.execute("SET threads = 2")
        con.execute("drop schema if exists identity cascade")
        sources = _as_tables(con)
        if args.previous:
            con.execute(f"attach '{args.previous}' as history (read_only)")
            con.execute("create schema identity")
            for (table,) in con.execute(
                "select table_name from duckdb_tables() "
                "where database_name = 'history' and schema_name = 'identity'"
            ).fetchall():
                con.execute(
                    f"create table identity.{table} as select * from history.identity.{table}"
                )
            result["history_records"] = con.execute(
                "select count(*) from identity.identity_records"
            ).fetchall()[0][0]
            con.execute("detach history")
            base = None
        else:
            for name in sources:
                con.execute(
                    f"create table staging._held_{name} as select * from staging.{name} s "
                    f"where hash(s::varchar) % {buckets} = 0"
                )
                con.execute(f"delete from staging.{name} s where hash(s::varchar) % {buckets} = 0")
            clock = time.perf_counter()
            base = resolve_identities(con)
            result["history_full_seconds"] = round(time.perf_counter() - clock, 2)
            for name in sources:
                con.execute(f"insert into staging.{name} select * from staging._held_{name}")
        con.execute("checkpoint")
        shutil.copyfile(copy, Path(scratch) / "state.duckdb")
        runs = {}
        modes = (("nightly", None),) if args.nightly_only else (("nightly", None), ("full", True))
        for mode, full in modes:
            if mode == "full":
                con.close()
                shutil.copyfile(Path(scratch) / "state.duckdb", copy)
                con = duckdb.connect(str(copy))
                con.execute("SET threads = 2")
            clock, cpu = time.perf_counter(), time.process_time()
            if args.profile and mode == "nightly":
                profiler = cProfile.Profile()
                summary = profiler.runcall(
                    resolve_identities, con, full_identity=full, run_at=args.run_at
                )
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            else:
                summary = resolve_identities(con, full_identity=full, run_at=args.run_at)
            seconds = time.perf_counter() - clock
            cpu_seconds = time.process_time() - cpu
            runs[mode] = {
                "mode": summary.mode,
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu_seconds, 2),
                "records": summary.records_in,
                "records_reclustered": summary.records_reclustered,
                "records_changing_customer": summary.records_changing_customer,
                "stages": summary.seconds,
                "stages_cpu_seconds": summary.cpu_seconds,
                "records_normalised": getattr(summary, "records_normalised", None),
                "golden_recomputed": getattr(summary, "golden_recomputed", None),
                "rows_written": getattr(summary, "rows_written", None),
                "partition": _partition(con),
                "digest": _digest(con),
            }
            if args.truth:
                report = evaluate_against_truth(con, Path(args.truth))
                runs[mode]["accuracy"] = {
                    "precision": round(report.precision, 5),
                    "recall": round(report.recall, 5),
                    "f1": round(report.f1, 5),
                }
            print(
                f"{mode:<8} ({summary.mode}) {seconds:6.1f} s, {summary.records_reclustered:,} of "
                f"{summary.records_in:,} records re-clustered, "
                f"{summary.records_changing_customer:,} changed customer"
            )
            for stage, value in summary.seconds.items():
                cpu_value = summary.cpu_seconds.get(stage)
                cpu_text = f" {cpu_value:7.2f} CPU s" if cpu_value is not None else ""
                print(f"  {stage:<28} {value:7.2f} s{cpu_text}")
        con.close()
    nightly_partition = runs["nightly"].pop("partition")
    result.update(
        {
            **({"history_records": base.records_in} if base is not None else {}),
            "nightly": runs["nightly"],
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        }
    )
    if "full" in runs:
        differ = _changed_customer(nightly_partition, runs["full"].pop("partition"))
        result.update(
            {
                "full": runs["full"],
                "records_grouped_differently_nightly_vs_full": differ,
                "nightly_over_full_seconds": round(
                    runs["nightly"]["seconds"] / runs["full"]["seconds"], 3
                ),
            }
        )
        print(
            f"nightly / full = {result['nightly_over_full_seconds']:.2f}; "
            f"{differ:,} records grouped differently (the full run retrains the model)"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / args.out
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
