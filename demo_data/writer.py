"""Writes generated tables into the landing-zone layout of docs/landing-contract.md.

`<out>/<source>/<table>/dt=YYYY-MM-DD/part-NNNN.csv|.csv.gz|.jsonl|.jsonl.gz`

Each delivery file varies the way real exports do: some are gzipped, some have their
columns in another order, a few carry an extra column nobody asked for, big days are
split into several parts. All of it is drawn from the seed, so output is byte-identical
for the same arguments (gzip headers carry no timestamp).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from demo_data.strings import date_of_day_number

DELIVERY_DAY_COLUMN = "_dt"
MAX_ROWS_PER_FILE = 400_000
# Level 1 compresses CSV/JSON about 5x at several times the speed of the default level.
GZIP_LEVEL = 1
# Extra columns that real exports add over time; loaders must ignore them with a warning.
EXTRA_CSV_COLUMNS = {
    "email/contacts": ("list_id", "audience_7f3a"),
    "email/events": ("esp_region", "eu-west-1"),
    "billing/customers": ("livemode", "true"),
    "billing/invoices": ("livemode", "true"),
    "billing/subscriptions": ("collection_method", "charge_automatically"),
}


@dataclass(frozen=True)
class DeliveryStyle:
    """How often a table's delivery files are gzipped, reordered, carry an extra column."""

    p_gzip: float = 0.3
    p_shuffled_columns: float = 0.3
    p_extra_column: float = 0.1
    p_split_small_day: float = 0.15


def _day_slices(delivery_day: np.ndarray) -> list[tuple[int, int, int]]:
    """(day, first row, end row) for a table already sorted by delivery day."""
    if len(delivery_day) == 0:
        return []
    boundaries = np.flatnonzero(np.diff(delivery_day)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(delivery_day)]])
    return [(int(delivery_day[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def sort_by_delivery_day(table: pa.Table, order_key: np.ndarray | None = None) -> pa.Table:
    """Stable sort by delivery day (then by `order_key`, e.g. event time, when given)."""
    days = table.column(DELIVERY_DAY_COLUMN).to_numpy()
    if order_key is None:
        order = np.argsort(days, kind="stable")
    else:
        order = np.lexsort((order_key, days))
    return table.take(pa.array(order))


def _part_plan(
    n_rows: int, rng: np.random.Generator, style: DeliveryStyle
) -> list[tuple[int, int]]:
    n_parts = max(1, -(-n_rows // MAX_ROWS_PER_FILE))
    if n_parts == 1 and n_rows >= 20 and rng.random() < style.p_split_small_day:
        n_parts = 2
    edges = np.linspace(0, n_rows, n_parts + 1).astype(np.int64)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(n_parts)]


def _write_file(path: Path, data, gzipped: bool) -> None:
    """Write bytes, gzipped at a fast level with no timestamp in the header (reproducible)."""
    if gzipped:
        data = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
    with open(path, "wb") as handle:
        handle.write(data)


def write_csv_table(
    out_dir: Path,
    table_path: str,
    table: pa.Table,
    rng: np.random.Generator,
    style: DeliveryStyle,
    window_days: range = range(0),
) -> list[Path]:
    """Write a table (sorted by `_dt`) as RFC 4180 CSV delivery files; returns the paths.

    A day of `window_days` without rows still gets a header-only file, as a daily export
    does when nothing happened: a missing day is then a real outage (`delivery_arrived`
    warns), not a quiet day. It draws nothing from `rng`, so the other files keep their bytes.
    """
    written: list[Path] = []
    columns = [c for c in table.column_names if c != DELIVERY_DAY_COLUMN]
    days = table.column(DELIVERY_DAY_COLUMN).to_numpy()
    for day in sorted(set(window_days) - set(days.tolist())):
        folder = out_dir / table_path / f"dt={date_of_day_number(day).isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(table.slice(0, 0).select(columns), sink)
        path = folder / "part-0000.csv"
        # Not in `written`: --bad picks the files it spoils from that list, and keeps its picks.
        _write_file(path, sink.getvalue(), gzipped=False)
    for day, first, end in _day_slices(days):
        folder = out_dir / table_path / f"dt={date_of_day_number(day).isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        for part_no, (a, b) in enumerate(_part_plan(end - first, rng, style)):
            part = table.slice(first + a, b - a).select(columns)
            if rng.random() < style.p_shuffled_columns:
                part = part.select([columns[i] for i in rng.permutation(len(columns))])
            if table_path in EXTRA_CSV_COLUMNS and rng.random() < style.p_extra_column:
                name, value = EXTRA_CSV_COLUMNS[table_path]
                position = int(rng.integers(0, part.num_columns + 1))
                part = part.add_column(
                    position, name, pa.array([value] * part.num_rows, pa.string())
                )
            gzipped = rng.random() < style.p_gzip
            path = folder / f"part-{part_no:04d}.csv{'.gz' if gzipped else ''}"
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(part, sink)
            _write_file(path, sink.getvalue(), gzipped)
            written.append(path)
    return written


def write_jsonl_table(
    out_dir: Path,
    table_path: str,
    lines: pa.Array,
    delivery_day: np.ndarray,
    rng: np.random.Generator,
    style: DeliveryStyle,
    part_start: int = 0,
    part_step: int = 1,
) -> list[Path]:
    """Write finished JSON lines (each ending in a newline, sorted by delivery day).

    A file body is the string array's data buffer, written as is. Independent writers
    of one table number their parts `part_start + k * part_step`.
    """
    written: list[Path] = []
    for day, first, end in _day_slices(delivery_day):
        folder = out_dir / table_path / f"dt={date_of_day_number(day).isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        for part_no, (a, b) in enumerate(_part_plan(end - first, rng, style)):
            gzipped = rng.random() < style.p_gzip
            number = part_start + part_no * part_step
            path = folder / f"part-{number:04d}.jsonl{'.gz' if gzipped else ''}"
            _write_file(path, _string_array_bytes(lines.slice(first + a, b - a)), gzipped)
            written.append(path)
    return written


def _string_array_bytes(values: pa.Array) -> pa.Buffer:
    """The concatenated characters of a (null-free) string array, without copying."""
    if values.null_count:
        raise ValueError("JSON lines must not be null")
    offsets = np.frombuffer(values.buffers()[1], np.int32)[
        values.offset : values.offset + len(values) + 1
    ]
    return values.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


SUCCESS_MARKER = "_SUCCESS"


def mark_days_complete(out_dir: Path) -> int:
    """Write a `_SUCCESS` marker into every day folder of every table, as Spark and Hadoop
    writers do once a day's files are whole (docs/landing-contract.md): the loader then
    takes the day at once instead of waiting for files younger than CDP_SETTLE_SECONDS.
    Returns the number of day folders marked."""
    days = sorted(p for p in Path(out_dir).glob("*/*/dt=*") if p.is_dir())
    for day in days:
        (day / SUCCESS_MARKER).touch()
    return len(days)

