"""Publishing costs the change: unchanged marts are not rewritten, changed ones are, and
the copies always hold exactly the marts (small in-process DuckDB files)."""

from __future__ import annotations

import os

import duckdb

from orchestration.bi_publish import build_published_copies


def _publish(con, root):
    """One publish as the asset does it: build aside, then swap both copies in."""
    target, parquet_dir = root / "bi.duckdb", root / "bi_parquet"
    staging, parquet_tmp = root / ".bi.tmp", root / ".bi_parquet.tmp"
    parquet_tmp.mkdir()
    plan = build_published_copies(
        con, target, parquet_dir, staging, parquet_tmp, reuse_duckdb_file=True
    )
    os.replace(staging, target)
    old = root / ".bi_parquet.old"
    if parquet_dir.exists():
        os.replace(parquet_dir, old)
    os.replace(parquet_tmp, parquet_dir)
    if old.exists():
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    return plan


def _same_as_marts(con, root):
    con.execute(f"attach '{root / 'bi.duckdb'}' as bi (read_only)")
    try:
        tables = sorted(
            r[0]
            for r in con.execute(
                "select table_name from duckdb_tables() where database_name = 'bi'"
            ).fetchall()
        )
        marts = sorted(
            r[0]
            for r in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'marts' "
                "and database_name = current_database()"
            ).fetchall()
        )
        assert tables == marts
        assert sorted(p.stem for p in (root / "bi_parquet").iterdir()) == marts
        for t in marts:
            for copy in (f"bi.marts.{t}", f"read_parquet('{root / 'bi_parquet' / t}.parquet')"):
                diff = con.execute(
                    f"select count(*) from ((select * from marts.{t} except all select * from {copy}) "
                    f"union all (select * from {copy} except all select * from marts.{t}))"
                ).fetchall()[0][0]
                assert diff == 0, (t, copy)
    finally:
        con.execute("detach bi")


def test_only_changed_marts_are_rewritten_and_copies_match(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema marts")
    con.execute("create table marts.big as select range as id, 'v' || range as v from range(5000)")
    con.execute("create table marts.small as select 1 as id, 'a' as v")
    con.execute("create table marts.gone as select 1 as id")
    first = _publish(con, tmp_path)
    assert sorted(first.rewritten_parquet) == ["big", "gone", "small"]
    _same_as_marts(con, tmp_path)
    big_inode = (tmp_path / "bi_parquet" / "big.parquet").stat().st_ino

    # a night where dbt rebuilt everything but only `small` changed, `gone` was dropped
    # and `fresh` is new
    con.execute("create or replace table marts.big as select * from marts.big order by id desc")
    con.execute("create or replace table marts.small as select 2 as id, 'b' as v")
    con.execute("drop table marts.gone")
    con.execute("create table marts.fresh as select 7 as id")
    second = _publish(con, tmp_path)
    assert sorted(second.rewritten_parquet) == sorted(second.rewritten_duckdb) == ["fresh", "small"]
    assert second.reused_duckdb_file
    assert (tmp_path / "bi_parquet" / "big.parquet").stat().st_ino == big_inode
    _same_as_marts(con, tmp_path)

    # a changed column type is a change even with equal values
    con.execute("create or replace table marts.small as select 2::bigint as id, 'b' as v")
    assert _publish(con, tmp_path).rewritten_parquet == ["small"]
    _same_as_marts(con, tmp_path)


def test_an_erasure_rebuilds_bi_duckdb_from_scratch_and_the_next_night_reuses_it(tmp_path):
    """A reused bi.duckdb keeps dropped tables' blocks as free space: after an erasure the
    file is written whole (no erased byte can survive in it), and the night after that,
    with no new erasure, only the changed mart is replaced in a copy again."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema marts")
    con.execute(
        "create table marts.people as select range as id, 'p' || range as v from range(3000)"
    )
    con.execute("create table marts.totals as select 3000 as n")
    first = _publish(con, tmp_path)
    assert first.fresh_duckdb_reason == "no unchanged mart"

    con.execute("create or replace table marts.totals as select 2999 as n")
    quiet_night = _publish(con, tmp_path)
    assert quiet_night.reused_duckdb_file and quiet_night.rewritten_duckdb == ["totals"]

    # the erasure asset deletes the person and logs the request (privacy.erasure_log)
    con.execute("delete from marts.people where id = 17")
    con.execute("create schema privacy")
    con.execute(
        "create table privacy.erasure_log as "
        "select 'req-1' as request_id, timestamp '2026-10-14 02:00' as erased_at"
    )
    erasure_night = _publish(con, tmp_path)
    assert not erasure_night.reused_duckdb_file
    assert erasure_night.fresh_duckdb_reason == "an erasure since the file was written"
    assert sorted(erasure_night.rewritten_duckdb) == ["people", "totals"]
    assert erasure_night.rewritten_parquet == ["people"]
    _same_as_marts(con, tmp_path)

    con.execute("create or replace table marts.totals as select 2998 as n")
    after = _publish(con, tmp_path)
    assert after.reused_duckdb_file and after.rewritten_duckdb == ["totals"]
    _same_as_marts(con, tmp_path)
