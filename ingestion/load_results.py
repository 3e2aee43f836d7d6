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

    @classmethod
    def of_files(
        cls,
        table: str,
        dt: date,
        files: list[FileLoadStats],
        warnings: list[str],
        elapsed_s: float,
        settle_wait_s: float,
    ) -> PartitionLoadResult:
        """A loaded day, its row counts summed over the files that were read (DuckDB's
        loader and Spark's report a day the same way)."""
        data = [f for f in files if f.note is None]
        return cls(
            table=table,
            dt=dt,
            files=files,
            rows_loaded=sum(f.rows_loaded for f in data),
            rows_rejected=sum(f.rows_rejected for f in data),
            rows_suppressed=sum(f.rows_suppressed for f in data),
            warnings=warnings,
            elapsed_s=round(elapsed_s, 3),
            settle_wait_s=round(settle_wait_s, 3),
        )

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def data_files(self) -> list[FileLoadStats]:
        return [f for f in self.files if f.note is None]
