"""Deterministic rules: records sharing an exact identifier are the same customer.

Each rule yields a star of edges per shared value (every record to the value's first
record), which is enough for connected components and keeps the edge count linear.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from identity.config import DeterministicRule
from warehouse_engine.frames import to_pandas


def deterministic_edges(
    con: duckdb.DuckDBPyConnection, records_table: str, rules: tuple[DeterministicRule, ...]
) -> pd.DataFrame:
    """Edges (rid_l, rid_r, rule) of every deterministic rule, in the rules' order."""
    frames = []
    for order, rule in enumerate(rules):
        frames.append(to_pandas(con.sql(_rule_sql(records_table, rule, order))))
    if not frames:
        return pd.DataFrame({"rid_l": [], "rid_r": [], "rule": [], "rule_order": []})
    edges = pd.concat(frames, ignore_index=True)
    return edges.sort_values(["rule_order", "rid_l", "rid_r"], kind="stable").reset_index(drop=True)


def _rule_sql(records_table: str, rule: DeterministicRule, order: int) -> str:
    column = rule.column
    name = rule.name.replace("'", "''")
    if not rule.source_pairs:
        return f"""
            with keyed as (
                select rid, {column} as v, min(rid) over (partition by {column}) as anchor
                from {records_table} where {column} is not null
            )
            select anchor as rid_l, rid as rid_r, '{name}' as rule, {order} as rule_order
            from keyed where rid <> anchor
        """
    parts = []
    for left_source, right_source in rule.source_pairs:
        parts.append(f"""
            select a.anchor as rid_l, r.rid as rid_r
            from (select {column} as v, min(rid) as anchor from {records_table}
                  where {column} is not null and source_system = '{left_source}' group by 1) a
            join {records_table} r on r.{column} = a.v and r.source_system = '{right_source}'
            where r.rid <> a.anchor
        """)
    union = " union ".join(parts)
    return f"""
        select least(rid_l, rid_r) as rid_l, greatest(rid_l, rid_r) as rid_r,
               '{name}' as rule, {order} as rule_order
        from ({union})
    """
