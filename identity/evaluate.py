"""Accuracy of identity.customer_map against a truth file (`source_system,source_record_id,person_id`).

Pairwise metrics: every pair of records in one predicted customer is a predicted link,
every pair in one true person a true link. Counted from the customer x person contingency
table (sum of n*(n-1)/2), so two million records need no pair enumeration.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

TRUTH_COLUMNS = ("source_system", "source_record_id", "person_id")


@dataclass(frozen=True)
class EvaluationReport:
    truth_records: int
    mapped_records: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    over_merged_clusters: int
    under_merged_people: int
    customers: int
    people: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def coverage(self) -> float:
        """Share of truth records that identity resolution mapped to a customer."""
        return self.mapped_records / self.truth_records if self.truth_records else 1.0

    def format(self) -> str:
        return "\n".join(
            [
                f"pairwise precision      {self.precision:.4f}  ({self.correct_pairs:,} of {self.predicted_pairs:,} predicted links)",
                f"pairwise recall         {self.recall:.4f}  ({self.correct_pairs:,} of {self.true_pairs:,} true links)",
                f"pairwise F1             {self.f1:.4f}",
                f"over-merged customers   {self.over_merged_clusters:,} of {self.customers:,} (hold records of 2+ people)",
                f"under-merged people     {self.under_merged_people:,} of {self.people:,} (split over 2+ customers)",
                f"coverage                {self.coverage:.4f}  ({self.mapped_records:,} of {self.truth_records:,} truth records mapped)",
            ]
        )


def read_truth(truth_csv: Path) -> pd.DataFrame:
    """The truth file, checked: header and no empty values (errors name the line)."""
    truth_csv = Path(truth_csv)
    with truth_csv.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header[:3]) != TRUTH_COLUMNS:
            raise ValueError(
                f"{truth_csv}, line 1: the header must be {','.join(TRUTH_COLUMNS)}, got {header!r}"
            )
        rows = []
        for line_number, row in enumerate(reader, start=2):
            if len(row) < 3 or not all(v.strip() for v in row[:3]):
                raise ValueError(
                    f"{truth_csv}, line {line_number}: expected 3 non-empty values "
                    f"({','.join(TRUTH_COLUMNS)}), got {row!r}; fix or remove the line"
                )
            rows.append(row[:3])
    return pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))


def evaluate_assignment(truth: pd.DataFrame, customer_map: pd.DataFrame) -> EvaluationReport:
    """Metrics for a customer_map frame (source_system, source_record_id, customer_id)."""
    con = duckdb.connect()
    con.register("truth", truth)
    con.register("predicted", customer_map[["source_system", "source_record_id", "customer_id"]])
    row = con.sql("""
        with joined as (
            select t.person_id, p.customer_id
            from truth t left join predicted p using (source_system, source_record_id)
        ),
        mapped as (select * from joined where customer_id is not null),
        by_person as (select person_id, count(*) as n from joined group by 1),
        by_customer as (select customer_id, count(*) as n, count(distinct person_id) as people from mapped group by 1),
        by_both as (select count(*) as n from mapped group by customer_id, person_id),
        person_spread as (select person_id, count(distinct customer_id) as customers from mapped group by 1)
        select
            (select count(*) from joined),
            (select count(*) from mapped),
            (select coalesce(sum(n * (n - 1) / 2), 0) from by_person),
            (select coalesce(sum(n * (n - 1) / 2), 0) from by_customer),
            (select coalesce(sum(n * (n - 1) / 2), 0) from by_both),
            (select count(*) from by_customer where people > 1),
            (select count(*) from person_spread where customers > 1),
            (select count(*) from by_customer),
            (select count(*) from by_person)
    """).fetchall()[0]
    con.close()
    return EvaluationReport(*(int(v) for v in row))


def evaluate_against_truth(con: duckdb.DuckDBPyConnection, truth_csv: Path) -> EvaluationReport:
    """Compare identity.customer_map in the warehouse with truth.csv."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'identity' and table_name = 'customer_map'"
    ).fetchall()[0][0]
    if not exists:
        raise LookupError(
            "the warehouse has no identity.customer_map yet; run identity resolution first"
        )
    customer_map = con.sql(
        "select source_system, source_record_id, customer_id from identity.customer_map"
    ).df()
    return evaluate_assignment(read_truth(truth_csv), customer_map)
