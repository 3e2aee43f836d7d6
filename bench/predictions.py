"""Benchmark the predictive traits the way the held-out check scores them, on several zones.

    .venv/bin/python bench/predictions.py                    # every zone below (~15 min)
    .venv/bin/python bench/predictions.py --zones default-5k # one of them
    .venv/bin/python bench/predictions.py --work-dir /tmp/pz # keep (and reuse) the loaded zones

A model tuned to one generator proves little, so the zones differ in seed, size, length
and habits of the data (`cdp generate --hard / --habits`). For each zone:

1. Generate it (the default end date, start = end - days, as `cdp generate` does) and hold
   back its last 30 days.
2. Load the other days for real (ingestion, dbt staging, identity resolution), then train
   (out-of-time backtest included) and score every customer as of the last day loaded, T:
   the same calls the Dagster assets make. Timed.
3. Load the held-back 30 days into a copy and score the predictions made at T against what
   happened in (T, T+30]: `churn_probability` against subscribers who lost their paid
   subscription, `lead_score` against first payments, the 12-month CLV's first month
   against realised revenue. Next to naive baselines:
   - churn: the old rule-based churn risk of customer_segments (high on a payment
     problem, medium when the recency score is 1-2, else low; recomputed from T's
     snapshot) and recency alone;
   - lead: the naive count of the issue's held-out check, web sessions + half the email
     opens (all-time counts, as customer_360 shows them);
   - CLV: the old rule, MRR x (1 - pooled monthly churn).
   Outcomes use T's identity map, so a later merge cannot move a customer between sides.
Prints a table and writes bench/results/predictions.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from demo_data.loaded_zone import ZoneSpec, prepare_held_out_zone  # noqa: E402
from predictions.backtest import auc, precision_at_top_decile  # noqa: E402
from predictions.classifiers import churn_baseline, lead_baseline  # noqa: E402
from predictions.outcomes import (  # noqa: E402
    SnapshotCache,
    churn_examples,
    lead_examples,
    realised_revenue,
)
from predictions.pipeline import (  # noqa: E402
    PredictionSettings,
    performance_summary,
    predict_revenue,
    score_customers,
    train_models,
)
from predictions.snapshot import loaded_history  # noqa: E402

HOLD_BACK_DAYS = 30


Zone = ZoneSpec

ZONES = (
    Zone("default-5k", seed=21, customers=5000, days=150),
    Zone("hard-3k", seed=3, customers=3000, days=120, hard=True),
    Zone("inboxes-4k", seed=11, customers=4000, days=135, habits="shared-inboxes,surname-changes"),
    Zone("no-habits-3k", seed=42, customers=3000, days=120, habits="none"),
    # a seed no model choice was tuned on: a check that changes generalise
    Zone("fresh-seed-4k", seed=77, customers=4000, days=130),
)


def _rounded(value):
    return (
        None
        if value is None or (isinstance(value, float) and np.isnan(value))
        else round(float(value), 4)
    )


def prepare_zone(zone: Zone, work: Path) -> dict:
    return prepare_held_out_zone(zone, work, HOLD_BACK_DAYS)


def old_churn_risk(snapshot: pd.DataFrame, population: pd.DataFrame) -> np.ndarray:
    """customer_segments' rule for paying customers before the model: at-risk (a payment
    problem) -> high = 2, recency score 1-2 (the two oldest quintiles of days since the
    last purchase among payers) -> medium = 1, else low = 0."""
    payers = snapshot[snapshot["n_paid_invoices"] > 0]
    # ntile(5) over recency, 5 = most recent, as int_customer__rfm_scores ranks it
    recency_score = (
        pd.qcut((-payers["days_since_last_payment"]).rank(method="first"), 5, labels=False).astype(
            int
        )
        + 1
    )
    score = pd.Series(recency_score.to_numpy(), index=payers["customer_id"])
    rs = score.reindex(population["customer_id"]).to_numpy(float)
    medium = np.where(np.nan_to_num(rs, nan=1) <= 2, 1, 0)
    return np.where(population["has_payment_problem"].to_numpy(bool), 2, medium).astype(float)


def bench_zone(zone: Zone, work: Path) -> dict:
    info = prepare_zone(zone, work)
    warehouse, full = work / "until_t.duckdb", work / "full.duckdb"
    clock = time.perf_counter()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        training = train_models(con, PredictionSettings())
        trained = time.perf_counter() - clock
        clock = time.perf_counter()
        scores = score_customers(con, training.models).set_index("customer_id")
        scored = time.perf_counter() - clock
        scoring_date = scores["scoring_date"].iloc[0]
    with duckdb.connect(str(full), read_only=True) as con:
        cache = SnapshotCache(con, loaded_history(con))
        snapshot = cache.snapshot(scoring_date)
        churn = churn_examples(cache, scoring_date, HOLD_BACK_DAYS)
        leads = lead_examples(cache, scoring_date, HOLD_BACK_DAYS)
        revenue = realised_revenue(cache, scoring_date, HOLD_BACK_DAYS)

    churn_p = scores["churn_probability"].reindex(churn["customer_id"]).to_numpy(float)
    lead_p = scores["lead_score"].reindex(leads["customer_id"]).to_numpy(float)
    y_churn, y_lead = churn["churned"].to_numpy(bool), leads["converted"].to_numpy(bool)
    snap = snapshot.set_index("customer_id")
    payers = snap.index[(snap["n_paid_invoices"] > 0) | (snap["is_subscribed"] > 0)]
    actual = revenue.reindex(payers).fillna(0)
    # The first of the 12 months, as the model predicts it (both parts, weighted) beside
    # the old rule, MRR x (1 - pooled monthly churn).
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cache_t = SnapshotCache(con, loaded_history(con))
        predicted_month = predict_revenue(training.models, cache_t, scoring_date, 1)
    predicted_month = (predicted_month["subscription"] + predicted_month["transactional"]).reindex(
        payers
    )
    pooled = training.models.pooled_monthly_churn
    old_rule = snap["mrr_usd_cents"].reindex(payers) * (1 - pooled)
    held_out = {
        "churn": {
            "customers": len(churn),
            "churned": int(y_churn.sum()),
            "auc": _rounded(auc(y_churn, churn_p)),
            "precision_at_top_decile": _rounded(precision_at_top_decile(y_churn, churn_p)),
            "old_rule_auc": _rounded(auc(y_churn, old_churn_risk(snapshot, churn))),
            "recency_auc": _rounded(auc(y_churn, churn_baseline(churn))),
        },
        "lead_score": {
            "people": len(leads),
            "converted": int(y_lead.sum()),
            "auc": _rounded(auc(y_lead, lead_p)),
            "precision_at_top_decile": _rounded(precision_at_top_decile(y_lead, lead_p)),
            "naive_count_auc": _rounded(auc(y_lead, lead_baseline(leads))),
            "naive_count_precision_at_top_decile": _rounded(
                precision_at_top_decile(y_lead, lead_baseline(leads))
            ),
        },
        "clv_first_month": {
            "payers": len(payers),
            "rmse_usd_cents": _rounded(np.sqrt(((predicted_month - actual) ** 2).mean())),
            "old_rule_rmse_usd_cents": _rounded(np.sqrt(((old_rule - actual) ** 2).mean())),
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
    return {
        "zone": zone.__dict__,
        "scoring_date": str(scoring_date),
        "held_out": held_out,
        "backtest": json.loads(performance.to_json(orient="records", date_format="iso")),
        "backtest_summary": performance_summary(training.performance),
        "seconds": {
            "generate_load_staging_identity": info["seconds"],
            "train_with_backtest": round(trained, 1),
            "score": round(scored, 1),
        },
    }


def _summary(results: list[dict]) -> dict:
    def values(model, key):
        return [r["held_out"][model][key] for r in results if r["held_out"][model][key] is not None]

    out = {}
    for model, keys in (
        ("churn", ("auc", "old_rule_auc", "recency_auc")),
        ("lead_score", ("auc", "naive_count_auc")),
        ("clv_first_month", ("rmse_usd_cents", "old_rule_rmse_usd_cents")),
    ):
        out[model] = {
            k: {"min": min(values(model, k)), "mean": round(float(np.mean(values(model, k))), 4)}
            for k in keys
            if values(model, k)
        }
    out["lead_at_least_naive_count_in_every_zone"] = all(
        r["held_out"]["lead_score"]["auc"] >= r["held_out"]["lead_score"]["naive_count_auc"]
        for r in results
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--zones", default=",".join(z.name for z in ZONES), help="comma-separated zone names"
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the zones here")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the json")
    args = parser.parse_args(argv)
    by_name = {z.name: z for z in ZONES}
    zones = [by_name[n.strip()] for n in args.zones.split(",") if n.strip()]
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="cdp-bench-predictions-"))
    results = []
    for zone in zones:
        if args.prepare_only:
            print(zone.name, prepare_zone(zone, work / zone.name), flush=True)
            continue
        r = bench_zone(zone, work / zone.name)
        results.append(r)
        c, lead, clv = (
            r["held_out"]["churn"],
            r["held_out"]["lead_score"],
            r["held_out"]["clv_first_month"],
        )
        print(
            f"{zone.name:<13} scored at {r['scoring_date']}: "
            f"churn AUC {c['auc']} (old rule {c['old_rule_auc']}, recency {c['recency_auc']}; "
            f"{c['churned']}/{c['customers']}) | lead AUC {lead['auc']} (naive count "
            f"{lead['naive_count_auc']}; {lead['converted']}/{lead['people']}) | CLV 1st month "
            f"RMSE {clv['rmse_usd_cents']} (old rule {clv['old_rule_rmse_usd_cents']}) | "
            f"train {r['seconds']['train_with_backtest']} s",
            flush=True,
        )
        for line in r["backtest_summary"]:
            print(f"    backtest {line}", flush=True)
    if args.prepare_only:
        return 0
    result = {
        "held_out_days": HOLD_BACK_DAYS,
        "summary": _summary(results),
        "zones": results,
    }
    print(json.dumps(result["summary"], indent=1))
    if not args.no_write:
        out = REPO / "bench" / "results" / "predictions.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"-> {out}")
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
