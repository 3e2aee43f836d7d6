"""identity/persistence.py's TABLE_COLUMNS is the declaration of the identity tables; the copies agree.

The dbt test warehouse creates the tables from it (tests/dbt/dbt_harness.py); the docs and
the dbt source yml restate column names, checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from identity.persistence import SCHEMA, TABLE_COLUMNS

REPO = Path(__file__).resolve().parents[2]
# Tables whose row in docs/data-model.md lists every column (the others describe them).
FULLY_DOCUMENTED = ("customer_map", "golden_customers", "merge_log", "refused_merges")


def _documented_columns(table: str) -> list[str]:
    text = (REPO / "docs" / "data-model.md").read_text(encoding="utf-8")
    row = re.search(rf"^\| `{SCHEMA}\.{table}` \| [^|]+ \| (.+) \|$", text, re.MULTILINE)
    assert row, f"docs/data-model.md has no row for {SCHEMA}.{table}"
    without_notes = re.sub(r"\([^()]*\)", "", row[1])
    return [part.split()[0] for part in without_notes.split(",") if part.strip()]


def test_data_model_doc_lists_the_identity_columns_in_order():
    for table in FULLY_DOCUMENTED:
        assert _documented_columns(table) == list(TABLE_COLUMNS[table]), table


def test_dbt_identity_sources_name_only_columns_the_engine_writes():
    sources = yaml.safe_load(
        (REPO / "dbt_project/models/staging/identity/_identity__sources.yml").read_text()
    )["sources"]
    for source in sources:
        for table in source["tables"]:
            assert table["name"] in TABLE_COLUMNS, table["name"]
            for column in table.get("columns", []):
                assert column["name"] in TABLE_COLUMNS[table["name"]], (table["name"], column)
