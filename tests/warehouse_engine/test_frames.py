"""`to_pandas()` gives exactly the frame DuckDB's `.df()` gives, whichever path it takes."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from warehouse_engine.frames import to_pandas

# (expression over i = 0..5, whether `to_pandas()` takes the Arrow path for it)
COLUMNS = {
    "text": ("'x' || i", True),
    "text_unicode": ("'Zoë ' || i || ' 東京'", True),
    "int": ("i::integer", True),
    "bigint": ("i::bigint * 10000000000", True),
    "smallint": ("i::smallint", True),
    "tinyint": ("i::tinyint", True),
    "ubigint": ("i::ubigint", True),
    "double": ("i / 3.0::double", True),
    "float": ("(i / 4)::float", True),
    "bool": ("i % 2 = 0", True),
    "timestamp": ("timestamp '2026-01-01' + to_seconds(i * 3600)", True),
    "timestamptz": ("timestamptz '2026-01-01 00:00:00+00' + to_seconds(i)", True),
    "date": ("date '2026-01-01' + i::integer", True),
    "date_far": ("date '1677-01-01' + i::integer * 100000", True),
    "json": ("('{\"n\": ' || i || '}')::json", True),
    "decimal": ("(i / 3)::decimal(18, 3)", False),
    "hugeint": ("i::hugeint", False),
    "list": ("[i, i + 1]", False),
    "struct": ("{'f': 'a' || i, 'l': null}", False),
    "interval": ("to_seconds(i)", False),
}


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def _query(expression: str, nulls: str) -> str:
    value = {
        "none": expression,
        "some": f"case when i % 3 = 0 then null else {expression} end",
        "all": f"case when i >= 0 then null else {expression} end",
    }[nulls]
    return f"select {value} as v, i from range(6) t(i) order by i"


@pytest.mark.parametrize("nulls", ["none", "some", "all"])
@pytest.mark.parametrize("name", list(COLUMNS))
def test_frame_equals_df_for_every_type_and_null_pattern(con, name, nulls):
    sql = _query(COLUMNS[name][0], nulls)
    expected = con.sql(sql).df()
    got = to_pandas(con.sql(sql))
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    # a NULL is what `.df()` makes of it (None, NaN, NaT or NA), not another missing marker
    for a, b in zip(got["v"], expected["v"], strict=True):
        assert type(a) is type(b)


@pytest.mark.parametrize("name", list(COLUMNS))
def test_frame_equals_df_for_an_empty_result(con, name):
    sql = f"select {COLUMNS[name][0]} as v from range(6) t(i) where i < 0"
    pd.testing.assert_frame_equal(to_pandas(con.sql(sql)), con.sql(sql).df(), check_exact=True)


def test_a_result_with_every_arrow_type_at_once_takes_the_arrow_path(con, monkeypatch):
    arrow_ready = [f"case when i % 2 = 0 then null else {e} end as {n}"
                   for n, (e, fast) in COLUMNS.items() if fast]  # fmt: skip
    sql = f"select {', '.join(arrow_ready)} from range(100) t(i)"
    expected = con.sql(sql).df()
    relation = con.sql(sql)
    monkeypatch.setattr(
        duckdb.DuckDBPyRelation, "df", lambda self: pytest.fail("took the .df() path")
    )
    pd.testing.assert_frame_equal(to_pandas(relation), expected, check_exact=True)


def test_one_column_of_another_type_sends_the_whole_result_to_df(con):
    sql = "select 'x' || i as text, (i / 3)::decimal(9, 2) as amount from range(4) t(i)"
    got = to_pandas(con.sql(sql))
    pd.testing.assert_frame_equal(got, con.sql(sql).df(), check_exact=True)
    assert got["amount"].dtype == "float64"  # `.df()`'s float, not Arrow's Decimal objects


def test_repeated_column_names_are_left_to_df(con):
    sql = "select i as a, 'x' as a from range(3) t(i)"
    pd.testing.assert_frame_equal(to_pandas(con.sql(sql)), con.sql(sql).df(), check_exact=True)
