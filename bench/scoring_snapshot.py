"""What a night's scoring snapshot costs: predictions/snapshot.sql on a built warehouse.

    .venv/bin/python bench/scoring_snapshot.py --warehouse <dir>/warehouse.duckdb [--repeat 3]
    .venv/bin/python bench/scoring_snapshot.py --warehouse ... --tree <other checkout>
    .venv/bin/python bench/scoring_snapshot.py --warehouse ... --whole-scoring

The nightly scoring step (`predictions/customer_scores`) takes the point-in-time feature
snapshot of every golden customer as of the last day loaded, over all of raw: the one part
of a night that still grows with the history (docs/operations.md, *What a night costs*).
This times that query alone (read-only, DuckDB's 2 threads), `--repeat` times, and prints
wall and CPU seconds and the rows; `--tree` runs another checkout's `predictions` package
instead of this one (before/after pairs on the same warehouse, run alternately).

`--whole-scoring` times the whole of what the step does after it: `score_customers` with
the warehouse's newest model bundle (`<warehouse dir>/models`), split into the snapshot,
churn and CLV (`predict_revenue`), the lead score and the next best product, and prints a
digest of the scores (every column but `scored_at`): two trees that score alike print the
same digest. Once the history is long enough to train every model (~45 days), these parts
cost more than the snapshot.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.append(str(REPO))  # after PYTHONPATH: a --tree's own predictions package comes first

from bench.process_usage import own_usage  # noqa: E402


def time_snapshot(warehouse: Path) -> dict:
    """One snapshot as of the warehouse's last loaded day (in this process)."""
    import duckdb

    from predictions.snapshot import DEFAULT_FX_RATES, loaded_history, snapshot_sql

    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        history = loaded_history(con)
        if history is None:
            raise SystemExit(f"{warehouse} holds no loaded landing days: run `cdp run` first")
        sql = snapshot_sql(history.last_day, DEFAULT_FX_RATES)
        started, cpu = time.perf_counter(), own_usage()[0]
        rows = len(con.execute(sql).df())
        return {
            "as_of": history.last_day.isoformat(),
            "history_days": history.days,
            "customers": rows,
            "wall_seconds": round(time.perf_counter() - started, 2),
            "cpu_seconds": round(own_usage()[0] - cpu, 2),
        }


def time_scoring(warehouse: Path) -> dict:
    """`score_customers` as of the warehouse's last loaded day (in this process), by part."""
    import hashlib

    import duckdb
    import pandas as pd

    from predictions import pipeline
    from predictions.next_product import NextProductModel

    parts: dict[str, float] = {}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                parts[name] = round(parts.get(name, 0.0) + time.perf_counter() - started, 2)

        return wrapper

    pipeline.SnapshotCache.snapshot = timed("snapshot", pipeline.SnapshotCache.snapshot)
    pipeline.predict_revenue = timed("churn_and_clv", pipeline.predict_revenue)
    NextProductModel.recommend = timed("next_best_product", NextProductModel.recommend)
    models = pipeline.load_latest_models(warehouse.parent / "models")
    if models is None:
        raise SystemExit(f"{warehouse.parent / 'models'} holds no model bundle: run `cdp run`")
    if models.lead is not None:
        models.lead.predict = timed("lead_score", models.lead.predict)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        started, cpu = time.perf_counter(), own_usage()[0]
        scores = pipeline.score_customers(con, models)
        wall, cpu = time.perf_counter() - started, own_usage()[0] - cpu
    # DuckDB sums doubles in parallel, in no fixed order: features, and so probabilities,
    # can move in their last bit from one run to the next; the digest rounds that away
    compared = scores.drop(columns=["scored_at"])
    floats = compared.select_dtypes("float").columns
    compared[floats] = compared[floats].round(12)
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(compared, index=False).to_numpy()
    ).hexdigest()[:16]
    return {
        "as_of": str(scores["scoring_date"].iloc[0]),
        "customers": len(scores),
        "models": {
            "churn": models.churn is not None,
            "lead_score": models.lead is not None,
            "next_best_product": models.next_product is not None,
        },
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "seconds_by_part": parts,
        "scores_digest": digest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tree", type=Path, help="another checkout whose predictions/ to time")
    parser.add_argument(
        "--whole-scoring",
        action="store_true",
        help="time score_customers with the newest bundle, not only the snapshot",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        # bench/predictions.py would shadow the predictions package of the tree timed
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
        timer = time_scoring if args.whole_scoring else time_snapshot
        print(json.dumps(timer(args.warehouse)))
        return
    tree = (args.tree or REPO).resolve()
    for _ in range(args.repeat):
        # a process per run: each starts cold, as the nightly step's query does
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--warehouse",
                str(args.warehouse),
                *(["--whole-scoring"] if args.whole_scoring else []),
            ],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(tree)},
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(f"{tree.name}: {json.dumps(result)}", flush=True)


if __name__ == "__main__":
    main()
