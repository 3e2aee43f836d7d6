"""The raw contract is declared once (ingestion/contract.py); where it is restated, the copies agree.

The loader, the generator, the dbt test warehouse and the enum values of the raw quality
suite derive from the declaration. What cannot import it — the docs, and the raw suite's
per-table rules, which add checks the contract does not fix — is checked here, so a column
added in one place and forgotten in another fails a test instead of drifting.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingestion.contract import RAW_TABLES, RawTable
from quality.suites.raw import RAW_TABLES as RAW_SUITE_RULES

DOCS = Path(__file__).resolve().parents[2] / "docs"
SUITE_KIND = {
    "VARCHAR": "string",
    "JSON": "string",
    "BIGINT": "integer",
    "BOOLEAN": "boolean",
    "TIMESTAMP": "timestamp",
}


def _landing_contract_sections() -> dict[str, str]:
    """`### source/table ...` heading -> the section's text, from docs/landing-contract.md."""
    text = (DOCS / "landing-contract.md").read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    return {section.split()[0]: section.split("\n## ")[0] for section in sections}


def _documented_fields(table: RawTable, section: str) -> dict[str, str]:
    """Documented field -> its notes; CSV tables from the table rows, JSON from `code` spans."""
    if table.file_format == "csv":
        fields = {}
        for row in re.findall(r"^\| ([^|]+?) \| [^|]+ \|([^|]*)\|$", section, re.MULTILINE):
            names, notes = row
            for name in names.split(","):
                if name.strip() != "column":
                    fields[name.strip()] = notes
        return fields
    fields = {}
    for span in re.findall(r"`([^`]+)`", section):
        braces = re.fullmatch(r"(.*)\{(.*)\}", span)
        for name in [braces[1] + part for part in braces[2].split(",")] if braces else [span]:
            fields[name] = ""
    return fields


@pytest.mark.parametrize("table", list(RAW_TABLES.values()), ids=lambda t: t.name)
def test_landing_contract_doc_lists_every_contract_column_and_its_values(table: RawTable):
    sections = _landing_contract_sections()
    assert table.landing_path in sections, (
        f"docs/landing-contract.md has no ### {table.landing_path}"
    )
    documented = _documented_fields(table, sections[table.landing_path])
    sources = [column.source or column.name for column in table.columns]
    missing = [source for source in sources if source not in documented]
    assert not missing, f"{table.landing_path}: contract fields not in the doc: {missing}"
    if table.file_format == "csv":
        extra = sorted(set(documented) - set(sources))
        assert not extra, f"{table.landing_path}: doc columns the contract lacks: {extra}"
    for column in table.columns:
        for value in column.allowed or ():
            assert (
                value in documented[column.source or column.name] or table.file_format != "csv"
            ), f"{table.landing_path}.{column.name}: allowed value {value!r} is not in the doc"


def test_data_model_doc_states_each_raw_table_exactly_as_the_contract():
    text = (DOCS / "data-model.md").read_text(encoding="utf-8")
    for table in RAW_TABLES.values():
        declared = ", ".join(
            f"{c.name} {c.type}{' NOT NULL' if c.required else ''}" for c in table.columns
        )
        assert f"| `{table.qualified_name}` | {declared} |" in text, (
            f"docs/data-model.md's row for {table.qualified_name} differs from the contract; "
            f"it should read: {declared}"
        )


def test_raw_quality_suite_rules_restate_the_contract():
    rules_by_table = {rules.table: rules for rules in RAW_SUITE_RULES}
    assert set(rules_by_table) == {t.qualified_name for t in RAW_TABLES.values()}
    for table in RAW_TABLES.values():
        rules = rules_by_table[table.qualified_name]
        assert rules.columns == {c.name: SUITE_KIND[c.type] for c in table.columns}, table.name
        assert set(rules.required) == {c.name for c in table.columns if c.required}, table.name
        allowed = {c.name: c.allowed for c in table.columns if c.allowed}
        assert rules.allowed_values == allowed, table.name
        ranges = {
            c.name: (c.min_value, c.max_value)
            for c in table.columns
            if c.min_value is not None and c.max_value is not None
        }
        assert rules.ranges == ranges, table.name
