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


def _rows_selected(
    names: list[str], rows: list[tuple], needles: _Needles, exact_ids: bool = False
) -> list[int]:
    """The rows (`row`, then a text value per name) of a table with text columns `names`
    that the needles' row condition selects, in row order."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t (row INTEGER, {', '.join(f'{n} VARCHAR' for n in names)})")
    con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * (len(names) + 1))})", rows)
    condition = _row_condition([(f'"{n}"', "VARCHAR") for n in names], needles, exact_ids)
    return con.execute(f"SELECT list(row ORDER BY row) FROM t WHERE {condition}").fetchone()[0]


TYPED_ROWS = [
    # (row, ticket_id, response_id, source_system, source_record_id, source_table, raw_record,
    #  note) and whether ticket 4521's needles select it
    (1, "4521", None, None, None, None, None, "", True),  # its own column
    (2, None, "4521", None, None, None, None, "", False),  # a survey response of that number
    (3, None, None, "support", "4521", None, None, "", True),  # its identity record
    (4, None, None, "survey", "4521", None, None, "", False),  # the survey's record
    (5, None, None, None, None, None, None, "support:4521", True),  # its lineage value
    (6, None, None, None, None, None, None, "survey:4521", False),  # another system's
    (7, None, None, None, None, "support_tickets", "4521,Jane,...", "", True),  # quarantined
    (8, None, None, None, None, "survey_responses", "4521,9,...", "", False),  # not its table
    (9, None, None, None, None, None, None, '{"ticket_id":4521}', True),  # a JSON value
    (10, None, None, None, None, None, None, "4521 Oak Street", False),  # an address
    (11, None, None, "support", "9000", None, None, "", False),  # another ticket's record
]


def test_a_plain_number_id_matches_only_where_its_kind_can_be():
    needles = _Needles()
    needles.add_record("support", "4521")
    assert needles.ids == {"4521", "support:4521"}
    names = [
        "ticket_id",
        "response_id",
        "source_system",
        "source_record_id",
        "source_table",
        "raw_record",
        "note",
    ]
    rows = [r[:8] for r in TYPED_ROWS]
    expected = {r[0] for r in TYPED_ROWS if r[8]}
    for exact_ids in (False, True):
        selected = set(_rows_selected(names, rows, needles, exact_ids))
        # whole values only: not inside a raw line or a JSON text
        assert selected == (expected - {7, 9} if exact_ids else expected), exact_ids


def test_a_record_id_column_without_its_system_still_matches_a_plain_number():
    """A state table keyed by `source_record_id` alone (one source's records) keeps no
    system to tell them apart: the number matches there as it would anywhere."""
    needles = _Needles()
    needles.add_id("4521", "billing", "customer_id")
    rows = [(1, "4521"), (2, "45210")]
    assert _rows_selected(["source_record_id"], rows, needles) == [1]


def test_a_plain_number_is_a_record_id_only_when_found_as_one():
    """An invoice 4521 is not the billing customer 4521, in an identity record
    (`source_system`, `source_record_id`) nor in a mart's `billing_customer_id`."""
    needles = _Needles()
    needles.add_id("4521", "billing", "invoice_id")
    assert needles.ids == {"4521"}  # no lineage value: an invoice is no identity record
    rows = [
        (1, "billing", "4521", None, None),  # the billing customer 4521: not the invoice
        (2, None, None, "4521", "77"),  # the invoice
        (3, None, None, "88", "4521"),  # another invoice of the billing customer 4521
    ]
    names = ["source_system", "source_record_id", "invoice_id", "billing_customer_id"]
    assert _rows_selected(names, rows, needles) == [2]


def test_a_plain_number_user_id_is_no_web_identity_record_of_that_number():
    """A user id seen on the person's rows is matched as a user id (its column, the visitor
    id `user:4521` of its events without a browser), not as the web identity `web:4521` or
    the visitor `4521`, which may be a stranger's browser numbered 4521 (a tracker that
    numbers browsers)."""
    needles = _Needles()
    needles.add_id("4521", "web", "user_id")
    assert needles.ids == {"4521", "user:4521"}
    rows = [
        (1, "web", "4521", "web:4521", None, None, None),  # a browser's identity record
        (2, None, None, None, "4521", None, "4521"),  # that browser's event
        (3, None, None, None, "9", "4521", "9"),  # the person's event on their browser
        (4, None, None, None, None, None, "user:4521"),  # their server-side session
        (5, None, None, None, None, None, None),
    ]
    names = [
        "source_system",
        "source_record_id",
        "record_key",
        "anonymous_id",
        "user_id",
        "visitor_id",
    ]
    assert _rows_selected(names, rows, needles) == [3, 4]
