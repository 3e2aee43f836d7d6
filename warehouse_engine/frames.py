"""DuckDB results as pandas frames: the frame `.df()` gives, built through Arrow when faster.

DuckDB's `.df()` turns text into Python strings one value at a time; Arrow's conversion
does the same faster (`bench/frames.py` at 1,000,000 customers: the identity step's
frame of 2,240,888 records x 8 text columns, 2.10 -> 1.35 s). Arrow's frame differs from
`.df()`'s for some types (a nullable integer becomes float64 there, Int64 here; a date a
Python date there, a timestamp here; a decimal a Decimal there, a float here), so
`to_pandas()` takes the Arrow path only for results whose every column is of a type both
convert alike (a date once cast to a timestamp, as `.df()` gives it), restores the
nullable integer and boolean dtypes `.df()` gives a column with NULLs, and hands every
other result to `.df()`. tests/warehouse_engine/test_frames.py holds it to `.df()`'s
frame, dtype for dtype and value for value.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa

# DuckDB types whose Arrow conversion gives `.df()`'s column when the column has no NULL,
# with the pandas dtype `.df()` gives such a column when it has one (None: the same).
_ALIKE: dict[str, str | None] = {
    "VARCHAR": None,
    "JSON": None,  # text in Arrow, as in `.df()`
    "DATE": None,  # cast to a timestamp first (_CAST)
    "DOUBLE": None,
    "FLOAT": None,
    "TIMESTAMP": None,
    "TIMESTAMP WITH TIME ZONE": None,
    "BOOLEAN": "boolean",
    "TINYINT": "Int8",
    "SMALLINT": "Int16",
    "INTEGER": "Int32",
    "BIGINT": "Int64",
    "UTINYINT": "UInt8",
    "USMALLINT": "UInt16",
    "UINTEGER": "UInt32",
    "UBIGINT": "UInt64",
}

# Arrow types a column is cast to before the conversion, to come out as `.df()`'s dtype.
_CAST: dict[str, pa.DataType] = {"DATE": pa.timestamp("us")}


def to_pandas(relation: duckdb.DuckDBPyRelation) -> pd.DataFrame:
    """`relation.df()`, the same frame, through Arrow when every column allows it."""
    types = [str(t) for t in relation.types]
    names = relation.columns
    if len(set(names)) != len(names) or any(t not in _ALIKE for t in types):
        return relation.df()
    table = relation.to_arrow_table()
    for position, kind in enumerate(types):
        if kind in _CAST:
            cast = table.column(position).cast(_CAST[kind])
            table = table.set_column(position, table.field(position).with_type(cast.type), cast)
    # `.df()` gives every text value its own string object: so does this (no deduplication)
    result = table.to_pandas(deduplicate_objects=False)
    for position, (name, kind) in enumerate(zip(names, types, strict=True)):
        nullable = _ALIKE[kind]
        column = table.column(position)
        if nullable is not None and column.null_count:
            result[name] = pd.Series(
                pd.api.types.pandas_dtype(nullable).__from_arrow__(column), index=result.index
            )
    return result
