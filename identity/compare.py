"""Comparison vectors: one ordinal agreement level per comparison per pair, computed in SQL.

DuckDB evaluates the Jaro-Winkler / edit-distance functions in parallel and vectorised,
which is what makes two million records feasible; levels are small integers (-1 missing,
0 disagree, ..., top = exact) that the Fellegi-Sunter model turns into weights.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from identity.config import ComparisonSpec
from warehouse_engine.frames import to_pandas


def level_sql(spec: ComparisonSpec, left: str = "l", right: str = "r") -> str:
    """The SQL CASE expression giving the agreement level of `spec` for one pair."""
    lc, rc = f"{left}.{spec.column}", f"{right}.{spec.column}"
    top = spec.n_levels - 1
    cases = [f"when {lc} is null or {rc} is null then -1", f"when {lc} = {rc} then {top}"]
    if spec.swap_column:
        ls, rs = f"{left}.{spec.swap_column}", f"{right}.{spec.swap_column}"
        cases.append(f"when {lc} = {rs} and {ls} = {rc} then {top}")
    if spec.kind == "jaro_winkler":
        for level, threshold in sorted(enumerate(sorted(spec.thresholds), start=1), reverse=True):
            cases.append(f"when jaro_winkler_similarity({lc}, {rc}) >= {threshold} then {level}")
    elif spec.kind == "levenshtein":
        for level, distance in sorted(
            enumerate(sorted(spec.thresholds, reverse=True), start=1), reverse=True
        ):
            cases.append(f"when levenshtein({lc}, {rc}) <= {int(distance)} then {level}")
    elif spec.kind == "email":
        ll, rl = f"split_part({lc}, '@', 1)", f"split_part({rc}, '@', 1)"
        cases.append(f"when {ll} = {rl} then {top - 1}")
        for level, threshold in sorted(enumerate(sorted(spec.thresholds), start=1), reverse=True):
            cases.append(f"when jaro_winkler_similarity({ll}, {rl}) >= {threshold} then {level}")
    return "case " + " ".join(cases) + " else 0 end"


def term_frequency_table(spec: ComparisonSpec) -> str:
    return f"_identity_tf_{spec.name}"


def create_term_frequency_tables(
    con: duckdb.DuckDBPyConnection, records_table: str, comparisons: tuple[ComparisonSpec, ...]
) -> None:
    """`_identity_tf_<name>(value, tf)`: each value's share of the non-null values of the column,
    i.e. the chance that a random record has it (the u of agreeing on exactly that value)."""
    for spec in comparisons:
        if spec.term_frequency:
            con.execute(f"""
                create or replace temp table {term_frequency_table(spec)} as
                select {spec.column} as value, count(*) / sum(count(*)) over () as tf
                from {records_table} where {spec.column} is not null group by 1
            """)


def compare_pairs(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    pairs_relation: str,
    comparisons: tuple[ComparisonSpec, ...],
) -> pd.DataFrame:
    """Columns rid_l, rid_r, one int8 level column per comparison and, for term-frequency
    comparisons, `tf_<name>`: the agreed value's frequency on exact agreement (else NaN).
    Term-frequency tables must exist (`create_term_frequency_tables`)."""
    selects = [
        f"cast({level_sql(spec)} as tinyint) as {_level_column(spec)}" for spec in comparisons
    ]
    joins = []
    for i, spec in enumerate(comparisons):
        if spec.term_frequency:
            alias = f"tf{i}"
            joins.append(
                f"left join {term_frequency_table(spec)} {alias} on {alias}.value = l.{spec.column} "
                f"and l.{spec.column} = r.{spec.column}"
            )
            selects.append(f"{alias}.tf::double as {tf_column(spec)}")
    frame = to_pandas(
        con.sql(f"""
        select p.rid_l, p.rid_r, {", ".join(selects)}
        from {pairs_relation} p
        join {records_table} l on l.rid = p.rid_l
        join {records_table} r on r.rid = p.rid_r
        {" ".join(joins)}
        order by p.rid_l, p.rid_r
    """)
    )
    for spec in comparisons:
        frame[_level_column(spec)] = frame[_level_column(spec)].astype(np.int8)
    return frame


def level_counts(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    pairs_relation: str,
    comparisons: tuple[ComparisonSpec, ...],
) -> list[np.ndarray]:
    """Per comparison, how many pairs have each level (index = level; missing, -1, left
    out): the histograms of `compare_pairs`' level columns, counted in SQL.

    For the half a million random pairs u is estimated from, this saves sorting them and
    copying every pair's levels into a DataFrame only to count them."""
    histograms = ", ".join(
        f"histogram(cast({level_sql(spec)} as tinyint)) filter (where "
        f"l.{spec.column} is not null and r.{spec.column} is not null)"
        for spec in comparisons
    )
    (row,) = con.execute(f"""
        select {histograms}
        from {pairs_relation} p
        join {records_table} l on l.rid = p.rid_l
        join {records_table} r on r.rid = p.rid_r
    """).fetchall()
    counts = []
    for spec, histogram in zip(comparisons, row, strict=True):
        levels = np.zeros(spec.n_levels, dtype=np.int64)
        for level, n in (histogram or {}).items():
            levels[int(level)] = n
        counts.append(levels)
    return counts


def tf_column(spec: ComparisonSpec) -> str:
    return f"tf_{spec.name}"


def _level_column(spec: ComparisonSpec) -> str:
    return f"level_{spec.name}"


def level_columns(comparisons: tuple[ComparisonSpec, ...]) -> list[str]:
    return [_level_column(spec) for spec in comparisons]
