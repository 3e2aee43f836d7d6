"""Benchmark the customer-experience path (issue 12) end to end through `cdp run`.

    .venv/bin/python bench/experience.py --customers 20000 --days 30

1. Generates a landing zone (demo_data.generate) unless --landing points at one.
2. Runs the real pipeline, `cdp run`, into a fresh warehouse and times it.
3. Checks the experience marts against the landing files, recounted here in plain Python
   (csv module, no SQL shared with the pipeline): every delivered ticket is one row of
   marts.fct_support_tickets with its latest status, and the 'all' row of
   marts.nps_by_segment equals the NPS of the deduplicated responses.
4. Scores identity resolution on the new records against truth.csv: coverage (truth records
   mapped to a customer) and pairwise precision / recall over the pairs that involve a
   support or survey record (each pair of records of one customer is a predicted link,
   of one person a true link), split by the system of the other record.
Prints the figures and writes bench/results/experience-<customers>.json.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from bench import cdp_runs  # noqa: E402

EXPERIENCE_SYSTEMS = ("support", "survey")


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def read_landing_csv(landing: Path, table_path: str) -> list[dict[str, str]]:
    """Every delivered row of a table, in delivery order (day folder, then file)."""
    rows = []
    for path in sorted((landing / table_path).glob("dt=*/part-*")):
        data = path.read_bytes()
        text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")
        rows += list(csv.DictReader(io.StringIO(text, newline="")))
    return rows


def _utc(text: str):
    from datetime import UTC, datetime

    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def expected_from_landing(landing: Path) -> dict:
    """The latest status of each ticket and the NPS of the deduplicated responses."""
    latest: dict[str, tuple] = {}
    for row in read_landing_csv(landing, "support/tickets"):
        key = _utc(row["updated_at"])
        if row["ticket_id"] not in latest or key >= latest[row["ticket_id"]][0]:
            latest[row["ticket_id"]] = (key, row["status"].strip().lower())
    scores: dict[str, int] = {}
    for row in read_landing_csv(landing, "surveys/responses"):
        scores.setdefault(row["response_id"], int(row["score"]))
    counts = Counter(
        "promoter" if s >= 9 else "passive" if s >= 7 else "detractor" for s in scores.values()
    )
    return {
        "ticket_status": {ticket: status for ticket, (_, status) in latest.items()},
        "responses": len(scores),
        "promoters": counts["promoter"],
        "passives": counts["passive"],
        "detractors": counts["detractor"],
        "nps": 100 * (counts["promoter"] - counts["detractor"]) / len(scores) if scores else None,
    }


def identity_scores(con: duckdb.DuckDBPyConnection, truth_csv: Path) -> dict:
    """Coverage and pairwise P/R over pairs that involve each experience system."""
    con.execute(
        f"create or replace temp table truth as select * from read_csv('{truth_csv}', "
        "header = true, all_varchar = true)"
    )
    con.execute("""
        create or replace temp table scored as
        select t.source_system, t.source_record_id, t.person_id, m.customer_id
        from truth t
        left join marts.customer_identity_map m
          on m.source_system = t.source_system and m.source_record_id = t.source_record_id
    """)
    results = {}
    for system in EXPERIENCE_SYSTEMS:
        total, mapped = con.execute(
            "select count(*), count(customer_id) from scored where source_system = ?", [system]
        ).fetchone()
        by_other: dict[str, dict[str, int]] = {}
        for other in ("email", "billing", "web", "support", "survey"):
            counts = {}
            # An unmapped record still has its true links (all missed); it predicts none.
            for name, group, scope in (
                ("true", "person_id", "true"),
                ("predicted", "customer_id", "customer_id is not null"),
                ("correct", "person_id, customer_id", "customer_id is not null"),
            ):
                rows = con.execute(
                    f"""
                    select count(*) filter (where source_system = ?) as n_system,
                           count(*) filter (where source_system = ?) as n_other
                    from scored where {scope}
                    group by {group}
                    """,
                    [system, other],
                ).fetchall()
                counts[name] = sum(_pairs(a) if other == system else a * b for a, b in rows if a)
            if counts["true"] or counts["predicted"]:
                by_other[f"{system}-{other}"] = {
                    **counts,
                    "precision": round(counts["correct"] / counts["predicted"], 4)
                    if counts["predicted"]
                    else 1.0,
                    "recall": round(counts["correct"] / counts["true"], 4)
                    if counts["true"]
                    else 1.0,
                }
        correct = sum(v["correct"] for v in by_other.values())
        true = sum(v["true"] for v in by_other.values())
        predicted = sum(v["predicted"] for v in by_other.values())
        results[system] = {
            "truth_records": total,
            "coverage": round(mapped / total, 4) if total else 1.0,
            "precision": round(correct / predicted, 4) if predicted else 1.0,
            "recall": round(correct / true, 4) if true else 1.0,
            "by_pair": by_other,
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cdp_runs.add_zone_arguments(parser, customers=20_000, days=30)
    parser.add_argument("--work-dir", type=Path, help="keep the warehouse here")
    args = parser.parse_args(argv)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="cdp-bench-experience-"))
    work.mkdir(parents=True, exist_ok=True)
    landing = args.landing
    generated_seconds = None
    if landing is None:
        from demo_data.generate import generate_landing_zone

        landing = work / "landing"
        summary = generate_landing_zone(
            landing, customers=args.customers, days=args.days, seed=args.seed
        )
        generated_seconds = summary.elapsed_seconds
    warehouse = work / "warehouse" / "warehouse.duckdb"
    env = {**os.environ, "DAGSTER_HOME": str(cdp_runs.fresh_dagster_home(work / "dagster_home"))}
    run_seconds = cdp_runs.run_cdp(
        ["run", "--landing", str(landing), "--warehouse", str(warehouse)], env
    ).wall_seconds

    expected = expected_from_landing(landing)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        mart_status = dict(
            con.execute("select ticket_id, status from marts.fct_support_tickets").fetchall()
        )
        all_row = con.execute(
            "select responses, promoters, passives, detractors, nps from marts.nps_by_segment "
            "where segment_type = 'all'"
        ).fetchone()
        identity = identity_scores(con, landing / "truth.csv")
    tickets_missing = sorted(set(expected["ticket_status"]) - set(mart_status))
    tickets_wrong = sorted(
        t for t, s in expected["ticket_status"].items() if t in mart_status and mart_status[t] != s
    )
    nps_expected = (
        expected["responses"],
        expected["promoters"],
        expected["passives"],
        expected["detractors"],
    )
    result = {
        "customers": args.customers if args.landing is None else None,
        "days": args.days if args.landing is None else None,
        "landing": str(landing),
        "generate_seconds": generated_seconds,
        "cdp_run_seconds": run_seconds,
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "tickets_delivered": len(expected["ticket_status"]),
        "tickets_in_mart": len(mart_status),
        "tickets_missing_from_mart": len(tickets_missing),
        "tickets_with_wrong_status": len(tickets_wrong),
        "nps_all_row": {
            "mart": list(all_row[:4]) + [round(all_row[4], 4) if all_row[4] is not None else None],
            "recounted_from_landing": list(nps_expected)
            + [round(expected["nps"], 4) if expected["nps"] is not None else None],
            "equal": tuple(all_row[:4]) == nps_expected,
        },
        "identity": identity,
    }
    print(f"cdp run {run_seconds} s; {len(mart_status):,} tickets in fct_support_tickets")
    print(
        f"tickets delivered {result['tickets_delivered']:,}: missing from the mart "
        f"{len(tickets_missing)}, wrong latest status {len(tickets_wrong)}"
    )
    print(
        f"nps_by_segment 'all' {result['nps_all_row']['mart']} vs recounted "
        f"{result['nps_all_row']['recounted_from_landing']} -> equal: {result['nps_all_row']['equal']}"
    )
    for system, scores in identity.items():
        print(
            f"identity {system:<8} coverage {scores['coverage']:.4f} of {scores['truth_records']:,}"
            f"  precision {scores['precision']:.4f}  recall {scores['recall']:.4f}"
        )
        for pair, pair_scores in scores["by_pair"].items():
            print(
                f"    {pair:<16} P {pair_scores['precision']:.4f}  R {pair_scores['recall']:.4f}"
                f"  ({pair_scores['correct']:,} of {pair_scores['true']:,} true links)"
            )
    out = REPO / "bench" / "results" / f"experience-{args.customers}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    ok = not tickets_missing and not tickets_wrong and result["nps_all_row"]["equal"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
