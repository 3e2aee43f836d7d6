"""Hand-built landing zones for the loader tests: every byte of every file is visible here."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest

from ingestion.contract import RAW_TABLES


class LandingZone:
    """A landing root in tmp_path with helpers to drop files the way sources do."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def day_dir(self, table: str, dt: date = date(2026, 10, 1)) -> Path:
        return self.root / RAW_TABLES[table].landing_path / f"dt={dt.isoformat()}"

    def write(
        self,
        table: str,
        name: str,
        content: str | bytes,
        dt: date = date(2026, 10, 1),
        gz: bool = False,
    ) -> Path:
        """Write one landing file; `content` str is UTF-8 encoded, bytes are written as-is."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        directory = self.day_dir(table, dt)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        path.write_bytes(gzip.compress(data) if gz else data)
        return path

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


@pytest.fixture
def landing(tmp_path: Path) -> LandingZone:
    root = tmp_path / "landing"
    root.mkdir()
    return LandingZone(root)


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute("SET threads = 2")
    yield connection
    connection.close()
