"""A tiny landing zone and one clean reference run of it, shared by the reliability tests.

Every reliability test compares against the reference: the row counts per raw table and
day, and per mart, that a clean, undisturbed run produces.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestration.cli import main as cdp
from tests.reliability.warehouse_state import mart_counts, raw_counts


@dataclass(frozen=True)
class Reference:
    zone: Path
    days: list[str]
    warehouse: Path
    raw: dict[str, int]
    marts: dict[str, int]

    def copy_to(self, folder: Path) -> Path:
        """The reference warehouse and its BI file, in a folder of their own."""
        folder.mkdir(parents=True)
        for name in ("warehouse.duckdb", "warehouse.duckdb.generation", "bi.duckdb"):
            shutil.copy2(self.warehouse.parent / name, folder / name)
        shutil.copytree(self.warehouse.parent / "bi_parquet", folder / "bi_parquet")
        return folder / "warehouse.duckdb"


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Reference:
    zone = tmp_path_factory.mktemp("reliability-zone") / "landing"
    assert (
        cdp(["generate", "--out", str(zone), "--customers", "120", "--days", "2", "--seed", "3"])
        == 0
    )
    days = sorted({p.name[3:] for p in zone.glob("*/*/dt=*")})
    warehouse = tmp_path_factory.mktemp("reliability-reference") / "wh" / "warehouse.duckdb"
    assert cdp(["run", "--landing", str(zone), "--warehouse", str(warehouse)]) == 0
    return Reference(
        zone=zone,
        days=days,
        warehouse=warehouse,
        raw=raw_counts(warehouse),
        marts=mart_counts(warehouse.parent / "bi.duckdb"),
    )
