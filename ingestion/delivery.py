"""What a day's delivery is: which files count, whether they are complete, what they hold.

The loader (ingestion/load.py) parses records; this module decides, from the file system
and from the bytes, before anything is parsed:

* **Which entries of a `dt=` folder are data files** (`discover_day`). Regular files
  with the table's suffix (any letter case) are loaded, also in sub-folders. Everything
  else gets one documented, audited behaviour: dotfiles and `_`-prefixed sub-folders
  (macOS `._x.csv`, `.DS_Store`, Spark's `_temporary/`) are hidden and skipped,
  symbolic links are never followed, other suffixes and special files are skipped.
* **Whether the day is complete** (`table_uses_markers`, `wait_until_settled`). A table
  whose folders carry `_SUCCESS` markers (as Spark and Hadoop writers leave them) is
  complete only with its marker; files still changing (younger than the settling time
  and not yet seen unchanged for that long) are waited for, within a bound.
* **How many physical lines each file has, from its bytes** (`scan_file`), independently
  of DuckDB's reader: the loader's per-file invariant compares its own accounting with
  this count. A file that cannot be read whole (truncated or corrupt gzip, a plain file
  named `.gz`, gzip or another compression under a plain name, no read permission)
  raises `PartitionLoadError`: a delivery that is not whole is not loaded.
* **Bytes DuckDB's line reader would get wrong** are normalised into a clean copy
  (`write_clean_copy`): NUL bytes (DuckDB drops or cuts such lines), bare CR (DuckDB
  splits on it), a mix of CRLF and LF. The lines that held a NUL or a stray CR become
  rejects at their own line number; UTF-16 files are recognised and every line rejected
  with a reason saying so.

A *physical line* is a run of bytes ended by LF (CRLF counts as one ending), plus a last
run without LF if the file does not end with one. A file with no LF at all but with CR
characters uses classic-Mac line endings: there, CR ends a line.
"""

from __future__ import annotations

import codecs
import gzip
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.errors import PartitionLoadError

SUCCESS_MARKER = "_SUCCESS"
#: Seconds a file must have been left unchanged before it is taken (see docs/landing-contract.md).
DEFAULT_SETTLE_SECONDS = 10.0
#: How long a run waits for files that keep changing before the day fails.
DEFAULT_SETTLE_MAX_WAIT_SECONDS = 300.0
HEADER_MAX_BYTES = 1 << 20
_CHUNK = 1 << 22
_SNIFF_BYTES = 4096

_GZIP_MAGIC = b"\x1f\x8b"
_OTHER_COMPRESSIONS = {
    b"BZh": "bzip2",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\xfd7zXZ\x00": "xz",
    b"PK\x03\x04": "zip",
}


# ------------------------------------------------------------------------ discovery


@dataclass(frozen=True)
class SkippedEntry:
    """An entry of a day folder that is not loaded, and why (shown in raw.load_audit)."""

    path: Path
    note: str


@dataclass
class DayDelivery:
    """The data files of one day folder, and the entries skipped with a reason."""

    folder: Path
    exists: bool
    files: list[Path] = field(default_factory=list)
    skipped: list[SkippedEntry] = field(default_factory=list)
    has_marker: bool = False


def discover_day(folder: Path, suffixes: tuple[str, ...]) -> DayDelivery:
    """List a `dt=` folder: data files (recursively, sorted) and skipped entries.

    Never follows a symbolic link and never opens anything but a regular file, so a
    FIFO or a link to `/dev/zero` cannot hang or flood a run.
    """
    day = DayDelivery(folder=folder, exists=folder.is_dir() and not folder.is_symlink())
    if not day.exists:
        if folder.is_symlink():
            day.skipped.append(SkippedEntry(folder, _SYMLINK_NOTE))
        return day
    wanted = tuple(s.lower() for s in suffixes)
    _walk(folder, folder, wanted, day)
    day.files.sort(key=lambda p: p.relative_to(folder).as_posix())
    day.skipped.sort(key=lambda s: s.path.relative_to(folder).as_posix())
    return day


_SYMLINK_NOTE = (
    "skipped: a symbolic link, which the loader never follows; deliver the file itself "
    "into the day folder"
)


def _walk(root: Path, directory: Path, wanted: tuple[str, ...], day: DayDelivery) -> None:
    for entry in list(os.scandir(directory)):  # an OSError is the caller's to report
        path = Path(entry.path)
        name = entry.name
        if entry.is_symlink():
            day.skipped.append(SkippedEntry(path, _SYMLINK_NOTE))
        elif name == SUCCESS_MARKER and directory == root:
            day.has_marker = True
        elif name.startswith("."):
            day.skipped.append(
                SkippedEntry(
                    path,
                    "skipped: a hidden file or folder (name starts with '.'; e.g. macOS "
                    "'._*' or '.DS_Store' metadata, an upload in progress)",
                )
            )
        elif entry.is_dir(follow_symlinks=False):
            if name.startswith("_"):
                day.skipped.append(
                    SkippedEntry(
                        path,
                        "skipped: a folder whose name starts with '_' (a writer's work area, "
                        "such as Spark's _temporary)",
                    )
                )
            else:
                _walk(root, path, wanted, day)
        elif not entry.is_file(follow_symlinks=False):
            day.skipped.append(
                SkippedEntry(path, "skipped: not a regular file (a pipe, socket or device)")
            )
        elif name.lower().endswith(wanted):
            day.files.append(path)
        else:
            day.skipped.append(
                SkippedEntry(
                    path,
                    f"skipped: this table only takes {' / '.join(wanted)} files (any letter "
                    "case); rename the file if it is part of the delivery",
                )
            )


def table_uses_markers(table_dir: Path) -> bool:
    """True when any day folder of the table holds a `_SUCCESS` marker.

    Such a source signals completeness; from then on a day without its marker is still
    being delivered and is not loaded.
    """
    try:
        days = [e for e in os.scandir(table_dir) if e.name.startswith("dt=") and e.is_dir()]
    except OSError:
        return False
    return any(os.path.lexists(os.path.join(d.path, SUCCESS_MARKER)) for d in days)


# ------------------------------------------------------------------------- settling


def settle_seconds_from_env(name: str, default: float) -> float:
    """A non-negative number of seconds from the environment, or a clear error."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number of seconds") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} must be zero or more seconds")
    return value


def wait_until_settled(
    files: list[Path],
    settle_s: float,
    max_wait_s: float,
    describe: Callable[[Path], str],
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until every file has been left unchanged for `settle_s`; return seconds waited.

    A file is settled when its modification time is at least `settle_s` old, or when its
    size and modification time were seen unchanged across a `settle_s` wait (which also
    covers clocks that disagree: a file stamped in the future). Raises `SettlingTimeout`
    naming the files that were still changing after `max_wait_s`.
    """
    if settle_s <= 0 or not files:
        return 0.0
    started = clock()
    seen = {path: _signature(path) for path in files}
    since = dict.fromkeys(files, started)  # when the current (size, mtime) was first seen

    def still_needed(path: Path, now: float) -> float:
        """Seconds until `path` counts as settled (<= 0: settled)."""
        return min(settle_s - (now - seen[path][1]), settle_s - (now - since[path]))

    while True:
        now = clock()
        unsettled = [p for p in files if still_needed(p, now) > 0]
        if not unsettled:
            return now - started
        if now - started >= max_wait_s:
            raise SettlingTimeout([describe(p) for p in unsettled], settle_s, now - started)
        needed = max(still_needed(p, now) for p in unsettled)
        sleep(max(0.01, min(needed, max_wait_s - (now - started))))
        for path in unsettled:
            again = _signature(path)
            if again != seen[path]:
                seen[path], since[path] = again, clock()


def _signature(path: Path) -> tuple[int, float]:
    """(size, mtime) without following links; a vanished file reads as changing now."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return (-1, time.time())
    return (info.st_size, info.st_mtime)


class SettlingTimeout(Exception):
    """Files kept changing for the whole wait: the delivery is still being written."""

    def __init__(self, files: list[str], settle_s: float, waited_s: float) -> None:
        self.files = files
        self.settle_s = settle_s
        self.waited_s = waited_s
        shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
        super().__init__(
            f"still being written after a {waited_s:.0f} s wait (modified less than "
            f"{settle_s:g} s ago): {shown}"
        )


# -------------------------------------------------------------------- the bytes of a file


@dataclass
class LineProblem:
    """A physical line DuckDB must not parse: it becomes a reject with this reason."""

    line_number: int
    reason: str
    preview: str | None


@dataclass
class FileScan:
    """What the bytes of one file are, counted without any parser."""

    physical_lines: int
    first_line: bytes | None  # decompressed, without its line ending; None for no data
    has_text: bool = False  # any byte besides spaces, tabs and line breaks
    encoding_problem: str | None = None  # e.g. UTF-16: every line is rejected with it
    needs_clean_copy: bool = False  # NUL, bare CR or mixed line endings
    cr_line_endings: bool = False  # no LF at all, CR ends lines
    utf16_codec: str | None = None  # how to count the lines of a UTF-16 file


def scan_file(path: Path, source_file: str, table: str, dt) -> FileScan:
    """Count the physical lines of a (possibly gzipped) file and check it reads whole.

    Raises `PartitionLoadError` naming the file when it cannot be read whole: the day is
    then not loaded at all (it keeps its previous contents).
    """

    def fail(what: str) -> PartitionLoadError:
        return PartitionLoadError(
            table,
            dt,
            source_file,
            f"{source_file}: {what} Nothing was loaded for {table} dt={dt.isoformat()}, "
            "which keeps its previous contents; re-run the day once the file is fixed.",
        )

    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, reads twice
    except PermissionError:
        raise fail(
            "cannot be read (permission denied). Give the pipeline's user read access."
        ) from None
    except OSError as exc:
        raise fail(f"cannot be opened ({exc.strerror}).") from None
    with handle:
        try:
            head = handle.read(8)
            handle.seek(0)
            gzipped = path.name.lower().endswith(".gz")
            if not head:  # 0 bytes, even if named .gz: a delivery of no rows
                return FileScan(physical_lines=0, first_line=None)
            if gzipped and not head.startswith(_GZIP_MAGIC):
                raise fail(
                    f"is named .gz but is not gzip-compressed ({_kind_of(head)}). Compress "
                    "it with gzip, or drop the .gz from its name, and re-deliver it."
                )
            if not gzipped and head.startswith(_GZIP_MAGIC):
                raise fail(
                    "is gzip-compressed but its name does not end in .gz. Rename it with "
                    "a .gz suffix and re-deliver it."
                )
            for magic, kind in _OTHER_COMPRESSIONS.items():
                if head.startswith(magic):
                    raise fail(
                        f"is {kind}-compressed; the contract takes plain text or gzip. "
                        "Re-deliver it as plain or gzipped text."
                    )
            scan = _count_lines(_decompressed_chunks(handle, gzipped, fail))
            if scan.encoding_problem:
                handle.seek(0)
                scan.physical_lines = _count_utf16_lines(
                    _decompressed_chunks(handle, gzipped, fail), scan.utf16_codec
                )
            return scan
        except PermissionError:
            raise fail(
                "cannot be read (permission denied). Give the pipeline's user read access."
            ) from None
        except OSError as exc:
            raise fail(f"could not be read to the end ({exc.strerror or exc}).") from None


def _kind_of(head: bytes) -> str:
    for magic, kind in _OTHER_COMPRESSIONS.items():
        if head.startswith(magic):
            return f"it is {kind}-compressed"
    return "it starts like plain text"


def _decompressed_chunks(handle, gzipped: bool, fail):
    """The file's bytes in chunks, decompressed; a gzip must end with its end marker."""
    if not gzipped:
        while chunk := handle.read(_CHUNK):
            yield chunk
        return
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    complete = False
    consumed = 0
    while chunk := handle.read(_CHUNK):
        while chunk:
            try:
                out = decompressor.decompress(chunk)
            except zlib.error as exc:
                raise fail(
                    f"is a corrupt gzip file (after {consumed:,} compressed bytes: {exc}). "
                    "Re-deliver the complete file."
                ) from None
            if out:
                yield out
            complete = decompressor.eof
            if decompressor.eof:  # a gzip file may hold several members
                chunk = decompressor.unused_data
                if chunk and not chunk.startswith(_GZIP_MAGIC):
                    if chunk.strip(b"\x00"):
                        raise fail(
                            "has bytes after the end of its gzip stream that are not gzip. "
                            "Re-deliver the complete file."
                        )
                    chunk = b""
                if chunk:
                    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                    complete = False
            else:
                chunk = b""
        consumed = handle.tell()
    if not complete:
        raise fail(
            "is a truncated gzip file: the compressed stream ends before its end marker, so "
            "it is still being uploaded or the upload broke off. Re-deliver the complete file."
        )


def _count_lines(chunks) -> FileScan:
    lf = cr = crlf = 0
    nul = has_text = False
    first_line = bytearray()
    first_done = False
    sniff = bytearray()
    previous_last = b""
    total = 0
    last_byte = b""
    for chunk in chunks:
        total += len(chunk)
        if len(sniff) < _SNIFF_BYTES:
            sniff += chunk[: _SNIFF_BYTES - len(sniff)]
        if not first_done:
            cut = chunk.find(b"\n")
            part = chunk if cut < 0 else chunk[:cut]
            first_line += part[: max(0, HEADER_MAX_BYTES - len(first_line))]
            first_done = cut >= 0
        lf += chunk.count(b"\n")
        if b"\r" in chunk:  # a fast scan; most files have no CR at all
            cr += chunk.count(b"\r")
            crlf += chunk.count(b"\r\n")
        crlf += previous_last == b"\r" and chunk[:1] == b"\n"
        if not nul and b"\x00" in chunk:
            nul = True
        if not has_text and chunk.translate(None, b" \t\r\n"):
            has_text = True
        previous_last = chunk[-1:]
        last_byte = previous_last
    if total == 0:
        return FileScan(physical_lines=0, first_line=None)
    encoding, codec = _utf16_problem(bytes(sniff))
    cr_endings = lf == 0 and cr > 0
    if cr_endings:
        lines = cr + (last_byte != b"\r")
        first = bytes(first_line).split(b"\r", 1)[0]
    else:
        lines = lf + (last_byte != b"\n")
        first = bytes(first_line)
        if first.endswith(b"\r"):
            first = first[:-1]
    return FileScan(
        physical_lines=lines,
        first_line=first,
        has_text=has_text,
        encoding_problem=encoding,
        needs_clean_copy=encoding is None
        and (nul or cr_endings or (cr > 0 and cr != crlf) or (0 < crlf < lf)),
        cr_line_endings=cr_endings,
        utf16_codec=codec,
    )


def _utf16_problem(sniff: bytes) -> tuple[str | None, str | None]:
    """(reason, codec) when the bytes are UTF-16 (a byte-order mark, or NULs every other
    byte), else (None, None)."""
    if sniff.startswith((b"\xff\xfe", b"\xfe\xff")):
        which = "little" if sniff.startswith(b"\xff\xfe") else "big"
        mark, codec = f"a UTF-16 {which}-endian byte-order mark", "utf-16"
    else:
        even, odd = sniff[0::2].count(0), sniff[1::2].count(0)
        if len(sniff) < 4 or max(even, odd) < 0.3 * (len(sniff) / 2):
            return None, None
        mark = "a NUL byte in every other position"
        codec = "utf-16-be" if even > odd else "utf-16-le"
    reason = (
        f"the file is UTF-16 encoded ({mark}), not UTF-8; re-export it as UTF-8 and re-deliver it"
    )
    return reason, codec


def _count_utf16_lines(chunks, codec: str | None) -> int:
    """Lines of a UTF-16 file, counted on its characters (its LF bytes are half a character)."""
    decoder = codecs.getincrementaldecoder(codec or "utf-16")(errors="replace")
    lines, last = 0, ""
    for chunk in chunks:
        text = decoder.decode(chunk)
        lines += text.count("\n")
        last = text[-1:] or last
    text = decoder.decode(b"", final=True)
    lines += text.count("\n")
    last = text[-1:] or last
    return lines + (bool(last) and last != "\n")


def write_clean_copy(path: Path, target: Path, scan: FileScan) -> list[LineProblem]:
    """Write the file's lines to `target` as plain LF-terminated UTF-8 bytes.

    Line numbers are kept: every physical line stays one line. A line holding a NUL byte
    or a stray CR is written empty and returned as a `LineProblem` (its reject); a CRLF
    becomes LF; in a file with classic-Mac line endings every CR becomes LF.
    """
    problems: list[LineProblem] = []
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as source, open(target, "wb") as out:
        data_lines = _physical_lines(source, scan.cr_line_endings)
        for number, line in enumerate(data_lines, start=1):
            if line.endswith(b"\r\n"):
                body = line[:-2]
            elif line.endswith((b"\n", b"\r")):
                body = line[:-1]
            else:
                body = line
            reason = None
            if (at := body.find(b"\x00")) >= 0:
                reason = (
                    f"the line holds a NUL byte (0x00) at byte {at + 1}, which no text "
                    "export writes: the file is corrupt or partly binary; fix the export "
                    "and re-deliver the file"
                )
            elif (at := body.find(b"\r")) >= 0:
                reason = (
                    f"the line holds a carriage return (CR) that is not part of a CRLF "
                    f"line ending at byte {at + 1}; lines end with LF or CRLF only, so the "
                    "record's fields cannot be trusted: remove stray CRs from the export "
                    "and re-deliver the file"
                )
            if reason:
                preview = body.replace(b"\x00", b"\\0").replace(b"\r", b"\\r")
                problems.append(
                    LineProblem(number, reason, preview[:10_000].decode("utf-8", "replace"))
                )
                body = b""
            out.write(body + b"\n")
    return problems


def _physical_lines(source, cr_endings: bool):
    if not cr_endings:
        yield from source  # binary iteration splits on LF only
        return
    rest = b""
    while chunk := source.read(_CHUNK):
        parts = (rest + chunk).split(b"\r")
        rest = parts.pop()
        for part in parts:
            yield part + b"\n"
    if rest:
        yield rest


__all__ = [
    "DEFAULT_SETTLE_MAX_WAIT_SECONDS",
    "DEFAULT_SETTLE_SECONDS",
    "SUCCESS_MARKER",
    "DayDelivery",
    "FileScan",
    "LineProblem",
    "SettlingTimeout",
    "SkippedEntry",
    "discover_day",
    "scan_file",
    "settle_seconds_from_env",
    "table_uses_markers",
    "wait_until_settled",
    "write_clean_copy",
]
