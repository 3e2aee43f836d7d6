"""The catalogue of quality suites: what is checked on which table, and how severely."""

from __future__ import annotations

from quality.spec import SuiteSpec
from quality.suites.identity import IDENTITY_SUITES
from quality.suites.marts import MARTS_SUITES
from quality.suites.raw import RAW_SUITES

SUITES: list[SuiteSpec] = [*RAW_SUITES, *IDENTITY_SUITES, *MARTS_SUITES]

_names = [spec.name for spec in SUITES]
if len(_names) != len(set(_names)):
    raise RuntimeError(f"duplicate suite names in quality.suites: {sorted(_names)}")


def suites_for_table(table: str) -> list[SuiteSpec]:
    """Suites guarding `table` (schema-qualified, e.g. "raw.billing_invoices"), ERROR first."""
    return sorted(
        (spec for spec in SUITES if spec.table == table),
        key=lambda spec: (spec.severity != "ERROR", spec.name),
    )


def suite_by_name(name: str) -> SuiteSpec:
    for spec in SUITES:
        if spec.name == name:
            return spec
    raise KeyError(f"no quality suite named {name!r}; known suites: {', '.join(_names)}")


__all__ = ["SUITES", "SuiteSpec", "suite_by_name", "suites_for_table"]
