"""Make erased bytes go away: rewrite the DuckDB file, scrub the files the pipeline wrote.

A DuckDB DELETE marks rows deleted; the row groups and freed blocks keep their bytes until
the storage is rewritten. `rewrite_database` copies the live contents into a fresh file
and renames it over the old one, so no byte of an erased row survives in the file.
Parquet and the BI DuckDB file are written afresh by every publish. The other files a
run leaves behind (Great Expectations results and Data Docs pages, Dagster's run and
event storage, dbt's logs) are searched for the erased values and rewritten without them.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import uuid
from pathlib import Path

import duckdb

ERASED_MARK = "[erased]"
_TEXT_SUFFIXES = {".json", ".jsonl", ".html", ".log", ".txt", ".out", ".err", ".md", ".csv"}


def rewrite_database(path: Path) -> None:
    """Copy every schema, table, view and macro of `path` into a fresh file and swap it in.

    The caller holds the file's writer lock and no connection to it is open."""
    path = Path(path)
    fresh = path.with_name(f".{path.name}.{uuid.uuid4().hex}.rewrite")
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{_sql(path)}' AS erased_src (READ_ONLY)")
        con.execute(f"ATTACH '{_sql(fresh)}' AS erased_dst")
        con.execute("COPY FROM DATABASE erased_src TO erased_dst")
        con.execute("DETACH erased_src")
        con.execute("CHECKPOINT erased_dst")
        con.execute("DETACH erased_dst")
    except BaseException:
        con.close()
        fresh.unlink(missing_ok=True)
        Path(str(fresh) + ".wal").unlink(missing_ok=True)
        raise
    con.close()
    os.chmod(fresh, 0o600)
    os.replace(fresh, path)
    Path(str(path) + ".wal").unlink(missing_ok=True)


def _sql(path: Path) -> str:
    return str(path).replace("'", "''")


def _needle_bytes(needles: set[str]) -> list[bytes]:
    return sorted({n.lower().encode() for n in needles if len(n) >= 4}, key=len, reverse=True)


# A needle counts where it stands as a value of its own, not inside a longer token: a
# short numeric id (a ticket's `010008`) also turns up inside timestamps
# (`12:52:59.010008`) and other numbers, and replacing it there would not erase anyone but
# would corrupt the number and the JSON around it (Dagster's event log then fails to read
# the run). Before a needle: no letter, digit or dot, unless a text escape (`\n`, `\t`,
# `\r`: a value on a new line of a JSON string); after it: no letter or digit.
_TOKEN_START = rb"(?:(?<![0-9A-Za-z.])|(?<=\\[nrt]))"
_TOKEN_END = rb"(?![0-9A-Za-z])"


def _needle_pattern(needles: list[bytes]) -> re.Pattern[bytes]:
    """One regular expression for the lower-cased `needles` as tokens of their own, in any
    ASCII letter case (as `bytes.lower` compares). Alternatives are tried in order, longest
    first: at each position the longest needle that starts there wins, scanning left to
    right."""
    alternatives = b"|".join(re.escape(n) for n in needles)
    return re.compile(_TOKEN_START + b"(?:" + alternatives + b")" + _TOKEN_END, re.IGNORECASE)


def _contains(data: bytes, needles: list[bytes]) -> bool:
    lowered = data.lower()
    return any(n in lowered for n in needles)


def _scrub_text(data: bytes, pattern: re.Pattern[bytes], is_json: bool = False) -> bytes:
    """Every occurrence (case-insensitive, as a token of its own) replaced by ERASED_MARK.

    JSON (`is_json`, or a value that starts like a JSON object or array and parses as one)
    is scrubbed inside its strings and keys only, and written back as JSON: its numbers
    and structure stay valid whatever the needles look like (an id `11071` and a count
    `11071` are the same digits). Text that does not parse is scrubbed as text."""
    if is_json or data.lstrip()[:1] in (b"{", b"["):
        try:
            document = json.loads(data)
        except ValueError:
            pass
        else:
            scrubbed = _scrub_json(document, pattern)
            if scrubbed == document:
                return data
            return json.dumps(scrubbed).encode()
    return pattern.sub(ERASED_MARK.encode(), data)


def _scrub_json(value, pattern: re.Pattern[bytes]):
    if isinstance(value, str):
        return pattern.sub(ERASED_MARK.encode(), value.encode()).decode()
    if isinstance(value, list):
        return [_scrub_json(item, pattern) for item in value]
    if isinstance(value, dict):
        return {_scrub_json(k, pattern): _scrub_json(v, pattern) for k, v in value.items()}
    return value


def _scrub_file(path: Path, data: bytes, pattern: re.Pattern[bytes]) -> bytes:
    """`data` (the contents of `path`) without the needles: a `.json` file as JSON, a
    `.jsonl` file as JSON line by line, any other as text."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _scrub_text(data, pattern, is_json=True)
    if suffix == ".jsonl":
        lines = data.split(b"\n")  # the last is b"" when the file ends with a newline
        return b"\n".join(_scrub_text(line, pattern) if line.strip() else line for line in lines)
    return _scrub_text(data, pattern)


def scrub_text_files(folder: Path, needles: set[str], delete: bool = False) -> list[Path]:
    """Text files under `folder` that held an erased value: rewritten without it (or, with
    `delete`, removed). Returns the files changed."""
    folder = Path(folder)
    patterns = _needle_bytes(needles)
    changed: list[Path] = []
    if not patterns or not folder.is_dir():
        return changed
    pattern = _needle_pattern(patterns)
    for path in folder.rglob("*"):
        if not path.is_file() or path.is_symlink() or path.suffix.lower() not in _TEXT_SUFFIXES:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if not _contains(data, patterns):
            continue
        scrubbed = _scrub_file(path, data, pattern)
        if scrubbed == data:  # the values only inside longer tokens (numbers, other ids)
            continue
        if delete:
            path.unlink()
        else:
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.scrub")
            tmp.write_bytes(scrubbed)
            os.chmod(tmp, path.stat().st_mode & 0o777)
            os.replace(tmp, path)
        changed.append(path)
    return changed


def scrub_quality_docs(docs_dir: Path, needles: set[str]) -> int:
    """Remove the validation results and Data Docs pages that show an erased value, then
    rebuild the Data Docs index without them. Returns how many files were removed."""
    docs_dir = Path(docs_dir)
    removed = scrub_text_files(docs_dir, needles, delete=True)
    if not removed:
        return 0
    from quality.docs_site import MANIFEST_NAME, DataDocsSite

    for manifest in docs_dir.rglob(MANIFEST_NAME):
        site = DataDocsSite(docs_dir, manifest.parent)
        entries = [e for e in site._read_manifest() if (docs_dir / e.page).exists()]
        tmp = manifest.with_name(f".{manifest.name}.{uuid.uuid4().hex}.scrub")
        tmp.write_text("".join(json.dumps(e.__dict__) + "\n" for e in entries))
        os.replace(tmp, manifest)
        site._write_index(entries)
    return len(removed)


def scrub_sqlite(path: Path, needles: set[str]) -> int:
    """Replace erased values (in any ASCII letter case, as `scrub_text_files` compares) in
    every text or BLOB value of a SQLite file (Dagster's run and event storage), then VACUUM
    so the old pages are gone. Returns the values changed.

    Every column is searched, whatever type it declares: SQLite stores a value with the
    type it was given, so a column declared INTEGER or JSON may hold text, and a TEXT
    column may hold a BLOB (bytes are scrubbed as bytes and stay a BLOB).

    One existence probe per column first (`_column_mentions`): most columns hold none of
    the values. The UPDATEs, of the columns that do, lower-case each value once and search
    it for every needle (`cdp_mentions`), rather than lower-casing it once per needle in SQL,
    and rewrite only the values `cdp_scrub` changes."""
    patterns = _needle_bytes(needles)
    if not patterns:
        return 0
    pattern = _needle_pattern(patterns)

    def mentions(value) -> bool:
        if isinstance(value, str):
            return _contains(value.encode(), patterns)
        return isinstance(value, bytes) and _contains(value, patterns)

    # The UPDATE below asks for a row's scrubbed value in its WHERE and again in its SET,
    # one call after the other: the second is answered from the first.
    @functools.lru_cache(maxsize=1)
    def scrubbed(value):
        if isinstance(value, str):
            return _scrub_text(value.encode(), pattern).decode()
        if isinstance(value, bytes):
            return _scrub_text(value, pattern)
        return value

    changed = 0
    con = sqlite3.connect(str(path), timeout=60)
    con.create_function("cdp_mentions", 1, mentions, deterministic=True)
    con.create_function("cdp_scrub", 1, scrubbed, deterministic=True)
    try:
        tables = [
            r[0]
            for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        ]
        for table in tables:
            columns = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")').fetchall()]
            for column in columns:
                if not _column_mentions(con, table, column, patterns):
                    continue
                # A value whose needles all sit inside longer tokens is left as it is.
                cur = con.execute(
                    f'UPDATE "{table}" SET "{column}" = cdp_scrub("{column}") '
                    f'WHERE cdp_mentions("{column}") AND cdp_scrub("{column}") IS NOT "{column}"'
                )
                changed += cur.rowcount
        con.commit()
        if changed:
            con.execute("VACUUM")
            # In WAL mode the old pages stay in the -wal file beside the database until a
            # checkpoint, and another process (Dagster's event log) may hold the database
            # open so that closing here does not checkpoint: copy the WAL in and empty it.
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return changed


# Values a probe joins into one text before searching it: bounded, so memory is too.
_PROBE_CHUNK_BYTES = 8 << 20


def _column_mentions(
    con: sqlite3.Connection, table: str, column: str, needles: list[bytes]
) -> bool:
    """Whether any value of the column holds a needle (compared as `_contains` does).

    The values are lower-cased and searched joined by NUL bytes, a chunk at a time, with
    one substring search per needle: a search per needle and value (a Python call each,
    ~30 needles times ~20,000 small values of Dagster's event log) costs ten times more.
    A match across the separator would need a needle holding NUL; none does."""
    cursor = con.execute(f'SELECT "{column}" FROM "{table}"')
    chunk: list[bytes] = []
    size = 0
    while True:
        rows = cursor.fetchmany(4096)
        for (value,) in rows:
            if isinstance(value, str):
                value = value.encode()
            elif not isinstance(value, bytes):
                continue
            chunk.append(value)
            size += len(value) + 1
        if size >= _PROBE_CHUNK_BYTES or (not rows and chunk):
            if _contains(b"\x00".join(chunk), needles):
                cursor.close()
                return True
            chunk, size = [], 0
        if not rows:
            return False


def scrub_dagster_home(dagster_home: Path, needles: set[str]) -> int:
    """Dagster's storage under DAGSTER_HOME: SQLite run/event databases and log files."""
    home = Path(dagster_home)
    if not home.is_dir():
        return 0
    changed = 0
    for path in home.rglob("*"):
        if not path.is_file():
            continue
        with open(path, "rb") as handle:
            is_sqlite = handle.read(16) == b"SQLite format 3\x00"
        if is_sqlite:
            changed += scrub_sqlite(path, needles)
    changed += len(scrub_text_files(home, needles))
    return changed
