"""Errors the loader raises when a whole partition must fail rather than load partially."""

from __future__ import annotations

from datetime import date


class PartitionLoadError(Exception):
    """A landing partition breaks the contract in a way no quarantine row can absorb.

    Raised before anything is written, so the partition keeps its previous contents.
    Bad *rows* never raise: they go to `raw.rejects`. This is for problems that make
    every row of a file meaningless, such as a contract column missing from the header.

    `line_number` and `column_name` locate the problem when there is one place to point
    at (the header is line 1), so callers can put them in run metadata as they are.
    """

    def __init__(
        self,
        table: str,
        dt: date,
        source_file: str | None,
        message: str,
        line_number: int | None = None,
        column_name: str | None = None,
    ) -> None:
        self.table = table
        self.dt = dt
        self.source_file = source_file
        self.message = message
        self.line_number = line_number
        self.column_name = column_name
        # Set by load_partitions when several days were loaded: the other failed days,
        # and the days that loaded (and were committed) despite this one.
        self.others: list[PartitionLoadError] = []
        self.completed: list = []
        super().__init__(message)


class UnknownTableError(ValueError):
    """The caller asked for a table that is not in the contract."""


class ShrinkRefusedError(PartitionLoadError):
    """A re-load would leave a loaded day with fewer records than raw holds for it.

    An empty or unmounted landing folder, or a delivery that lost files, looks exactly
    like this; so the day is kept, and only an explicit `allow_shrink` replaces it.
    `rows_before` is what raw held (loaded + rejected), `rows_now` what the files yield.
    """

    def __init__(self, table: str, dt: date, message: str, rows_before: int, rows_now: int) -> None:
        super().__init__(table, dt, None, message)
        self.rows_before = rows_before
        self.rows_now = rows_now


class DeliveryNotReadyError(PartitionLoadError):
    """The day's files were still being written for the whole settling wait."""
