"""Incremental identity equals a full re-resolution with the same model, up to id labels.

Four days of staging states for ~150 made-up people: day 1 resolved in full (the model is
trained and kept); days 2-4 resolved incrementally, each bringing new people, late records
of existing people, re-delivered (unchanged) rows, a record that bridges two customers, a
record that changes to another person and a deleted record; on day 4 records change only
where matching does not look (their source `updated_at`), which re-clusters nothing but
still reaches the golden records. After every day a second warehouse resolves the same
staging in full with the kept model; both must group the records the same way and give
the same golden records. A third warehouse resolves every day in full too but keeps its
identity tables from day to day, as `cdp run --full-identity` does: a nightly run rebuilds
only changed customers' golden records and writes only changed rows, so every identity
table of the two must be equal row for row, ids and timestamps included.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from identity.config import IdentityConfig
from identity.pipeline import resolve_identities
from tests.identity.staging_tables import STAGING_COLUMNS, create_staging_tables, insert_rows

FIRST = "ada grace alan edsger barbara donald margaret ken dennis frances john radia tim linus guido bjarne anita katherine mary hedy".split()
LAST = "lovelace hopper turing dijkstra liskov knuth hamilton thompson ritchie allen backus perlman berners torvalds rossum stroustrup borg johnson jackson lamarr".split()
CITIES = "leeds york bath derby hull ely wells truro".split()
DAY_1 = datetime(2026, 3, 1, 2)
# the made-up history doubles in three days; real nights add a few percent, within the
# default growth (0.2) after which a nightly retrains on its own
GROWING = IdentityConfig().with_overrides(full_identity_growth=2.0)


def _people(rng: random.Random, n: int) -> list[dict]:
    people = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        people.append(
            {
                "i": i,
                "first": first,
                "last": last,
                "email": f"{first}.{last}{i}@mail.test",
                "work": f"{first[0]}{last}@firm{i % 7}.test",
                "phone": f"+44 7700 9{i:05d}",
                "city": rng.choice(CITIES),
                "street": f"{rng.randint(1, 99)} {rng.choice(LAST).title()} Road",
                "postcode": f"LS{i % 9} {i:03d}",
            }
        )
    return people


def _records(person: dict, rng: random.Random) -> dict[str, list[dict]]:
    """A person's rows per staging table (some people lack some sources)."""
    i, t = person["i"], datetime(2026, 2, 1)
    rows: dict[str, list[dict]] = {table: [] for table in STAGING_COLUMNS}
    if i % 4 != 3:
        rows["stg_billing__customers"].append(
            {
                "customer_id": f"cus_{i}",
                "user_id": f"u_{i}",
                "email": person["email"],
                "name": f"{person['first'].title()} {person['last'].title()}",
                "phone": person["phone"],
                "address_line1": person["street"],
                "address_city": person["city"],
                "address_postal_code": person["postcode"],
                "address_country": "GB",
                "is_deleted": False,
                "created_at": t,
                "updated_at": t,
            }
        )
    if i % 3 != 2:
        rows["stg_email__contacts"].append(
            {
                "contact_id": f"ct_{i}",
                # a work address: only the name, phone and city say it is the same person
                "email": person["work"] if i % 2 else person["email"],
                "first_name": person["first"].title(),
                "last_name": person["last"].title(),
                "phone": person["phone"] if rng.random() < 0.6 else None,
                "city": person["city"],
                "country": "GB",
                "is_subscribed": True,
                "created_at": t,
                "updated_at": t,
            }
        )
    if i % 5 in (0, 1):
        rows["stg_web__events"].append(
            {
                "message_id": f"m_{i}",
                "event_type": "identify",
                "anonymous_id": f"anon_{i}",
                "user_id": f"u_{i}" if i % 4 != 3 else None,
                "trait_email": person["email"],
                "occurred_at": t,
                "received_at": t,
            }
        )
    return rows


def _days() -> list[dict[str, pd.DataFrame]]:
    """Three cumulative staging states."""
    rng = random.Random(11)
    people = _people(rng, 150)
    rows = [_records(p, rng) for p in people]
    # person 60's contact (work address, no phone, another city) cannot be told from the
    # billing record until day 2's web identity carries both the user id and that address
    rows[60]["stg_email__contacts"][0].update(email=people[60]["work"], phone=None, city="rye")
    rows[60]["stg_web__events"][0]["trait_email"] = people[60]["work"]

    def state(selected: list[tuple[int, str]]) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {table: [] for table in STAGING_COLUMNS}
        for person, table in selected:
            out[table].extend(dict(r) for r in rows[person][table])
        return out

    def take(people_range, tables=tuple(STAGING_COLUMNS)):
        return [(i, t) for i in people_range for t in tables]

    contacts, billing, web = "stg_email__contacts", "stg_billing__customers", "stg_web__events"
    day1 = state(take(range(0, 80), (billing, contacts)) + take(range(0, 40), (web,)))
    # day 2: new people, late web identities of old people (bridging billing and contact)
    day2 = state(
        take(range(0, 80), (billing, contacts)) + take(range(0, 80), (web,)) + take(range(80, 110))
    )
    # day 3: everyone else; a contact moves to another person's details (a split), a
    # billing row is deleted upstream, a contact appears on a family inbox with another
    # first name (the address becomes shared)
    day3 = state(take(range(0, 150)))
    moved = next(r for r in day3[contacts] if r["contact_id"] == "ct_4")
    other = people[97]
    moved.update(
        email=other["email"],
        first_name=other["first"].title(),
        last_name=other["last"].title(),
        phone=other["phone"],
        city=other["city"],
        updated_at=datetime(2026, 3, 3),
    )
    day3[billing] = [r for r in day3[billing] if r["customer_id"] != "cus_9"]
    family = dict(next(r for r in day3[contacts] if r["contact_id"] == "ct_12"))
    family.update(contact_id="ct_family", first_name="Zebedee", phone=None)
    day3[contacts].append(family)
    # day 4: five contacts re-delivered with only a later updated_at (an active person)
    day4 = {t: [dict(r) for r in v] for t, v in day3.items()}
    for row in day4[contacts]:
        if row["contact_id"] in {f"ct_{i}" for i in range(20, 25)}:
            row["updated_at"] = datetime(2026, 3, 4)
    # day 5: the family-inbox contact is gone upstream (its values stop being shared:
    # a nightly run re-examines only the values the day's records touch, and last run's
    # shared ones)
    day5 = {t: [dict(r) for r in v] for t, v in day4.items()}
    day5[contacts] = [r for r in day5[contacts] if r["contact_id"] != "ct_family"]
    return [{t: pd.DataFrame(v) for t, v in d.items()} for d in (day1, day2, day3, day4, day5)]


def _load(con: duckdb.DuckDBPyConnection, state: dict[str, pd.DataFrame]) -> None:
    create_staging_tables(con)
    for table, frame in state.items():
        insert_rows(con, table, frame)


def _partition(con: duckdb.DuckDBPyConnection) -> set[frozenset[str]]:
    rows = con.sql(
        "select customer_id, list(source_system || ':' || source_record_id) "
        "from identity.customer_map group by 1"
    ).fetchall()
    return {frozenset(keys) for _, keys in rows}


def _golden(con: duckdb.DuckDBPyConnection) -> set[tuple]:
    """Golden values per customer, the customer named by its records (labels aside)."""
    return {
        (tuple(keys), *values)
        for keys, *values in con.sql("""
            select list(m.source_system || ':' || m.source_record_id
                        order by m.source_system || ':' || m.source_record_id),
                   g.full_name, g.email, g.phone, g.address_line1, g.billing_user_id,
                   g.n_source_records, g.first_seen_at, g.last_seen_at
            from identity.customer_map m join identity.golden_customers g using (customer_id)
            group by all
        """).fetchall()
    }


IDENTITY_TABLES = (
    "identity_records",
    "customer_map",
    "golden_customers",
    "id_registry",
    "merge_log",
    "split_log",
    "refused_merges",
    "match_evidence",
    "shared_values",
)


def _table(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    return sorted(con.sql(f"select * from identity.{table}").fetchall(), key=repr)


def test_incremental_runs_equal_full_runs_with_the_same_model(tmp_path):
    nightly = duckdb.connect(str(tmp_path / "nightly.duckdb"))
    full = duckdb.connect(str(tmp_path / "full.duckdb"))
    full_kept = duckdb.connect(str(tmp_path / "full_kept.duckdb"))
    modes, reclustered, normalised, shared_counts = [], [], [], []
    for day, state in enumerate(_days()):
        run_at = DAY_1 + timedelta(days=day)
        _load(nightly, state)
        summary = resolve_identities(nightly, GROWING, run_at=run_at)
        modes.append(summary.mode)
        reclustered.append((summary.records_reclustered, summary.records_in))
        normalised.append(summary.records_normalised)
        shared_counts.append(summary.shared_value_records)
        if day == 0:
            model = {
                t: nightly.sql(f"select * from identity.{t}").df()
                for t in ("model_parameters", "term_frequencies")
            }
        full.execute("drop schema if exists identity cascade")
        full.execute("create schema identity")
        for table, frame in model.items():
            full.register("_model", frame)
            full.execute(f"create table identity.{table} as select * from _model")
            full.unregister("_model")
        _load(full, state)
        resolve_identities(full, GROWING, run_at=run_at, full_identity=True, reuse_model=True)
        assert _partition(nightly) == _partition(full), f"day {day + 1}"
        assert _golden(nightly) == _golden(full), f"day {day + 1}"
        if day == 0:
            # day 1 is a full run in both: the kept-state warehouse starts from its tables
            full_kept.execute("create schema identity")
            for (table,) in nightly.sql(
                "select table_name from duckdb_tables() where schema_name = 'identity'"
            ).fetchall():
                full_kept.register(
                    "_day1", nightly.sql(f"select * from identity.{table}").fetch_arrow_table()
                )
                full_kept.execute(f"create table identity.{table} as select * from _day1")
                full_kept.unregister("_day1")
            continue
        _load(full_kept, state)
        resolve_identities(full_kept, GROWING, run_at=run_at, full_identity=True, reuse_model=True)
        for table in IDENTITY_TABLES:
            assert _table(nightly, table) == _table(full_kept, table), f"day {day + 1}: {table}"
    assert modes == ["full", "incremental", "incremental", "incremental", "incremental"]
    assert shared_counts[2] > shared_counts[4], shared_counts
    # day 4 changed only survivorship columns: nothing to re-cluster, golden records updated
    assert reclustered[3] == (0, reclustered[2][1]), reclustered
    # a nightly run normalises only new and changed source rows (day 4: the contacts among
    # ct_20..ct_24 that exist), the rest comes from last run's identity records; the first
    # run normalises all
    edited = _days()[3]["stg_email__contacts"]["contact_id"].isin(
        [f"ct_{i}" for i in range(20, 25)]
    )
    assert normalised[0] == reclustered[0][1] and normalised[3] == edited.sum() > 0, normalised
    assert all(n < total for n, (_, total) in zip(normalised[1:], reclustered[1:], strict=True)), (
        normalised
    )
    last_seen = nightly.sql(
        "select max(g.last_seen_at) from identity.customer_map m "
        "join identity.golden_customers g using (customer_id) "
        "where m.source_record_id in ('ct_20', 'ct_21', 'ct_22', 'ct_23', 'ct_24')"
    ).fetchall()[0][0]
    assert last_seen == datetime(2026, 3, 4)
    # the nightly runs re-clustered part of the records, not all of them
    assert all(done < total for done, total in reclustered[1:]), reclustered
    # the day-2 web identities bridged billing and contact customers: merges were logged
    # with the older id surviving; the moved contact left its customer (a split or a move)
    merges = nightly.sql("select count(*) from identity.merge_log").fetchall()[0][0]
    assert merges > 0, reclustered
    print("records re-clustered / records per nightly:", reclustered)
    nightly.close()
    full.close()
    full_kept.close()


def test_full_identity_retrains_and_a_stale_model_forces_a_full_run(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    states = _days()
    _load(con, states[0])
    assert resolve_identities(con, GROWING, run_at=DAY_1).mode == "full"
    _load(con, states[1])
    # 55 % more records than the model saw: the default settings retrain
    assert resolve_identities(con, run_at=DAY_1 + timedelta(days=1)).mode == "full"
    summary = resolve_identities(con, run_at=DAY_1 + timedelta(days=1), full_identity=True)
    assert summary.mode == "full"
    assert summary.model_trained_at == str(pd.Timestamp(DAY_1 + timedelta(days=1)))
    # a week after the last training the nightly retrains on its own
    assert resolve_identities(con, run_at=DAY_1 + timedelta(days=9)).mode == "full"
    assert resolve_identities(con, run_at=DAY_1 + timedelta(days=10)).mode == "incremental"
    con.close()


def test_a_nightly_after_an_upgrade_that_adds_a_record_column_builds_every_golden_record(
    tmp_path,
):
    """Last run's identity records lack a column this version makes: every record is
    normalised again and cannot be compared with last run's, so the nightly builds the
    golden records from all records, not only from those that may have changed."""
    days = _days()
    nightly = duckdb.connect(str(tmp_path / "nightly.duckdb"))
    _load(nightly, days[0])
    resolve_identities(nightly, GROWING, run_at=DAY_1)
    model = {
        t: nightly.sql(f"select * from identity.{t}").df()
        for t in ("model_parameters", "term_frequencies")
    }
    nightly.execute("alter table identity.identity_records drop column display_city")
    _load(nightly, days[1])
    summary = resolve_identities(nightly, GROWING, run_at=DAY_1 + timedelta(days=1))
    assert summary.mode == "incremental" and summary.records_normalised == summary.records_in
    full = duckdb.connect(str(tmp_path / "full.duckdb"))
    full.execute("create schema identity")
    for table, frame in model.items():
        full.register("_model", frame)
        full.execute(f"create table identity.{table} as select * from _model")
        full.unregister("_model")
    _load(full, days[1])
    resolve_identities(
        full, GROWING, run_at=DAY_1 + timedelta(days=1), full_identity=True, reuse_model=True
    )
    assert _partition(nightly) == _partition(full)
    assert _golden(nightly) == _golden(full)
    assert nightly.sql(
        "select count(*) = (select count(distinct customer_id) from identity.customer_map) "
        "from identity.golden_customers"
    ).fetchall() == [(True,)]
