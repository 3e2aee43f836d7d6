"""Fast checks of the pieces: the point-in-time rule on hand-written rows, metrics, the
bundle store, and the generator's planted behaviour."""

from __future__ import annotations

import stat
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd
import pytest

from demo_data.behaviour import (
    add_repeat_purchases,
    person_engagement,
    plant_engagement_churn,
)
from ingestion.load import ensure_raw_schema
from predictions.backtest import (
    auc,
    auc_lift_interval,
    classifier_metrics,
    mean_lift_interval,
    precision_at_top_decile,
    worse_than_baseline,
)
from predictions.clv import TransactionalModel, calibrate_revenue_weights
from predictions.next_product import NO_PRODUCT, NextProductModel
from predictions.pipeline import (
    PredictionSettings,
    TrainedModels,
    _percentile,
    load_latest_models,
    save_models,
    snapshot_grid,
)
from predictions.snapshot import History, build_snapshot, loaded_history, rows_known_at_cutoff

T = date(2026, 3, 10)
LINEAGE = {"_source_file": "f.csv", "_line_number": 2, "_loaded_at": datetime(2026, 3, 20)}


def _insert(con, table: str, **row) -> None:
    row = {**row, **LINEAGE, "_line_number": LINEAGE["_line_number"] + len(row)}
    columns = ", ".join(row)
    con.execute(
        f"insert into raw.{table} ({columns}) values ({', '.join('?' * len(row))})",
        list(row.values()),
    )


@pytest.fixture
def warehouse(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_raw_schema(con)
    con.execute("create schema identity")
    con.execute(
        "create table identity.customer_map as select * from (values "
        "('billing', 'cus_1', 'c1'), ('email', 'ct_1', 'c1'), ('web', 'anon_1', 'c1'), "
        "('support', 'tk_1', 'c1'), ('survey', 'r_1', 'c1'), ('survey', 'r_2', 'c1')) "
        "as t(source_system, source_record_id, customer_id)"
    )
    _insert(con, "billing_customers", customer_id="cus_1", created_at=datetime(2026, 1, 1),
            updated_at=datetime(2026, 1, 1), _dt=date(2026, 3, 1))  # fmt: skip
    _insert(con, "email_contacts", contact_id="ct_1", email="a@example.com",
            created_at=datetime(2026, 1, 5), updated_at=datetime(2026, 1, 5),
            _dt=date(2026, 3, 1))  # fmt: skip
    yield con
    con.close()


def _invoice(con, invoice_id, status, updated, dt, paid=0, product="pro (monthly)"):
    _insert(con, "billing_invoices", invoice_id=invoice_id, customer_id="cus_1",
            status=status, currency="usd", amount_due_cents=4900, amount_paid_cents=paid,
            amount_refunded_cents=0, product=product, created_at=datetime(2026, 3, 1),
            updated_at=updated, paid_at=updated if status == "paid" else None, _dt=dt)  # fmt: skip


def _open_event(con, event_id, occurred, dt):
    _insert(con, "email_events", event_id=event_id, contact_id="ct_1", campaign_id=event_id,
            event_type="open", occurred_at=occurred, _dt=dt)  # fmt: skip


def test_snapshot_uses_only_rows_delivered_and_dated_by_the_end_of_the_day(warehouse):
    con = warehouse
    _invoice(con, "in_1", "open", datetime(2026, 3, 1), date(2026, 3, 1))
    # paid on T at 23:00, delivered on T: counts
    _invoice(con, "in_1", "paid", datetime(2026, 3, 10, 23), date(2026, 3, 10), paid=4900)
    # a later refund-free re-send (updated after T): the version at T still wins
    _invoice(con, "in_1", "void", datetime(2026, 3, 11, 1), date(2026, 3, 11))
    _open_event(con, "e_on_time", datetime(2026, 3, 9), date(2026, 3, 9))
    _open_event(
        con, "e_late", datetime(2026, 3, 8), date(2026, 3, 12)
    )  # happened by T, landed after
    _open_event(con, "e_future", datetime(2026, 3, 11), date(2026, 3, 11))
    _insert(con, "web_events", message_id="m1", type="page", anonymous_id="anon_1",
            event_timestamp=datetime(2026, 3, 10, 12), _dt=date(2026, 3, 10))  # fmt: skip

    # support load and NPS: the ticket as it stood at T (open; solved and rated bad after),
    # the answer submitted by T (the later one is not known yet)
    for status, rating, updated, dt in (
        ("open", None, datetime(2026, 3, 9), date(2026, 3, 9)),
        ("solved", "bad", datetime(2026, 3, 11), date(2026, 3, 11)),
    ):
        _insert(con, "support_tickets", ticket_id="tk_1", status=status, satisfaction=rating,
                created_at=datetime(2026, 3, 9), updated_at=updated, _dt=dt)  # fmt: skip
    _insert(con, "survey_responses", response_id="r_1", survey_id="s", score=3,
            submitted_at=datetime(2026, 3, 2), _dt=date(2026, 3, 2))  # fmt: skip
    _insert(con, "survey_responses", response_id="r_2", survey_id="s", score=10,
            submitted_at=datetime(2026, 3, 11), _dt=date(2026, 3, 11))  # fmt: skip

    row = build_snapshot(con, T).set_index("customer_id").loc["c1"]
    assert row["n_paid_invoices"] == 1 and row["revenue_usd_cents"] == 4900
    assert row["support_tickets"] == 1 and row["support_open_tickets"] == 1
    assert row["support_bad_ratings"] == 0 and row["days_since_support_ticket"] == 1
    assert row["nps_responses"] == 1 and row["nps_latest_score"] == 3
    assert row["email_opened"] == 1  # the late and the future opens are not known at T
    assert row["web_sessions"] == 1 and row["days_since_web_visit"] == 0
    assert row["days_since_last_payment"] == 0

    later = build_snapshot(con, date(2026, 3, 12)).set_index("customer_id").loc["c1"]
    assert later["n_paid_invoices"] == 0  # voided after T
    assert later["email_opened"] == 3
    assert later["support_open_tickets"] == 0 and later["support_bad_ratings"] == 1
    assert later["nps_responses"] == 2 and later["nps_latest_score"] == 10
    assert loaded_history(con) == History(date(2026, 3, 1), date(2026, 3, 12))


def test_clv_part_weights_are_learnt_from_realised_revenue():
    # BG/NBD overshoots by half, billing collects all the MRR it promises
    parts = pd.DataFrame({"subscription": [100.0, 200.0, 0.0, 0.0],
                          "transactional": [0.0, 0.0, 40.0, 80.0]})  # fmt: skip
    realised = pd.Series([100.0, 200.0, 20.0, 40.0])
    assert calibrate_revenue_weights(parts, realised) == pytest.approx((1.0, 0.5))
    # nothing one-off to learn from: that weight stays 1
    only_subscriptions = parts.assign(transactional=0.0)
    assert calibrate_revenue_weights(only_subscriptions, realised)[1] == 1.0


def test_metrics_and_baseline_verdicts():
    y = np.array([0, 0, 1, 1, 0, 0, 0, 0, 0, 1])
    assert auc(y, y * 2.0) == 1.0
    assert auc(np.zeros(5), np.arange(5)) is None
    assert precision_at_top_decile(y, np.arange(10.0)) == 1.0
    # worse only when the whole interval of the lift is below zero
    assert worse_than_baseline("churn", {"lift": -0.1, "lift_ci_low": -0.2, "lift_ci_high": -0.01})
    assert not worse_than_baseline("clv", {"lift": -5.0, "lift_ci_low": -9.0, "lift_ci_high": 2.0})
    assert worse_than_baseline("lead_score", {"lift": None, "lift_ci_high": None}) is None
    pct = _percentile(pd.Series([0.1, 0.2, None, 0.4]))
    assert list(pct.fillna(-1)) == [34, 67, -1, 100]


def test_lift_interval_separates_noise_from_a_real_loss():
    """A paired bootstrap of the backtest's test rows: two rankings of the same signal
    differ by noise (the interval straddles 0, not worse); a ranking that ignores the
    signal is worse beyond it; the interval matches the AUCs the metrics report."""
    rng = np.random.default_rng(7)
    y = rng.random(800) < 0.08
    signal = y * 0.8 + rng.normal(0, 1, 800)
    twin = signal + rng.normal(0, 0.3, 800)
    metrics = classifier_metrics(y, twin, signal, float(y.mean()))
    assert metrics["lift"] == pytest.approx(metrics["auc"] - metrics["baseline_auc"])
    assert metrics["lift_ci_low"] < 0 < metrics["lift_ci_high"]
    assert worse_than_baseline("churn", metrics) is False
    blind = classifier_metrics(y, rng.random(800), signal, float(y.mean()))
    assert blind["lift_ci_high"] < 0 and worse_than_baseline("churn", blind) is True
    assert auc_lift_interval(np.zeros(10, bool), np.arange(10), np.arange(10)) is None
    # RMSE lift: a model off by 10 on every row against an exact baseline
    low, high = mean_lift_interval(
        np.full(200, 100.0), np.zeros(200), lower_is_better=True, root=True
    )
    assert low == pytest.approx(-10.0) and high == pytest.approx(-10.0)


def test_snapshot_grid_keeps_enough_history_before_each_date():
    history = History(date(2026, 1, 1), date(2026, 4, 30))
    grid = snapshot_grid(history, date(2026, 3, 31), PredictionSettings())
    assert grid[0] == date(2026, 3, 31) and all(d >= date(2026, 1, 14) for d in grid)
    assert [(a - b).days for a, b in zip(grid, grid[1:], strict=False)] == [15] * (len(grid) - 1)


def test_model_bundles_are_private_and_the_newest_is_loaded(tmp_path):
    def bundle(version: str) -> TrainedModels:
        return TrainedModels(
            model_version=version, trained_at=datetime(2026, 3, 1), training_end=T,
            training_dates=[], churn=None, lead=None,
            transactional=TransactionalModel(method="run rate", reason="test"),
            next_product=None, pooled_monthly_churn=0.05,
        )  # fmt: skip

    folder = tmp_path / "models"
    save_models(bundle("20260301T000000Z-2026-03-01"), folder)
    path = save_models(bundle("20260308T000000Z-2026-03-08"), folder)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert load_latest_models(folder).model_version == "20260308T000000Z-2026-03-08"
    assert load_latest_models(tmp_path / "absent") is None


def test_generator_plants_engagement_that_lowers_churn_and_brings_buyers_back():
    people = np.arange(20_000)
    engagement = person_engagement(7, people)
    assert np.array_equal(engagement, person_engagement(7, people))  # stateless, per person
    assert 0.9 < engagement.mean() < 1.1
    month = 30 * 86_400_000
    change, _ = plant_engagement_churn(
        7, people, np.ones(len(people), bool), np.full(len(people), -1), np.zeros(len(people)),
        np.zeros(len(people), np.int64), 3 * month, np.random.default_rng(1), cancel_code=2,
    )  # fmt: skip
    engaged = engagement > np.median(engagement)
    assert (change[~engaged] == 2).mean() > 2 * (change[engaged] == 2).mean()
    buyers, _ = add_repeat_purchases(
        7, people, people, np.zeros(len(people), np.int64), 4 * month, np.random.default_rng(2)
    )
    purchases = np.bincount(buyers, minlength=len(people))
    assert purchases[engaged].mean() > 1.3 * purchases[~engaged].mean()


@pytest.mark.parametrize("happened_at", [None, "occurred_at"])
def test_rows_known_at_cutoff_keeps_the_row_a_rank_over_every_row_would(happened_at):
    # Only keys known more than once (and NULL keys) are ranked; the rest pass as they are.
    con = duckdb.connect()
    con.execute(
        "create table params as select date '2026-03-02' as as_of_date, "
        "timestamp '2026-03-03' as cutoff"
    )
    rows = [  # key, value, _dt, _source_file, _line_number, dated
        ("single", "only", "2026-03-01", "a.csv", 1, "2026-03-01 10:00"),
        ("twice", "first delivery", "2026-03-01", "a.csv", 2, "2026-03-01 11:00"),
        ("twice", "later delivery", "2026-03-02", "b.csv", 1, "2026-03-01 12:00"),
        ("same day", "line 3", "2026-03-02", "b.csv", 3, "2026-03-02 09:00"),
        ("same day", "line 2", "2026-03-02", "b.csv", 2, "2026-03-02 09:00"),
        ("too late", "after the as-of day", "2026-03-04", "c.csv", 1, "2026-03-01 09:00"),
        (None, "no key 1", "2026-03-01", "a.csv", 5, "2026-03-01 08:00"),
        (None, "no key 2", "2026-03-02", "b.csv", 9, "2026-03-02 08:00"),
    ]
    dated = happened_at or "updated_at"
    con.execute(
        f"create table events (id varchar, value varchar, _dt date, _source_file varchar, "
        f"_line_number integer, {dated} timestamp)"
    )
    con.executemany("insert into events values (?, ?, ?, ?, ?, ?)", rows)
    order = (
        "_dt, _source_file, _line_number"
        if happened_at
        else "updated_at desc, _dt desc, _source_file desc, _line_number desc"
    )
    reference = con.execute(
        f"select id, value from (select *, row_number() over (partition by id order by {order}) "
        f"as r from events, params where _dt <= as_of_date and {dated} < cutoff) where r = 1 "
        "order by id nulls first"
    ).fetchall()

    known = con.execute(
        f"select id, value from {rows_known_at_cutoff('events', 'id', happened_at)} as t "
        "order by id nulls first"
    ).fetchall()

    assert known == reference
    assert len(known) == 4  # single, twice, same day, and one row for the NULL key


def _recommend_by_pandas(model: NextProductModel, owned: pd.DataFrame, customers: pd.Index):
    """The recommendation spelt out in pandas, row by row of its definition: the oracle."""
    have = owned.groupby("customer_id")["product"].agg(set)
    products, scores = [], []
    for customer in customers:
        owns = have.get(customer, set())
        sources = owns or {NO_PRODUCT}
        rates = model.transitions[
            model.transitions["from_product"].isin(sources)
            & ~model.transitions["product"].isin(owns)
        ]
        if rates.empty:
            products.append(None)
            scores.append(np.nan)
            continue
        best = rates.groupby("product")["rate"].max().sort_index()
        products.append(best.idxmax())  # the first product (by name) of the highest rate
        scores.append(best.max())
    return products, scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_next_best_product_is_the_unowned_product_with_the_highest_rate(seed):
    rng = np.random.default_rng(seed)
    catalogue = [f"p{i}" for i in range(6)]
    # rates on a coarse grid, so that ties between products are common
    transitions = pd.DataFrame(
        [
            (a, b, float(rng.integers(1, 4)) / 10, 10)
            for a in [NO_PRODUCT, *catalogue]
            for b in catalogue
            if a != b and rng.random() < 0.6
        ],
        columns=["from_product", "product", "rate", "owners"],
    )
    model = NextProductModel(transitions=transitions, popularity=pd.Series(dtype=float))
    customers = pd.Index([f"c{i:03d}" for i in range(300)], name="customer_id")
    owned = pd.DataFrame(
        [
            (c, p)
            for c in customers[:250]  # the last 50 own nothing yet
            for p in catalogue
            if rng.random() < 0.3
        ]
        # an owner the scoring date does not know: never recommended to
        + [("gone", "p1")],
        columns=["customer_id", "product"],
    )

    result = model.recommend(owned, customers)

    products, scores = _recommend_by_pandas(model, owned, customers)
    assert list(result.index) == list(customers)
    assert result["next_best_product"].tolist() == products
    np.testing.assert_array_equal(result["next_best_product_score"].to_numpy(float), scores)
    assert result["next_best_product"].notna().sum() > 200


def test_next_best_product_with_nobody_owning_anything_or_nobody_to_score():
    transitions = pd.DataFrame(
        {"from_product": [NO_PRODUCT, "a"], "product": ["a", "b"], "rate": [0.2, 0.5], "owners": 9}
    )
    model = NextProductModel(transitions=transitions, popularity=pd.Series(dtype=float))
    nobody_owns = pd.DataFrame({"customer_id": pd.Series(dtype=object), "product": []})
    customers = pd.Index(["x", "y"], name="customer_id")

    first = model.recommend(nobody_owns, customers)
    assert first["next_best_product"].tolist() == ["a", "a"]
    assert first["next_best_product_score"].tolist() == [0.2, 0.2]

    empty = model.recommend(nobody_owns, pd.Index([], name="customer_id", dtype=object))
    assert empty.empty


def test_email_features_count_distinct_campaigns_across_a_customers_contacts(warehouse):
    # The snapshot counts one row per customer, campaign and event type; the definition is
    # distinct campaigns over every event: a campaign reaching two of one customer's
    # contacts, opened twice, or opened in two windows counts once per figure.
    con = warehouse
    con.execute("insert into identity.customer_map values ('email', 'ct_2', 'c1')")
    _insert(con, "email_contacts", contact_id="ct_2", email="b@example.com",
            created_at=datetime(2026, 1, 5), updated_at=datetime(2026, 1, 5),
            _dt=date(2026, 3, 1))  # fmt: skip
    events = [  # event_id, contact, campaign, type, occurred
        ("d1", "ct_1", "spring", "delivered", datetime(2026, 3, 1)),
        ("d2", "ct_2", "spring", "delivered", datetime(2026, 3, 1)),
        ("o1", "ct_1", "spring", "open", datetime(2026, 1, 20)),  # 31-90 days before
        ("o2", "ct_2", "spring", "open", datetime(2026, 3, 5)),  # and within 30 days
        ("o3", "ct_1", "winter", "open", datetime(2026, 1, 2)),  # 31-90 days only
        ("o4", "ct_1", "winter", "open", datetime(2026, 1, 3)),
        ("o5", "ct_2", None, "open", datetime(2026, 3, 9)),  # no campaign: engagement only
        ("c1", "ct_2", "spring", "click", datetime(2026, 2, 1)),
        ("c2", "ct_1", "spring", "click", datetime(2026, 3, 2)),
        ("u1", "ct_1", None, "unsubscribe", datetime(2026, 3, 3)),
    ]
    for event_id, contact, campaign, kind, occurred in events:
        _insert(con, "email_events", event_id=event_id, contact_id=contact,
                campaign_id=campaign, event_type=kind, occurred_at=occurred,
                _dt=date(2026, 3, 9))  # fmt: skip
    cutoff = "timestamp '2026-03-11'"
    reference = con.execute(f"""
        select
            count(distinct campaign_id) filter (where event_type = 'delivered'),
            count(distinct campaign_id) filter (where event_type = 'open'),
            count(distinct campaign_id) filter (where event_type = 'click'),
            count(distinct campaign_id) filter (
                where event_type = 'delivered' and occurred_at >= {cutoff} - interval 30 day),
            count(distinct campaign_id) filter (
                where event_type = 'open' and occurred_at >= {cutoff} - interval 30 day),
            count(distinct campaign_id) filter (
                where event_type = 'open' and occurred_at >= {cutoff} - interval 90 day
                    and occurred_at < {cutoff} - interval 30 day),
            count(distinct campaign_id) filter (
                where event_type = 'click' and occurred_at >= {cutoff} - interval 30 day),
            bool_or(event_type in ('unsubscribe', 'spam_complaint')),
            date_diff('day', max(occurred_at) filter (where event_type in ('open', 'click')),
                date '2026-03-10')
        from raw.email_events
    """).fetchone()

    row = build_snapshot(con, T).set_index("customer_id").loc["c1"]

    columns = ["email_delivered", "email_opened", "email_clicked", "email_delivered_30d",
               "email_opened_30d", "email_opened_31_90d", "email_clicked_30d",
               "has_unsubscribed", "days_since_email_engagement"]  # fmt: skip
    assert tuple(row[c] for c in columns) == reference
    assert reference == (1, 2, 1, 1, 1, 2, 1, True, 1)


@pytest.mark.parametrize("seed", [0, 1])
def test_rfm_summary_matches_lifetimes(seed):
    # predictions.clv computes the BG/NBD inputs itself (importing lifetimes costs a
    # night ~1 s); lifetimes' own summary is the definition
    from lifetimes.utils import summary_data_from_transaction_data

    from predictions.clv import _rfm_summary

    rng = np.random.default_rng(seed)
    rows = 2000
    transactions = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in rng.integers(0, 300, rows)],
            "paid_date": [
                date(2026, 1, 1) + pd.Timedelta(days=int(d)) for d in rng.integers(0, 120, rows)
            ],  # fmt: skip
            "net_usd_cents": rng.integers(-500, 50_000, rows).astype(float),
        }
    )
    for as_of in (date(2026, 2, 15), date(2026, 6, 1)):  # purchases after it, and none
        daily = (
            transactions.assign(paid_date=pd.to_datetime(transactions["paid_date"]))
            .groupby(["customer_id", "paid_date"], as_index=False)["net_usd_cents"]
            .sum()
        )
        expected = summary_data_from_transaction_data(
            daily,
            "customer_id",
            "paid_date",
            monetary_value_col="net_usd_cents",
            observation_period_end=pd.Timestamp(as_of),
            freq="D",
        )
        expected["total_usd_cents"] = daily.groupby("customer_id")["net_usd_cents"].sum()

        pd.testing.assert_frame_equal(_rfm_summary(transactions, as_of), expected, check_exact=True)


@pytest.mark.parametrize(
    ("bgf_params", "ggf_params"),
    [
        # lifetimes' CDNOW example, and a model whose hypergeometric term overflows
        ({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, {"p": 6.25, "q": 3.74, "v": 15.4}),
        ({"r": 2.5, "alpha": 0.5, "a": 1.5, "b": 40.0}, {"p": 1.2, "q": 1.5, "v": 900.0}),
    ],
)
def test_clv_predictions_match_lifetimes(bgf_params, ggf_params):
    # scoring computes BG/NBD and Gamma-Gamma's expectations itself (no lifetimes import)
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    rng = np.random.default_rng(3)
    frequency = pd.Series(rng.integers(0, 200, 500).astype(float))
    age = pd.Series(rng.integers(1, 400, 500).astype(float))
    recency = pd.Series(np.floor(rng.random(500) * age.to_numpy())).where(frequency > 0, 0.0)
    spend = pd.Series(rng.random(500) * 10_000 + 1)
    model = TransactionalModel("BG/NBD", None, bgf_params, ggf_params)
    bgf, ggf = BetaGeoFitter(), GammaGammaFitter()
    bgf.params_, ggf.params_ = pd.Series(bgf_params), pd.Series(ggf_params)

    with np.errstate(all="ignore"):
        expected = bgf.conditional_expected_number_of_purchases_up_to_time(
            360, frequency, recency, age
        )
        purchases = model.expected_purchases(360, frequency, recency, age)
    pd.testing.assert_series_equal(purchases, expected, check_exact=True)
    pd.testing.assert_series_equal(
        model.expected_order_value(frequency, spend),
        ggf.conditional_expected_average_profit(frequency, spend),
        check_exact=True,
    )
