"""Spark's committed raw days and the step store (ingestion/spark_days.py), without Spark.

A `--bad` zone is loaded by DuckDB's loader; its days are written in the layout Spark's
commit uses (`rewrite_days_from_step_store`, what an erasure does), read back into an
empty step store (`import_committed_days`, what the raw step does after Spark commits),
and compared with the loader's output value for value (`compare_raw`, the check the
Spark tests use). The Spark side of the layout is tests/ingestion/test_spark_reading.py
and tests/reliability/test_spark_equivalence.py.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb

from ingestion.contract import RAW_TABLES
from ingestion.load import load_partitions
from ingestion.spark_days import (
    committed_days,
    import_committed_days,
    raw_relation_locations,
    rewrite_days_from_step_store,
)
from ingestion.spark_reading import day_dir
from warehouse_engine.ingest_equivalence import compare_raw

DAYS = [date(2026, 10, 13), date(2026, 10, 14)]


def _differing(con, raw_root):
    return [
        (c.relation, c.duckdb_rows, c.spark_rows) for c in compare_raw(con, raw_root) if not c.same
    ]


def test_days_round_trip_between_the_step_store_and_sparks_layout(tmp_path):
    zone = tmp_path / "landing"
    subprocess.run(
        [str(Path(sys.executable).with_name("cdp")), "generate", "--out", str(zone),
         "--customers", "30", "--days", "2", "--seed", "5", "--bad"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    loaded = duckdb.connect(str(tmp_path / "loaded.duckdb"))
    for table in RAW_TABLES:
        load_partitions(loaded, table, DAYS, zone, settle_seconds=0)
    assert loaded.execute("select count(*) from raw.rejects").fetchone()[0] > 0

    raw_root = tmp_path / "spark_raw"
    assert raw_relation_locations(raw_root) == {}
    for table in RAW_TABLES:
        for dt in DAYS:
            day_dir(raw_root, table, dt).mkdir(parents=True)
    (raw_root / "web_events" / ".dt=2026-10-14.writing-1").mkdir()  # a work folder: ignored
    assert rewrite_days_from_step_store(loaded, raw_root) == len(RAW_TABLES) * len(DAYS)
    assert committed_days(raw_root, "web_events") == DAYS
    assert _differing(loaded, raw_root) == []

    store = duckdb.connect(str(tmp_path / "store.duckdb"))
    for table in RAW_TABLES:
        import_committed_days(store, raw_root, table, DAYS)
    assert _differing(store, raw_root) == []
    # importing a day again replaces it, as a re-load does
    assert import_committed_days(store, raw_root, "web_events", DAYS[:1]) > 0
    assert _differing(store, raw_root) == []

    locations = raw_relation_locations(raw_root)
    assert locations["raw.web_events"] == str(raw_root / "web_events" / "dt=*" / "rows")
    assert locations["raw.rejects"] == str(raw_root / "*" / "dt=*" / "rejects")
    assert set(locations) == {f"raw.{t}" for t in RAW_TABLES} | {"raw.rejects", "raw.load_audit"}
    # what Spark reads through the globs: DuckDB's glob is the same
    (rejects,) = store.execute(
        f"select count(*) from read_parquet('{locations['raw.rejects']}/*.parquet')"
    ).fetchone()
    assert rejects == loaded.execute("select count(*) from raw.rejects").fetchone()[0]
