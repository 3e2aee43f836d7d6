"""What a partition load reports: per-file counts and the day's outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class FileLoadStats:
    """What happened to one landing file (one `raw.load_audit` row).

    Always rows_read = rows_loaded + rows_rejected + rows_suppressed, and for a file that was read,
    lines_in_file = header_lines + blank_lines + continuation_lines + rows_read.
    A skipped entry (dotfile, symlink, foreign suffix) has zero rows, no line counts
    and a `note` saying why it was skipped.
    """

    source_file: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    lines_in_file: int | None = None
    header_lines: int | None = None
    blank_lines: int | None = None
    continuation_lines: int | None = None
    note: str | None = None
    rows_suppressed: int = 0


@dataclass(frozen=True)
class PartitionLoadResult:
    """Outcome of loading one (table, dt) partition; what a Dagster asset reports.

    `status` is `loaded`, or `incomplete` when the table uses `_SUCCESS` markers and the
    day has none yet: nothing was read or replaced, the day keeps what it had.
    `files` holds the skipped entries too (with a `note`); `data_files` only what was read.
    """

    table: str
    dt: date
    files: list[FileLoadStats]
    rows_loaded: int
    rows_rejected: int
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    status: str = "loaded"
    settle_wait_s: float = 0.0
    rows_suppressed: int = 0

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def data_files(self) -> list[FileLoadStats]:
        return [f for f in self.files if f.note is None]
