"""Which rows an erasure's row condition selects: ids and emails matched once per row."""

from __future__ import annotations

import duckdb

from privacy.erasure import _Needles, _row_condition

ROWS = [
    # (row, a, b, payload) and whether the needles below select it
    (1, "cus_1234", None, None, True),  # an id, whole value
    (2, "x", "billing:cus_1234", None, True),  # an id inside a lineage value
    (3, "cus_12345", "cus_1234x", None, False),  # longer ids are other ids
    (4, "cus_1", "234", None, False),  # not across two columns
    (5, None, None, '{"email": "Jane.Doe@Example.com"}', True),  # an email, any case
    (6, "jane.doe@example.", "com", None, False),  # not across two columns either
    (7, None, None, '{"phone": "+44 7700 900123"}', True),  # a phone in a JSON text
    (8, "CUS_1234", None, None, False),  # ids keep their case
]


def _selected(needles: _Needles, exact_ids: bool = False) -> set[int]:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (row INTEGER, a VARCHAR, b VARCHAR, payload JSON)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [r[:4] for r in ROWS])
    columns = [('"a"', "VARCHAR"), ('"b"', "VARCHAR"), ('"payload"', "JSON")]
    condition = _row_condition(columns, needles, exact_ids=exact_ids)
    return {r for (r,) in con.execute(f"SELECT row FROM t WHERE {condition}").fetchall()}


def test_a_row_is_selected_when_one_of_its_columns_carries_a_needle():
    needles = _Needles(
        ids={"cus_1234"}, emails={"jane.doe@example.com"}, phones={"447700900123"[-9:]}
    )
    assert _selected(needles) == {r[0] for r in ROWS if r[4]}


def test_exact_ids_match_whole_values_only():
    assert _selected(_Needles(ids={"cus_1234"}), exact_ids=True) == {1}


def test_no_needles_no_condition():
    columns = [('"a"', "VARCHAR")]
    assert _row_condition(columns, _Needles()) is None
    assert _row_condition([], _Needles(ids={"cus_1234"})) is None


def test_emails_match_in_any_letter_case_as_lower_would_fold_them():
    needles = _Needles(emails={"iris.kaya@example.com"})
    con = duckdb.connect()
    con.execute("CREATE TABLE t (row INTEGER, a VARCHAR)")
    texts = [
        "IRIS.KAYA@EXAMPLE.COM",
        "İRİS.KAYA@EXAMPLE.COM",
        "x iris.kaya@example.com y",
        "iris.kaya@example.org",
    ]
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(texts)))
    condition = _row_condition([('"a"', "VARCHAR")], needles)
    selected = {r for (r,) in con.execute(f"SELECT row FROM t WHERE {condition}").fetchall()}
    # DuckDB's lower() turns 'İ' into 'i': the rows the lower-cased comparison selected.
    assert selected == {
        r
        for r, text in enumerate(texts)
        if "iris.kaya@example.com" in con.execute("SELECT lower(?)", [text]).fetchall()[0][0]
    }
    assert selected == {0, 1, 2}
