"""Blocking: which record pairs are worth comparing at all.

A blocking rule is a list of columns that must be equal; its pairs are a self-join in
DuckDB on those columns. Blocks larger than `max_block_size` are skipped (a value shared by
thousands of records is junk or too common to mean anything) and reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class BlockingResult:
    candidate_pairs: int
    pairs_by_rule: dict[str, int]
    oversized_blocks: dict[str, int]


def block_table(rule_index: int) -> str:
    return f"_identity_blocks_{rule_index}"


def create_block_tables(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    blocking_rules: tuple[tuple[str, ...], ...],
) -> None:
    """`_identity_blocks_<i>(rid, columns, block_size)` per rule, for callers that block the
    same records several times (an incremental run's frontier rounds): block sizes are
    counted over every record once, not once per round. Drop with `drop_block_tables`."""
    for i, rule in enumerate(blocking_rules):
        columns = ", ".join(rule)
        not_null = " and ".join(f"{c} is not null" for c in rule)
        con.execute(f"""
            create or replace temp table {block_table(i)} as
            select rid, {columns}, count(*) over (partition by {columns}) as block_size
            from {records_table} where {not_null}
        """)


def drop_block_tables(
    con: duckdb.DuckDBPyConnection, blocking_rules: tuple[tuple[str, ...], ...]
) -> None:
    for i in range(len(blocking_rules)):
        con.execute(f"drop table if exists {block_table(i)}")


def block_candidate_pairs(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    blocking_rules: tuple[tuple[str, ...], ...],
    max_block_size: int,
    pairs_table: str,
    within: str | None = None,
    touching: str | None = None,
    blocks_ready: bool = False,
) -> BlockingResult:
    """Create `pairs_table(rid_l, rid_r)` with the distinct candidate pairs of all rules.

    Block sizes always count every record of `records_table`, so a subset is blocked exactly
    as the whole would be: `within` (a relation with a `rid` column) keeps the pairs whose
    two records are in it, `touching` the pairs with at least one record in it (an
    incremental run's new and changed records against everyone). `blocks_ready`: the
    block tables of `create_block_tables` exist for these records and rules."""
    pairs_by_rule: dict[str, int] = {}
    oversized: dict[str, int] = {}
    con.execute(f"create or replace temp table {pairs_table} (rid_l integer, rid_r integer)")
    for i, rule in enumerate(blocking_rules):
        label = "+".join(rule)
        columns = ", ".join(rule)
        not_null = " and ".join(f"{c} is not null" for c in rule)
        join_on = " and ".join(f"l.{c} = r.{c}" for c in rule)
        blocks = block_table(i) if blocks_ready else "_identity_blocks"
        if not blocks_ready:
            con.execute(f"""
                create or replace temp table _identity_blocks as
                select rid, {columns}, count(*) over (partition by {columns}) as block_size
                from {records_table} where {not_null}
            """)
        oversized[label] = con.sql(
            f"select count(distinct ({columns})) from {blocks} where block_size > {max_block_size}"
        ).fetchall()[0][0]
        before = con.sql(f"select count(*) from {pairs_table}").fetchall()[0][0]
        usable = f"(select * from {blocks} where block_size between 2 and {max_block_size})"
        if within is not None:
            usable = f"(select * from {usable} b semi join {within} w on w.rid = b.rid)"
        if touching is None:
            pairs = f"""
                select l.rid as rid_l, r.rid as rid_r from {usable} l join {usable} r
                  on {join_on} and l.rid < r.rid"""
        else:
            pairs = f"""
                select distinct least(l.rid, r.rid) as rid_l, greatest(l.rid, r.rid) as rid_r
                from (select * from {usable} b semi join {touching} t on t.rid = b.rid) l
                join {usable} r on {join_on} and l.rid <> r.rid"""
        con.execute(f"""
            insert into {pairs_table}
            select q.rid_l, q.rid_r from ({pairs}) q
            anti join {pairs_table} p on p.rid_l = q.rid_l and p.rid_r = q.rid_r
        """)
        pairs_by_rule[label] = (
            con.sql(f"select count(*) from {pairs_table}").fetchall()[0][0] - before
        )
    con.execute("drop table if exists _identity_blocks")
    total = con.sql(f"select count(*) from {pairs_table}").fetchall()[0][0]
    return BlockingResult(total, pairs_by_rule, oversized)
