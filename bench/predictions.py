"""Benchmark the predictive traits the way a held-out check scores them.

    .venv/bin/python bench/predictions.py                       # 5,000 people, 150 days
    .venv/bin/python bench/predictions.py --customers 20000 --days 120

1. Generates a landing zone with the generator's planted behaviour (engaged people churn
   less and convert more) and holds back its last 30 days.
2. Loads the other days for real (ingestion, dbt staging, identity resolution), then
   trains (out-of-time backtest included) and scores every customer as of the last day
   loaded, T: the same calls the Dagster assets make. Timed.
3. Loads the held-back 30 days into a copy and scores the predictions made at T against
   what happened in (T, T+30]: churn_probability against subscribers who lost their paid
   subscription, lead_score against first payments, each next to its naive baseline
   (recency alone; web sessions + half the campaigns opened, the naive count). Outcomes
   use T's identity map, so a later merge cannot move a customer between the two sides.
Prints and writes bench/results/predictions.json (held-out AUCs and the backtest rows).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402

from demo_data.generate import generate_landing_zone  # noqa: E402
from predictions.backtest import auc, precision_at_top_decile  # noqa: E402
from predictions.classifiers import churn_baseline, lead_baseline  # noqa: E402
from predictions.outcomes import SnapshotCache, churn_examples, lead_examples  # noqa: E402
from predictions.pipeline import (  # noqa: E402
    PredictionSettings,
    performance_summary,
    score_customers,
    train_models,
)
from predictions.snapshot import loaded_history  # noqa: E402
from tests.predictions.conftest import (  # noqa: E402
    build_staging_and_identity,
    landing_days,
    load_raw,
)

HOLD_BACK_DAYS = 30


def _copy_identity(source: Path, target: Path) -> None:
    con = duckdb.connect(str(target))
    try:
        con.execute(f"attach '{source}' as source_wh (read_only)")
        con.execute("create schema if not exists identity")
        con.execute(
            "create or replace table identity.customer_map as "
            "select * from source_wh.identity.customer_map"
        )
    finally:
        con.close()


def _rounded(value):
    return None if value is None else round(float(value), 4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=150)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 4, 1))
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="cdp-bench-predictions-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    landing = work / "landing"
    started = time.perf_counter()
    generate_landing_zone(
        landing, customers=args.customers, days=args.days, seed=args.seed, start=args.start
    )
    days = landing_days(landing)
    held_out_from = days[-HOLD_BACK_DAYS]
    visible = [d for d in days if d < held_out_from]
    scoring_date = visible[-1]
    warehouse = work / "until_t.duckdb"
    load_raw(warehouse, landing, visible)
    build_staging_and_identity(warehouse, work / "dbt_until_t")
    prepared = time.perf_counter() - started

    clock = time.perf_counter()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        training = train_models(con, PredictionSettings())
        trained = time.perf_counter() - clock
        clock = time.perf_counter()
        scores = score_customers(con, training.models).set_index("customer_id")
        scored = time.perf_counter() - clock

    full = work / "full.duckdb"
    shutil.copyfile(warehouse, full)
    load_raw(full, landing, [d for d in days if d >= held_out_from])
    _copy_identity(warehouse, full)
    with duckdb.connect(str(full), read_only=True) as con:
        cache = SnapshotCache(con, loaded_history(con))
        churn = churn_examples(cache, scoring_date, HOLD_BACK_DAYS).set_index("customer_id")
        leads = lead_examples(cache, scoring_date, HOLD_BACK_DAYS).set_index("customer_id")

    churn_p = scores["churn_probability"].reindex(churn.index).to_numpy(float)
    lead_p = scores["lead_score"].reindex(leads.index).to_numpy(float)
    held_out = {
        "churn": {
            "customers": len(churn),
            "churned": int(churn["churned"].sum()),
            "auc": _rounded(auc(churn["churned"], churn_p)),
            "precision_at_top_decile": _rounded(precision_at_top_decile(churn["churned"], churn_p)),
            "baseline": "recency alone: days since the last payment",
            "baseline_auc": _rounded(auc(churn["churned"], churn_baseline(churn))),
        },
        "lead_score": {
            "people": len(leads),
            "converted": int(leads["converted"].sum()),
            "auc": _rounded(auc(leads["converted"], lead_p)),
            "precision_at_top_decile": _rounded(
                precision_at_top_decile(leads["converted"], lead_p)
            ),
            "baseline": "web sessions + 0.5 x campaigns opened",
            "baseline_auc": _rounded(auc(leads["converted"], lead_baseline(leads))),
        },
        "scored_customers": len(scores),
        "missing_churn_scores": int(np.isnan(churn_p).sum()),
        "missing_lead_scores": int(np.isnan(lead_p).sum()),
    }
    performance = training.performance.copy()
    for column in performance.columns:
        performance[column] = (
            performance[column].astype(object).where(performance[column].notna(), None)
        )
    result = {
        "customers": args.customers,
        "days": args.days,
        "seed": args.seed,
        "scoring_date": scoring_date.isoformat(),
        "held_out_days": HOLD_BACK_DAYS,
        "held_out": held_out,
        "backtest": json.loads(performance.to_json(orient="records", date_format="iso")),
        "seconds": {
            "generate_load_staging_identity": round(prepared, 1),
            "train_with_backtest": round(trained, 1),
            "score": round(scored, 1),
        },
    }
    print(
        f"predictions bench: {args.customers:,} people, {args.days} days, scored at {scoring_date}, "
        f"last {HOLD_BACK_DAYS} days held out"
    )
    for name in ("churn", "lead_score"):
        r = held_out[name]
        print(
            f"  held-out {name:<10} AUC {r['auc']} vs baseline {r['baseline_auc']} "
            f"(precision@10% {r['precision_at_top_decile']})"
        )
    for line in performance_summary(training.performance):
        print(f"  backtest {line}")
    print(f"  train {trained:.1f} s, score {scored:.1f} s")
    out = REPO / "bench" / "results" / "predictions.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"  -> {out}")
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
