"""Publishing costs the change and writes the data once: unchanged marts are not
rewritten, changed ones are, `bi.duckdb` is views over the Parquet version it was built
with, and the copies always hold exactly the marts (small in-process DuckDB files)."""

from __future__ import annotations

import os

import duckdb
import pytest

from orchestration.bi_publish import build_published_version, swap_in_published, versions_dir


def _publish(con, root):
    """One publish as the asset does it: build aside, then swap both in."""
    target, parquet_link = root / "bi.duckdb", root / "bi_parquet"
    staging = root / ".bi.tmp"
    plan = build_published_version(con, target, parquet_link, staging)
    plan.removed = swap_in_published(plan, target, parquet_link, staging)
    return plan


def _marts(con):
    return sorted(
        r[0]
        for r in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts' "
            "and database_name = current_database()"
        ).fetchall()
    )


def _same_as_marts(con, root):
    con.execute(f"attach '{root / 'bi.duckdb'}' as bi (read_only)")
    try:
        views = sorted(
            r[0]
            for r in con.execute(
                "select view_name from duckdb_views() where database_name = 'bi' "
                "and schema_name = 'marts'"
            ).fetchall()
        )
        stored = con.execute(
            "select count(*) from duckdb_tables() where database_name = 'bi'"
        ).fetchall()[0][0]
        marts = _marts(con)
        assert views == marts
        assert stored == 0, "bi.duckdb holds views only: the data is written once, as Parquet"
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


def _versions(root):
    return sorted(p.name for p in versions_dir(root / "bi_parquet").iterdir())


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
    assert sorted(second.rewritten_parquet) == ["fresh", "small"]
    assert (tmp_path / "bi_parquet" / "big.parquet").stat().st_ino == big_inode
    _same_as_marts(con, tmp_path)
    assert (tmp_path / "bi_parquet").is_symlink()
    assert not os.path.isabs(os.readlink(tmp_path / "bi_parquet")), "a moved folder keeps it"

    # a changed column type is a change even with equal values
    con.execute("create or replace table marts.small as select 2::bigint as id, 'b' as v")
    assert _publish(con, tmp_path).rewritten_parquet == ["small"]
    _same_as_marts(con, tmp_path)


def test_a_reader_opens_bi_duckdb_from_any_directory_and_keeps_reading_across_a_swap(
    tmp_path, monkeypatch
):
    """Views name their Parquet files by absolute path (DuckDB would resolve a relative one
    against the reader's cwd), and a reader who opened yesterday's file just before the
    swap still reads yesterday's complete version; the version before that is removed."""
    root = tmp_path / "wh"
    root.mkdir()
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("create schema marts")
    con.execute("create table marts.customers as select range as id from range(10)")
    con.execute("create table marts.totals as select 10 as n")
    day1 = _publish(con, root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    reader = duckdb.connect("../wh/bi.duckdb", read_only=True)
    assert reader.execute("select count(*) from marts.customers").fetchone()[0] == 10

    con.execute("create or replace table marts.customers as select range as id from range(12)")
    con.execute("create or replace table marts.totals as select 12 as n")
    day2 = _publish(con, root)
    assert day2.removed == []
    assert _versions(root) == sorted([day1.version.name, day2.version.name])
    # the open reader: still day 1, both marts, consistently
    assert reader.execute(
        "select (select count(*) from marts.customers), (select n from marts.totals)"
    ).fetchone() == (10, 10)
    reader.close()
    with duckdb.connect("../wh/bi.duckdb", read_only=True) as fresh:
        assert fresh.execute(
            "select (select count(*) from marts.customers), (select n from marts.totals)"
        ).fetchone() == (12, 12)

    con.execute("create or replace table marts.totals as select 13 as n")
    day3 = _publish(con, root)
    assert day3.removed == [day1.version.name]
    assert _versions(root) == sorted([day2.version.name, day3.version.name])
    _same_as_marts(con, root)


def test_an_erasure_removes_the_previous_version_at_once(tmp_path):
    """The version kept for readers holds yesterday's marts: after an erasure nothing of
    it may stay, so only the new version is left."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema marts")
    con.execute(
        "create table marts.people as select range as id, 'p' || range as v from range(3000)"
    )
    con.execute("create table marts.totals as select 3000 as n")
    _publish(con, tmp_path)
    con.execute("create or replace table marts.totals as select 2999 as n")
    quiet_night = _publish(con, tmp_path)
    assert quiet_night.keep_previous and len(_versions(tmp_path)) == 2

    # the erasure asset deletes the person and logs the request (privacy.erasure_log)
    con.execute("delete from marts.people where id = 17")
    con.execute("create schema privacy")
    con.execute(
        "create table privacy.erasure_log as "
        "select 'req-1' as request_id, timestamp '2026-10-14 02:00' as erased_at"
    )
    erasure_night = _publish(con, tmp_path)
    assert not erasure_night.keep_previous
    assert sorted(erasure_night.rewritten_parquet) == ["people"]
    assert _versions(tmp_path) == [erasure_night.version.name]
    _same_as_marts(con, tmp_path)
    with duckdb.connect() as reader:
        files = [str(p) for p in versions_dir(tmp_path / "bi_parquet").rglob("people.parquet")]
        assert (
            reader.execute(
                f"select count(*) from read_parquet({files!r}) where v = 'p17'"
            ).fetchone()[0]
            == 0
        )

    con.execute("create or replace table marts.totals as select 2998 as n")
    after = _publish(con, tmp_path)
    assert after.keep_previous and after.rewritten_parquet == ["totals"]
    _same_as_marts(con, tmp_path)


def test_the_layout_before_versions_is_replaced_on_the_first_publish(tmp_path):
    """A warehouse published by the code before: `bi.duckdb` with tables, `bi_parquet/` a
    folder. The first publish swaps in the views and the link and removes the folder."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema marts")
    con.execute("create table marts.customers as select range as id from range(7)")
    (tmp_path / "bi_parquet").mkdir()
    con.execute(f"copy marts.customers to '{tmp_path / 'bi_parquet' / 'customers.parquet'}'")
    with duckdb.connect(str(tmp_path / "bi.duckdb")) as old:
        old.execute("create schema marts")
        old.execute("create table marts.customers as select range as id from range(7)")
    plan = _publish(con, tmp_path)
    assert plan.rewritten_parquet == ["customers"]  # the old file carries no fingerprint
    assert (tmp_path / "bi_parquet").is_symlink()
    assert not list(tmp_path.glob(".bi_parquet*"))
    _same_as_marts(con, tmp_path)


@pytest.mark.parametrize("fail_at", ["build", "swap"])
def test_a_publish_that_fails_before_the_swap_changes_nothing_readers_see(tmp_path, fail_at):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema marts")
    con.execute("create table marts.customers as select range as id from range(5)")
    _publish(con, tmp_path)
    before = (tmp_path / "bi.duckdb").read_bytes(), os.readlink(tmp_path / "bi_parquet")
    con.execute("create or replace table marts.customers as select range as id from range(6)")
    target, link, staging = tmp_path / "bi.duckdb", tmp_path / "bi_parquet", tmp_path / ".x.tmp"
    if fail_at == "build":
        with pytest.raises(duckdb.Error):
            build_published_version(
                con, target, link, staging, select_for=lambda t, c: "select * from nowhere"
            )
    else:
        build_published_version(con, target, link, staging)  # built, never swapped in
    assert ((tmp_path / "bi.duckdb").read_bytes(), os.readlink(link)) == before
    with duckdb.connect(str(target), read_only=True) as reader:
        assert reader.execute("select count(*) from marts.customers").fetchone()[0] == 5
