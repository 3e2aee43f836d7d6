"""End to end through `cdp run`: a generated landing zone into a fresh DuckDB file.

Real generator, real loader, real dbt build, real identity engine, real GX suites, all
as Dagster materializations in this process. One zone is shared; each test copies what
it changes.
"""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration.cli import main as cdp

pytestmark = pytest.mark.slow

RAW_TABLES = ["email_contacts", "email_events", "billing_customers", "billing_invoices",
              "billing_subscriptions", "web_events"]


@pytest.fixture(scope="module")
def zone(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zone") / "landing"
    assert cdp(["generate", "--out", str(out), "--customers", "300", "--days", "3", "--seed", "11"]) == 0
    return out


@pytest.fixture(scope="module")
def built(zone, tmp_path_factory):
    """One full backfill of the zone, shared by the read-only tests below."""
    warehouse = tmp_path_factory.mktemp("built") / "warehouse.duckdb"
    assert cdp(["run", "--landing", str(zone), "--warehouse", str(warehouse)]) == 0
    return warehouse


def _days(zone: Path) -> list[str]:
    return sorted({p.name[3:] for p in zone.glob("*/*/dt=*")})


def test_full_run_lands_every_table_and_publishes_marts(built, zone):
    with duckdb.connect(str(built), read_only=True) as con:
        for table in RAW_TABLES:
            assert con.execute(f"select count(*) from raw.{table}").fetchone()[0] > 0, table
        assert con.execute("select count(distinct _dt) from raw.email_events").fetchone()[0] == len(_days(zone))
        # Nothing is lost: every file's rows are loaded or rejected.
        broken = con.execute(
            "select source_file from raw.load_audit where rows_read <> rows_loaded + rows_rejected"
        ).fetchall()
        assert broken == []
        assert con.execute("select count(*) from identity.golden_customers").fetchone()[0] > 0
        marts = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'").fetchall()}
        assert {"dim_customers", "customer_identity_map", "customer_360"} <= marts
        dupes = con.execute(
            "select count(*) - count(distinct customer_id) from marts.dim_customers").fetchone()[0]
        assert dupes == 0
    published = built.parent / "marts.duckdb"
    with duckdb.connect(str(published), read_only=True) as pub:
        assert pub.execute("select count(*) from marts.dim_customers").fetchone()[0] > 0
    assert (built.parent / "marts_parquet" / "dim_customers.parquet").exists()
    assert (built.parent / "quality_docs" / "index.html").exists()


def _snapshot(warehouse: Path) -> dict[str, list]:
    """Every table's content, minus load timestamps, in a stable order."""
    tables = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('raw', 'staging', 'identity', 'marts') and table_type = 'BASE TABLE'"
        ).fetchall()
        for schema, name in names:
            cols = [c[0] for c in con.execute(f'describe "{schema}"."{name}"').fetchall()
                    if not c[0].endswith(("loaded_at", "rejected_at", "_at_run", "updated_at_run"))
                    and c[0] not in ("_loaded_at", "loaded_at", "rejected_at", "merged_at", "refused_at",
                                     "first_assigned_at", "assigned_at", "resolved_at", "built_at")]
            select = ", ".join(f'"{c}"' for c in cols)
            tables[f"{schema}.{name}"] = con.execute(
                f'select {select} from "{schema}"."{name}" order by all').fetchall()
    return tables


def test_rerunning_a_day_changes_nothing(built, zone, tmp_path):
    warehouse = tmp_path / "rerun" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    shutil.copy(built, warehouse)
    before = _snapshot(warehouse)
    day = _days(zone)[-1]
    assert cdp(["run", "--landing", str(zone), "--warehouse", str(warehouse), "--date", day]) == 0
    after = _snapshot(warehouse)
    assert before.keys() == after.keys()
    changed = [name for name in before if before[name] != after[name]]
    assert changed == []


def test_missing_required_column_fails_the_partition_with_file_and_column(zone, tmp_path, capsys):
    broken = tmp_path / "landing"
    shutil.copytree(zone, broken)
    day = _days(zone)[0]
    invoice_file = sorted((broken / "billing" / "invoices" / f"dt={day}").glob("*.csv"))[0]
    with open(invoice_file, newline="") as f:
        rows = list(csv.reader(f))
    drop = rows[0].index("amount_due_cents")
    with open(invoice_file, "w", newline="") as f:
        csv.writer(f).writerows([[v for i, v in enumerate(r) if i != drop] for r in rows])

    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    code = cdp(["run", "--landing", str(broken), "--warehouse", str(warehouse), "--date", day])
    err = capsys.readouterr().err
    assert code == 1
    assert "amount_due_cents" in err
    assert invoice_file.name in err
    assert "Traceback" not in err


def test_run_without_landing_zone_says_what_to_do(tmp_path, capsys):
    code = cdp(["run", "--landing", str(tmp_path / "nowhere"), "--warehouse", str(tmp_path / "w.duckdb")])
    assert code == 1
    assert "cdp generate" in capsys.readouterr().err


def test_two_day_backfill_equals_two_nightly_runs(zone, tmp_path):
    days = _days(zone)[:2]
    backfill = tmp_path / "backfill" / "warehouse.duckdb"
    nightly = tmp_path / "nightly" / "warehouse.duckdb"
    assert cdp(["run", "--landing", str(zone), "--warehouse", str(backfill),
                "--from", days[0], "--to", days[1]]) == 0
    for day in days:
        assert cdp(["run", "--landing", str(zone), "--warehouse", str(nightly), "--date", day]) == 0
    a, b = _snapshot(backfill), _snapshot(nightly)
    assert a.keys() == b.keys()
    assert [n for n in a if a[n] != b[n]] == []
    assert date.fromisoformat(days[1]) > date.fromisoformat(days[0])


def _copy_warehouse(built: Path, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True)
    shutil.copy(built, dest_dir / "warehouse.duckdb")
    shutil.copy(built.parent / "marts.duckdb", dest_dir / "marts.duckdb")
    return dest_dir / "warehouse.duckdb"


def _start_run(zone: Path, warehouse: Path, *extra: str):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    return subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "run", "--landing", str(zone),
         "--warehouse", str(warehouse), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )


def test_killed_run_leaves_warehouse_and_published_marts_as_they_were(built, zone, tmp_path):
    import os
    import signal
    import time

    warehouse = _copy_warehouse(built, tmp_path / "kill")
    published = warehouse.parent / "marts.duckdb"
    before, published_before = _snapshot(warehouse), published.read_bytes()

    proc = _start_run(zone, warehouse, "--date", _days(zone)[-1])
    runs_dir = warehouse.parent / ".runs"
    deadline = time.monotonic() + 120
    # Kill once the run has its working copy and has been writing for a few seconds.
    while time.monotonic() < deadline and not (runs_dir.exists() and any(runs_dir.glob("*.duckdb"))):
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    time.sleep(4)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    assert _snapshot(warehouse) == before
    assert published.read_bytes() == published_before

    # The next run cleans up after the killed one and succeeds.
    assert cdp(["run", "--landing", str(zone), "--warehouse", str(warehouse), "--date", _days(zone)[-1]]) == 0
    assert not any(runs_dir.glob("*.duckdb*"))


def test_bi_reads_published_marts_through_sqlalchemy_while_a_run_writes(built, zone, tmp_path):
    import time

    import sqlalchemy as sa

    warehouse = _copy_warehouse(built, tmp_path / "bi")
    published = warehouse.parent / "marts.duckdb"
    proc = _start_run(zone, warehouse, "--date", _days(zone)[-1])
    reads, errors = 0, []
    while proc.poll() is None:
        engine = sa.create_engine(f"duckdb:///{published}", connect_args={"read_only": True})
        try:
            with engine.connect() as conn:
                n = conn.execute(sa.text("select count(*) from marts.dim_customers")).scalar_one()
                top = conn.execute(sa.text(
                    "select count(*) from marts.customer_360 c join marts.dim_customers d using (customer_id)"
                )).scalar_one()
                assert n > 0 and top > 0
                reads += 1
        except Exception as exc:  # any failure is what this test exists to catch
            errors.append(repr(exc))
        finally:
            engine.dispose()
        time.sleep(0.2)
    output = proc.stdout.read().decode()
    assert proc.returncode == 0, output
    assert errors == []
    assert reads >= 3
