"""Vectorised string building for the demo-source generator: ids, timestamps, phone text.

The generator produces tens of millions of values for a 1M-customer run, so nothing here
loops in Python per row: numbers come from numpy, strings are assembled with Arrow
compute kernels (`take` from small lookup tables, element-wise joins).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_MIX_A = np.uint64(0x9E3779B97F4A7C15)
_MIX_B = np.uint64(0xBF58476D1CE4E5B9)
EPOCH_DAY = date(1970, 1, 1)


def strings_from_fixed_width(chars: np.ndarray) -> pa.Array:
    """Turn an (n, width) uint8 matrix of ASCII codes into an Arrow string array."""
    n, width = chars.shape
    if n * width >= 2**31:
        raise ValueError(f"{n} strings of width {width} exceed one Arrow string array")
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(chars, dtype=np.uint8)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _mix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x * _MIX_A
        x ^= x >> np.uint64(31)
        x = x * _MIX_B
        x ^= x >> np.uint64(29)
    return x


def scramble(indices: np.ndarray, salt: int) -> np.ndarray:
    """A bijection on uint64: distinct indices always give distinct, random-looking values,
    and two streams (two salts) give disjoint values for any realistic index range.

    The salt is mixed before it meets the index: XOR-ed raw, two salts that differ only in
    low bits (`seed ^ 0x3E55`, `seed ^ 0x5EE1`) made index i of one stream the same value
    as index i ^ 0x60B4 of the other, so nearly every survey response id was also some web
    event's messageId. Mixed, the two salts differ in about half of all 64 bits."""
    mixed = _mix(np.array([salt & 0xFFFFFFFFFFFFFFFF], np.uint64))[0]
    return _mix(indices.astype(np.uint64) ^ mixed)


def prefixed_ids(prefix: str, indices: np.ndarray, salt: int, alphabet: str = "base62") -> pa.Array:
    """Unique, opaque ids like `cus_4fT9qZ0aBcD` for distinct integer indices.

    base62 gives 11 characters (covers all of uint64); hex gives 16.
    """
    values = scramble(indices, salt)
    if alphabet == "base62":
        width, table, base = 11, _BASE62, np.uint64(62)
    else:
        width, table, base = 16, _HEX, np.uint64(16)
    prefix_bytes = np.frombuffer(prefix.encode("ascii"), np.uint8)
    chars = np.empty((len(values), len(prefix_bytes) + width), np.uint8)
    chars[:, : len(prefix_bytes)] = prefix_bytes
    for position in range(width - 1, -1, -1):
        chars[:, len(prefix_bytes) + position] = table[(values % base).astype(np.intp)]
        values = values // base
    return strings_from_fixed_width(chars)


def uuid_strings(indices: np.ndarray, salt: int) -> pa.Array:
    """UUID-v4-looking strings, unique for distinct indices (Segment anonymousId/messageId)."""
    high = scramble(indices, salt)
    low = scramble(indices, salt ^ 0x5DEECE66D)
    nibbles = np.empty((len(indices), 32), np.uint8)
    for i in range(16):
        shift = np.uint64(60 - 4 * i)
        nibbles[:, i] = ((high >> shift) & np.uint64(15)).astype(np.uint8)
        nibbles[:, 16 + i] = ((low >> shift) & np.uint64(15)).astype(np.uint8)
    nibbles[:, 12] = 4  # version 4
    nibbles[:, 16] = 8 + (nibbles[:, 16] & 3)  # RFC 4122 variant
    hex_chars = _HEX[nibbles]
    chars = np.empty((len(indices), 36), np.uint8)
    dash = ord("-")
    chars[:, 0:8] = hex_chars[:, 0:8]
    chars[:, 8] = dash
    chars[:, 9:13] = hex_chars[:, 8:12]
    chars[:, 13] = dash
    chars[:, 14:18] = hex_chars[:, 12:16]
    chars[:, 18] = dash
    chars[:, 19:23] = hex_chars[:, 16:20]
    chars[:, 23] = dash
    chars[:, 24:36] = hex_chars[:, 20:32]
    return strings_from_fixed_width(chars)


def digit_strings(values: np.ndarray, width: int) -> pa.Array:
    """Zero-padded decimal strings of a fixed width (e.g. phone digits, postal codes)."""
    values = values.astype(np.int64)
    chars = np.empty((len(values), width), np.uint8)
    for position in range(width - 1, -1, -1):
        chars[:, position] = 48 + (values % 10)
        values = values // 10
    return strings_from_fixed_width(chars)


def take(vocabulary: list[str] | tuple[str, ...] | pa.Array, indices: np.ndarray) -> pa.Array:
    """Pick vocabulary entries by index (the vectorised `random.choice`)."""
    table = (
        vocabulary if isinstance(vocabulary, pa.Array) else pa.array(list(vocabulary), pa.string())
    )
    return table.take(pa.array(indices, pa.int32()))


def concat(*parts: pa.Array | str) -> pa.Array:
    """Element-wise string concatenation; a null part makes the result null."""
    return pc.binary_join_element_wise(*parts, "")


def where(
    mask: np.ndarray, if_true: pa.Array | str | None, if_false: pa.Array | str | None
) -> pa.Array:
    """Vectorised `a if mask else b` for string arrays or scalars."""

    def as_value(value):
        if value is None:
            return pa.scalar(None, pa.string())
        return value

    return pc.if_else(pa.array(mask, pa.bool_()), as_value(if_true), as_value(if_false))


def null_where(mask: np.ndarray, values: pa.Array) -> pa.Array:
    """Blank out values (optional columns people left empty)."""
    return pc.if_else(pa.array(mask, pa.bool_()), pa.scalar(None, values.type), values)


# --- timestamps -------------------------------------------------------------------------

# How each source renders a timestamp; all are ISO-8601. Values without an offset are UTC
# by contract, so a style with a local offset shifts the wall-clock time accordingly.
TS_Z = 0  # 2026-10-01T12:34:56Z
TS_NAIVE_T = 1  # 2026-10-01T12:34:56
TS_NAIVE_SPACE = 2  # 2026-10-01 12:34:56
TS_OFFSET = 3  # 2026-10-01T14:34:56+02:00 (offset chosen per row)
TS_MILLIS_Z = 4  # 2026-10-01T12:34:56.789Z
TS_PLUS_ZERO = 5  # 2026-10-01T12:34:56+00:00
TS_MILLIS_OFFSET = 6  # 2026-10-01T07:34:56.789-05:00

_OFFSETS = (
    ("+01:00", 3600),
    ("+02:00", 7200),
    ("-05:00", -18000),
    ("-07:00", -25200),
    ("+05:30", 19800),
    ("-04:00", -14400),
    ("+10:00", 36000),
)
_TIME_OF_DAY: pa.Array | None = None
_MILLIS: pa.Array | None = None


def _time_of_day_table() -> pa.Array:
    global _TIME_OF_DAY
    if _TIME_OF_DAY is None:
        _TIME_OF_DAY = pa.array(
            [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)], pa.string()
        )
    return _TIME_OF_DAY


def _millis_table() -> pa.Array:
    global _MILLIS
    if _MILLIS is None:
        _MILLIS = pa.array([f".{ms:03d}" for ms in range(1000)] + [""], pa.string())
    return _MILLIS


def format_timestamps(
    epoch_ms: np.ndarray, styles: np.ndarray, offset_choice: np.ndarray
) -> pa.Array:
    """Render UTC epoch milliseconds as ISO-8601 text in a per-row style.

    `styles` holds TS_* codes; `offset_choice` picks the local offset for offset styles.
    """
    epoch_ms = np.asarray(epoch_ms, np.int64)
    styles = np.asarray(styles, np.int8)
    has_offset = (styles == TS_OFFSET) | (styles == TS_MILLIS_OFFSET)
    offset_idx = np.asarray(offset_choice, np.int64) % len(_OFFSETS)
    offset_seconds = np.array([o[1] for o in _OFFSETS], np.int64)[offset_idx]
    local_ms = epoch_ms + np.where(has_offset, offset_seconds * 1000, 0)
    local_seconds = np.floor_divide(local_ms, 1000)
    days = np.floor_divide(local_seconds, 86400)
    second_of_day = local_seconds - days * 86400
    first_day = int(days.min()) if len(days) else 0
    last_day = int(days.max()) if len(days) else 0
    day_texts = pa.array(
        np.datetime_as_string(np.arange(first_day, last_day + 1).astype("datetime64[D]")).tolist(),
        pa.string(),
    )
    date_part = day_texts.take(pa.array(days - first_day, pa.int32()))
    time_part = _time_of_day_table().take(pa.array(second_of_day, pa.int32()))
    with_millis = (styles == TS_MILLIS_Z) | (styles == TS_MILLIS_OFFSET)
    millis_idx = np.where(with_millis, local_ms - local_seconds * 1000, 1000)
    millis_part = _millis_table().take(pa.array(millis_idx, pa.int32()))
    separator = where(styles == TS_NAIVE_SPACE, " ", "T")
    suffix_table = ["Z", "", "+00:00"] + [o[0] for o in _OFFSETS]
    suffix_idx = np.select(
        [(styles == TS_Z) | (styles == TS_MILLIS_Z), styles == TS_PLUS_ZERO, has_offset],
        [0, 2, 3 + offset_idx],
        default=1,
    )
    suffix = take(suffix_table, suffix_idx)
    return concat(date_part, separator, time_part, millis_part, suffix)


def day_number(d: date) -> int:
    return (d - EPOCH_DAY).days


def date_of_day_number(n: int) -> date:
    return date.fromordinal(EPOCH_DAY.toordinal() + n)


def assemble(n: int, pieces: list[tuple[np.ndarray, pa.Array]]) -> pa.Array:
    """Put per-group results back in row order; rows no piece covers are null.

    Building each group's strings only for its own rows (instead of computing every
    variant for every row and picking with `where`) keeps big tables cheap.
    """
    pieces = [(np.asarray(idx), values) for idx, values in pieces if len(idx)]
    values = (
        pa.concat_arrays([v for _, v in pieces] + [pa.nulls(1, pa.string())])
        if pieces
        else pa.nulls(1, pa.string())
    )
    position = np.full(n, len(values) - 1, np.int64)
    offset = 0
    for idx, v in pieces:
        position[idx] = np.arange(offset, offset + len(v))
        offset += len(v)
    return values.take(pa.array(position))


def json_string(values: pa.Array) -> pa.Array:
    """JSON text of a string column: `"value"` or `null` (values never hold `"` or `\\`)."""
    return pc.coalesce(concat('"', values, '"'), pa.scalar("null"))
