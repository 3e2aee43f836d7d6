"""The loader's session settings and the small conversions every loading module shares."""

from __future__ import annotations

import logging
import os
import threading
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


_parsed = threading.local()
# Distinct statements a thread keeps parsed: a day's files of each table, a few times over.
_PARSED_STATEMENTS = 64


def parsed_statement(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.Statement:
    """`sql` (one statement) parsed once per thread, for `con.execute`.

    DuckDB parses a statement's text on every execute: ~3 ms for a file's parse query
    (~9 KB of SQL), which the loader issues with the same text for every day of a table.
    A parsed statement is bound afresh on each execute, so it sees the tables as they are
    then; it is kept per thread, as loads of several days run on threads of their own."""
    cache = getattr(_parsed, "statements", None)
    if cache is None:
        cache = _parsed.statements = {}
    statement = cache.get(sql)
    if statement is None:
        if len(cache) >= _PARSED_STATEMENTS:
            cache.clear()
        (statement,) = con.extract_statements(sql)
        cache[sql] = statement
    return statement


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
