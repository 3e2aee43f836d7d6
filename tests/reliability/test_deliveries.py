"""A day's delivery is complete or not loaded: shrink refusals, truncated and misnamed
files, `_SUCCESS` markers and files still being written.

The loader-level tests use the real loader on real DuckDB files; the end-to-end test runs
`cdp run` in subprocesses on a copy of the reliability reference run (tests/reliability/
conftest.py) and compares raw, rejects and marts exactly.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ingestion.errors import DeliveryNotReadyError, PartitionLoadError, ShrinkRefusedError
from ingestion.load import load_partition, load_partitions
from tests.conftest import edit_delivered_csv
from tests.ingestion.landing_rows import CONTACTS_HEADER, DT, LOADED_AT, contact

DAY = f"dt={DT.isoformat()}"
DT2 = date(2026, 10, 2)


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    root.mkdir()
    return root


@pytest.fixture
def con(tmp_path: Path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def deliver(landing: Path, name: str, rows: list[str], dt: date = DT, gz: bool = False) -> Path:
    folder = landing / "email" / "contacts" / f"dt={dt.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    data = ("\n".join([CONTACTS_HEADER, *rows]) + "\n").encode()
    path = folder / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def state(con) -> tuple:
    """What the warehouse holds for email_contacts: rows, rejects and audit, exactly."""
    return tuple(
        con.execute(f"SELECT * EXCLUDE ({ts}) FROM {table} ORDER BY ALL").fetchall()
        for table, ts in (
            ("raw.email_contacts", "_loaded_at"),
            ("raw.rejects", "rejected_at"),
            ("raw.load_audit", "loaded_at"),
        )
    )


def load(con, landing: Path, dt: date = DT, **options):
    return load_partition(con, "email_contacts", dt, landing, loaded_at=LOADED_AT, **options)


ROWS = [contact(f"c{i}", email=f"p{i}@example.com") for i in range(5)]
MANY = [contact(f"m{i}", email=f"{i * 7919 % 100003:x}.{i}@example.com") for i in range(3000)]


# ------------------------------------------------------------------------------ shrink


def test_a_shrinking_reload_is_refused_and_keeps_the_day_until_allowed(con, landing):
    first = deliver(landing, "part-0.csv", ROWS)
    deliver(landing, "part-1.csv", ROWS[:2])
    load(con, landing)
    before = state(con)
    first.unlink()  # one file of the day did not arrive this time

    with pytest.raises(ShrinkRefusedError) as refused:
        load(con, landing)
    assert (refused.value.rows_before, refused.value.rows_now) == (7, 2)
    assert str(refused.value).startswith(
        "email_contacts dt=2026-10-01 holds 7 record(s) in raw (loaded + rejected) but its "
        "landing folder now yields 2 record(s) in 1 file(s)"
    )
    assert state(con) == before

    allowed = load(con, landing, allow_shrink=True)
    assert (allowed.rows_loaded, allowed.rows_rejected) == (2, 0)
    assert con.execute("SELECT count(*) FROM raw.email_contacts").fetchone() == (2,)


def test_a_growing_or_equal_reload_needs_no_permission(con, landing):
    path = deliver(landing, "part-0.csv", ROWS[:2])
    load(con, landing)
    deliver(landing, "part-0.csv", [ROWS[0], contact("c1", email="not an email")])
    assert (load(con, landing).rows_loaded, load(con, landing).rows_rejected) == (1, 1)
    path.write_bytes(path.read_bytes() + (ROWS[3] + "\n").encode())
    assert load(con, landing).rows_read == 3


def test_one_refused_day_of_a_backfill_does_not_stop_the_others(con, landing):
    deliver(landing, "part-0.csv", ROWS, dt=DT)
    deliver(landing, "part-0.csv", ROWS, dt=DT2)
    load_partitions(con, "email_contacts", [DT, DT2], landing, LOADED_AT)
    deliver(landing, "part-0.csv", ROWS[:1], dt=DT)
    deliver(landing, "part-0.csv", [*ROWS, contact("c9")], dt=DT2)

    with pytest.raises(ShrinkRefusedError) as refused:
        load_partitions(con, "email_contacts", [DT, DT2], landing, LOADED_AT, max_workers=2)
    assert refused.value.dt == DT and [r.dt for r in refused.value.completed] == [DT2]
    counts = con.execute(
        "SELECT _dt, count(*) FROM raw.email_contacts GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert counts == [(DT, 5), (DT2, 6)]


# ----------------------------------------------------------------- files not read whole


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        pytest.param(
            "part-1.csv.gz",
            gzip.compress(("\n".join([CONTACTS_HEADER, *MANY]) + "\n").encode())[:5000],
            "is a truncated gzip file",
            id="truncated-gzip",
        ),
        pytest.param(
            "part-1.csv.gz",
            ("\n".join([CONTACTS_HEADER, *ROWS]) + "\n").encode(),
            "is named .gz but is not gzip-compressed (it starts like plain text)",
            id="plain-csv-named-gz",
        ),
    ],
)
def test_a_file_not_readable_whole_fails_its_day_which_keeps_its_rows(
    con, landing, name, data, says
):
    deliver(landing, "part-0.csv", ROWS)
    load(con, landing)
    before = state(con)
    (landing / "email" / "contacts" / DAY / name).write_bytes(data)

    with pytest.raises(PartitionLoadError) as failed:
        load(con, landing)
    assert str(failed.value).startswith(f"email/contacts/{DAY}/{name}: {says}")
    assert "keeps its previous contents" in str(failed.value)
    assert failed.value.source_file == f"email/contacts/{DAY}/{name}"
    assert state(con) == before


def test_the_raw_asset_fails_on_a_truncated_gzip_naming_it_without_retrying(landing, tmp_path):
    from orchestration.assets.ingestion import raw_assets
    from orchestration.resources import LandingZoneResource, WarehouseResource

    deliver(landing, "part-0.csv", ROWS)
    payload = gzip.compress(("\n".join([CONTACTS_HEADER, *MANY]) + "\n").encode())
    (landing / "email" / "contacts" / DAY / "part-1.csv.gz").write_bytes(payload[:5000])
    contacts = next(a for a in raw_assets if a.key.path[-1] == "email_contacts")
    started = time.monotonic()
    result = dg.materialize(
        [contacts],
        partition_key=DT.isoformat(),
        resources={
            "warehouse": WarehouseResource(path=str(tmp_path / "wh.duckdb")),
            "landing": LandingZoneResource(path=str(landing)),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    assert time.monotonic() - started < 10  # the retry policy would wait 10 s, then 20 s
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    description = failure.event_specific_data.error.message
    assert f"email/contacts/{DAY}/part-1.csv.gz: is a truncated gzip file" in description
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as check:
        assert check.execute("SELECT count(*) FROM raw.email_contacts").fetchone() == (0,)


# ------------------------------------------------------------------- completeness


def test_a_day_without_its_success_marker_is_not_loaded_and_keeps_its_rows(con, landing):
    deliver(landing, "part-0.csv", ROWS[:3], dt=DT2)
    load(con, landing, dt=DT2)  # loaded before the source started writing markers
    before = state(con)
    deliver(landing, "part-0.csv", ROWS, dt=DT)
    (landing / "email" / "contacts" / DAY / "_SUCCESS").touch()
    deliver(landing, "part-0.csv", ROWS, dt=DT2)  # re-delivered, marker not written yet

    held = load(con, landing, dt=DT2)
    assert (held.status, held.files, held.rows_loaded) == ("incomplete", [], 0)
    assert any("has no _SUCCESS marker" in w for w in held.warnings)
    assert state(con) == before

    assert load(con, landing, dt=DT).rows_loaded == 5  # the day with its marker loads
    (landing / "email" / "contacts" / f"dt={DT2.isoformat()}" / "_SUCCESS").touch()
    assert load(con, landing, dt=DT2).rows_loaded == 5


def test_files_still_being_written_are_waited_for(con, landing):
    deliver(landing, "part-0.csv", ROWS)
    result = load(con, landing, settle_seconds=1.5, settle_max_wait_seconds=30)
    assert result.rows_loaded == 5 and result.settle_wait_s >= 1.0


def test_a_file_that_keeps_changing_fails_the_day_naming_it(con, landing):
    path = deliver(landing, "part-0.csv", ROWS)
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.is_set():
            with open(path, "a") as handle:
                handle.write(contact("more") + "\n")
            time.sleep(0.2)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        with pytest.raises(DeliveryNotReadyError) as waiting:
            load(con, landing, settle_seconds=1, settle_max_wait_seconds=3)
    finally:
        stop.set()
        writer.join()
    assert f"email/contacts/{DAY}/part-0.csv" in str(waiting.value)
    assert "still being written" in str(waiting.value)


def test_a_day_with_its_success_marker_is_taken_without_settling(con, landing):
    deliver(landing, "part-0.csv", ROWS)  # written just now
    (landing / "email" / "contacts" / DAY / "_SUCCESS").touch()
    started = time.monotonic()
    result = load(con, landing, settle_seconds=60)
    assert (result.rows_loaded, result.settle_wait_s) == (5, 0)
    assert time.monotonic() - started < 30


def test_an_old_file_is_taken_at_once(con, landing):
    path = deliver(landing, "part-0.csv", ROWS)
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))
    started = time.monotonic()
    assert load(con, landing, settle_seconds=60).rows_loaded == 5
    assert time.monotonic() - started < 30


# ------------------------------------------------------------ end to end: cdp run


def _cdp(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _counts(warehouse: Path) -> dict[str, int]:
    """Row counts of every raw and marts table (plus the rejects), exactly."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('raw', 'marts') AND table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
        return {n: con.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for (n,) in names}


@pytest.mark.slow
def test_cdp_run_on_an_emptied_landing_day_fails_and_keeps_it_unless_allowed(reference, tmp_path):
    # The reliability reference run (two days, loaded by a clean `cdp run`) is the
    # warehouse the emptied day meets: a copy of it, and of its landing zone.
    landing = tmp_path / "landing"
    shutil.copytree(reference.zone, landing)
    warehouse = reference.copy_to(tmp_path / "wh")
    env = {
        **os.environ,
        "CDP_SETTLE_SECONDS": "0",
        "CDP_WAREHOUSE": str(warehouse),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    env.pop("CDP_ALERT_WEBHOOK", None)
    (tmp_path / "dagster_home").mkdir()
    day = reference.days[-1]
    day_dir = landing / "email" / "events" / f"dt={day}"
    before = _counts(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (events,) = con.execute(
            "SELECT sum(rows_loaded + rows_rejected) FROM raw.load_audit "
            "WHERE source_table = 'email_events' AND dt = ?",
            [day],
        ).fetchone()
        (events_that_day,) = con.execute(
            "SELECT count(*) FROM marts.fct_email_events WHERE delivered_dt = ?", [day]
        ).fetchone()
    assert events > 0 and events_that_day > 0
    # The day's billing customers are re-delivered with two malformed emails, which the
    # raw quality suite flags when the allowed run loads them (searched for below).
    leaked = _plant_bad_emails(landing, day)

    parked = tmp_path / "parked"
    shutil.move(day_dir, parked)
    day_dir.mkdir()  # the folder is there, the files are not (an unmounted share)
    refused = _cdp("run", "--landing", str(landing), "--date", day, env=env)
    assert refused.returncode == 1
    assert f"email_events dt={day} holds {events:,} record(s) in raw" in refused.stderr
    assert "--allow-shrink" in refused.stderr
    assert _counts(warehouse) == before  # raw, rejects and marts exactly as they were

    allowed = _cdp("run", "--landing", str(landing), "--date", day, "--allow-shrink", env=env)
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    after = _counts(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute(
            "SELECT count(*) FROM raw.email_events WHERE _dt = ?", [day]
        ).fetchone() == (0,)
        assert con.execute(
            "SELECT count(*) FROM marts.fct_email_events WHERE delivered_dt = ?", [day]
        ).fetchone() == (0,)
        assert con.execute(
            "SELECT count(*) FROM raw.load_audit WHERE source_table = 'email_events' AND dt = ?",
            [day],
        ).fetchone() == (0,)
        (files,) = con.execute("SELECT count(*) FROM raw.load_audit").fetchone()
    # The other day's events stay; the other tables' raw rows are untouched; the audit lost
    # exactly the emptied day's events files.
    assert after["raw.email_events"] == reference.raw[f"email_events/{reference.days[0]}"]
    assert after["marts.fct_email_events"] == before["marts.fct_email_events"] - events_that_day
    for table, count in before.items():
        if table.startswith("raw.") and table not in ("raw.email_events", "raw.load_audit"):
            assert after[table] == count, table
    assert files == before["raw.load_audit"] - len(list(parked.rglob("*.csv*")))
    _assert_not_stored(tmp_path, leaked)


def _plant_bad_emails(landing: Path, day: str) -> list[str]:
    """Give two billing customers of `day` malformed emails the raw quality suite will flag."""
    (path,) = sorted((landing / "billing" / "customers").glob(f"dt={day}/*.csv*"))[:1]
    planted: list[str] = []

    def edit(fields, rows):
        for row, bad in zip(
            rows, ("jane.leak@@example.com", "john.leak at example.com"), strict=False
        ):
            row["email"] = bad
            planted.append(bad)
        return fields, rows

    edit_delivered_csv(path, edit)
    return planted


def _assert_not_stored(tmp_path: Path, values: list[str]) -> None:
    """No planted value in the GX store, Data Docs or Dagster's storage (check metadata)."""
    stores = [tmp_path / "wh" / "quality_docs", tmp_path / "dagster_home"]
    searched = 0
    for root in stores:
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                searched += 1
                for value in values:
                    assert value.encode() not in data, f"{value!r} found in {path}"
    assert searched > 0
    store = list((tmp_path / "wh" / "quality_docs" / "_gx_store" / "validations").rglob("*.json"))
    assert store, "the run stored its validation results"
    assert any(b"j***@e***.com" in p.read_bytes() for p in store), "the masked example is kept"
