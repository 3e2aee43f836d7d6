"""The loader's session settings and the small conversions every loading module shares."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)


@contextmanager
def loader_session(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Session settings the SQL relies on (the connection is the caller's).

    TimeZone=UTC makes ISO timestamps without an offset parse as UTC; it is a per-session
    setting and is restored afterwards. preserve_insertion_order keeps WITH ORDINALITY equal
    to the physical line order; it is database-wide (DuckDB's default is on), so it is only
    switched on, with a warning, never switched back off under a concurrent load.
    """
    # One statement reads both; a zone already UTC is neither set nor restored (a day's
    # load runs some thirty small statements, each ~0.5 ms of fixed cost).
    saved_zone, keeps_order = con.execute(
        "SELECT current_setting('TimeZone'), current_setting('preserve_insertion_order')"
    ).fetchone()
    if not keeps_order:
        log.warning("preserve_insertion_order was off; the loader needs it and turned it on")
        con.execute("SET preserve_insertion_order = true")
    if saved_zone in ("UTC", "Etc/UTC"):  # the same zone under two names
        yield
        return
    con.execute("SET TimeZone = 'UTC'")
    try:
        yield
    finally:
        con.execute(f"SET TimeZone = {sql_literal(saved_zone)}")


def fetched_count(cursor: duckdb.DuckDBPyConnection) -> int:
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def relative_path(landing_dir: Path, path: Path) -> str:
    return Path(os.path.relpath(path, landing_dir)).as_posix()


def as_utc_naive(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def first_error_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
