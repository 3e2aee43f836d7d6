"""Ingestion on Spark yields exactly what DuckDB's loader yields (issue 15, item 2).

A generated `--bad` zone plus hand-made hard files (a multi-line quoted record next to an
unterminated quote, classic-Mac line endings with a NUL line, a UTF-16 file, a file
missing a contract column, rows about an erased person, another exporter's habits: a BOM,
CRLF, reversed columns with an extra one, a Latin-1 line, a line delivered again the next
day, timestamps the engines' casts read differently, reordered JSON keys, CSV in a
`.jsonl`) is loaded by
`ingestion.load.load_partitions` into DuckDB and by
`ingestion.spark_reading.load_partitions_on_spark` on one local[2] Spark session; the raw
rows, the rejects (reason, file, line, column, raw line) and the audit counts must be
equal value for value, and a day that fails must fail with the same message.

Only the tables the hard files and the zone's rejects are in (`TABLES`): every table of a
clean zone is read by Spark inside `CDP_ENGINE=spark cdp run` and compared the same way
in tests/reliability/test_spark_equivalence.py. Each table costs a few Spark jobs.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from ingestion.contract import RAW_TABLES
from ingestion.errors import PartitionLoadError, ShrinkRefusedError
from ingestion.load import load_partitions
from ingestion.spark_days import committed_days, rewrite_days_from_step_store
from ingestion.spark_reading import day_dir, load_partitions_on_spark, raw_rows_path
from ingestion.suppression import (
    SUPPRESSION_TABLE,
    ensure_suppression_table,
    keyed_hash,
)
from tests.reliability.test_spark_equivalence import require_java
from warehouse_engine.ingest_equivalence import compare_raw
from warehouse_engine.settings import EngineSettings
from warehouse_engine.spark_session import pipeline_spark_session

pytestmark = pytest.mark.slow

DAY_1, DAY_2 = date(2026, 10, 13), date(2026, 10, 14)
LOADED_AT = datetime(2026, 10, 15, 3, 0, 0)
SALT = "spark-reading-test-salt-0123456789"
# The hard files' tables, email_events for the zone's most varied CSV rejects and
# web_events for JSON lines' (the --bad zone's other tables have no reject).
TABLES = (
    "billing_invoices",
    "email_contacts",
    "email_events",
    "support_tickets",
    "survey_responses",
    "web_events",
)


def _load_on_spark(spark, table: str, days: list[date], zone: Path, raw_root: Path, hashes):
    return load_partitions_on_spark(
        spark,
        table,
        days,
        zone,
        raw_root,
        loaded_at=LOADED_AT,
        settle_seconds=0,
        suppressed_hashes=hashes,
    )


def _write(zone: Path, table: str, dt: date, name: str, data: bytes) -> None:
    folder = zone / RAW_TABLES[table].landing_path / f"dt={dt.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def _hard_files(zone: Path) -> None:
    survey_header = (
        '"response_id","survey_id","respondent_email","score","comment","submitted_at"\n'
    )
    _write(
        zone,
        "survey_responses",
        DAY_2,
        "part-9001.csv",
        (
            survey_header
            + 'r-9001,s1,a@example.com,9,"great,\nreally ""great""",2026-10-14T08:00:00+02:00\n'
            + 'r-9002,s1,b@example.com,3,"never closed,2026-10-14T09:00:00Z\n'
            + "\n"
            + "r-9003,s1,c@example.com,ten,fine,2026-10-14 10:00:00\n"
            + 'r-9004,s1,d@example.com,10,"two\n\nblank-split lines",2026-10-14 11:00:00\n'
        ).encode(),
    )
    ticket_header = (
        "ticket_id,requester_email,requester_name,requester_phone,subject,status,priority,"
        "channel,created_at,updated_at,first_responded_at,solved_at,satisfaction"
    )
    ticket = "t-{n},x{n}@example.com,X,,Hi,open,low,web,2026-10-14 08:00:00,2026-10-14 08:00:00,,,"
    _write(
        zone,
        "support_tickets",
        DAY_2,
        "part-9003.csv",
        "\r".join(
            [ticket_header, ticket.format(n=1), ticket.format(n=2) + "\x00", ticket.format(n=3)]
        ).encode()
        + b"\r",
    )
    contacts = (
        "contact_id,email,first_name,last_name,phone,city,country,subscribed,created_at,updated_at\n"
        "c-9,u@example.com,U,V,,,,true,2026-10-14 08:00:00,2026-10-14 08:00:00\n"
    )
    _write(zone, "email_contacts", DAY_2, "part-9005.csv", contacts.encode("utf-16"))
    # Another producer's timestamps: texts one engine's cast reads and the other's refuses
    # or reads differently (24:00, no seconds, a space before the offset, CET, '2026-10'),
    # typed by the one rule (TIMESTAMP_PATTERN in ingestion/column_typing.py).
    stamps = [
        "2026-10-13T08:00Z",
        "2026-10-13 08:30 UTC",
        "2026-10-13T08:00:00 +05:30",
        "2026-10-13T24:00:00Z",
        "2026-10-13T08:00:00CET",
        "+2026-10-13T08:00:00Z",
        "2026-10",
    ]
    _write(
        zone,
        "survey_responses",
        DAY_1,
        "part-9006.csv",
        (
            survey_header
            + "".join(f"r-91{n},s1,e@example.com,7,ok,{t}\n" for n, t in enumerate(stamps))
        ).encode(),
    )
    # Another exporter's contacts: a BOM, CRLF, the columns reversed with an extra one, an
    # address over two quoted lines, yes/N/1 for booleans, a Latin-1 line; its first line
    # delivered again the next day.
    names = [
        "contact_id", "email", "first_name", "last_name", "phone", "city", "country",
        "subscribed", "created_at", "updated_at",
    ]  # fmt: skip
    values = [
        ["c-91", "v@example.com", "V", "W", "", '"Main St\r\nrear"', "fr", "yes"],
        ["c-92", "w@example.com", "W", "X", "", "Lyon", "fr", "N"],
        ["c-93", "x@example.com", "X", "Y", "", "Nice", "fr", " 1 "],
    ]
    stamp = "2026-10-13 08:00:00"

    def reversed_line(row: list[str]) -> str:
        return ",".join(reversed([*row, stamp, stamp])) + ',"note, extra"\r\n'

    header = ",".join(reversed(names)) + ",crm_note\r\n"
    lines = [reversed_line(row) for row in values]
    latin = reversed_line(["c-94", "y@example.com", "Jürgen", "Müller", "", "Köln", "de", "no"])
    _write(
        zone,
        "email_contacts",
        DAY_1,
        "part-9007.csv",
        b"\xef\xbb\xbf" + "".join([header, *lines]).encode() + latin.encode("latin-1"),
    )
    _write(zone, "email_contacts", DAY_2, "part-9008.csv", (header + lines[0]).encode())
    # JSON lines with keys reordered, an extra key, escapes and CRLF; a .jsonl holding CSV.
    event = (
        '{"x_extra":{"note":"caf\\u00e9"},"receivedAt":"2026-10-14T08:00:01Z",'
        '"timestamp":"2026-10-14T08:00Z","anonymousId":"a-1","type":"page",'
        '"messageId":"m-9101"}\r\n'
    )
    _write(zone, "web_events", DAY_2, "part-9009.jsonl", event.encode())
    _write(
        zone,
        "web_events",
        DAY_2,
        "part-9010.jsonl",
        b"messageId,type,timestamp\nm-1,page,2026-10-14T08:00:00Z\n",
    )
    # A contract column missing from the header fails the whole day, on both engines.
    _write(
        zone,
        "billing_invoices",
        DAY_1,
        "part-9004.csv",
        b"invoice_id,customer_id\ninv-1,cus-1\n",
    )


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Both engines' output for the same zone: (DuckDB connection, raw root, outcomes)."""
    require_java()
    work = tmp_path_factory.mktemp("spark-reading")
    zone = work / "landing"
    subprocess.run(
        [
            str(Path(sys.executable).with_name("cdp")),
            "generate",
            "--out",
            str(zone),
            "--customers",
            "40",
            "--days",
            "2",
            "--seed",
            "3",
            "--bad",
            "--erasure-requests",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    _hard_files(zone)
    patch = pytest.MonkeyPatch()
    patch.setenv("CDP_PRIVACY_SALT", SALT)
    con = duckdb.connect(str(work / "warehouse.duckdb"))
    # Erased earlier: the person behind the first contact of day 1 (email and contact id).
    first = (zone / "email/contacts/dt=2026-10-13/part-0000.csv").read_text().splitlines()[1]
    contact_id, email = (v.strip('"') for v in first.split(",")[:2])
    ensure_suppression_table(con)
    hashes = [
        keyed_hash(con, SALT, "email", email),
        keyed_hash(con, SALT, "contact_id", contact_id),
    ]
    for h in hashes:
        con.execute(
            f"INSERT INTO {SUPPRESSION_TABLE} VALUES (?, 'email', 'req-1', TIMESTAMP '2026-10-12')",
            [h],
        )

    # The session `CDP_ENGINE=spark cdp run` loads on (dbt-spark's, Hive metastore
    # included), with its Derby files under this test's folder.
    settings = EngineSettings.from_environment(
        {
            "CDP_ENGINE": "spark",
            "CDP_SPARK_MASTER": "local[2]",
            "CDP_SPARK_SHUFFLE_PARTITIONS": "2",
            "CDP_SPARK_WAREHOUSE": str(work / "spark_warehouse"),
        },
        duckdb_warehouse=work / "warehouse.duckdb",
    )
    spark = pipeline_spark_session(settings)
    raw_root = work / "spark_raw"
    outcomes = {}
    for table in TABLES:
        for engine in ("duckdb", "spark"):
            try:
                if engine == "duckdb":
                    load_partitions(
                        con, table, [DAY_1, DAY_2], zone, loaded_at=LOADED_AT, settle_seconds=0
                    )
                else:
                    _load_on_spark(spark, table, [DAY_1, DAY_2], zone, raw_root, hashes)
                outcomes[table, engine] = None
            except PartitionLoadError as exc:
                outcomes[table, engine] = exc
    yield con, raw_root, outcomes, spark, zone, hashes
    spark.stop()
    con.close()
    patch.undo()


def test_spark_reader_yields_duckdb_raw_rows_rejects_and_audit(loaded):
    con, raw_root, outcomes, *_ = loaded
    comparisons = compare_raw(con, raw_root, list(TABLES))
    differing = [
        (c.relation, c.duckdb_rows, c.spark_rows, c.examples) for c in comparisons if not c.same
    ]
    assert differing == []

    # The zone exercises what the reader does (else equality would prove little).
    def duck(sql: str) -> int:
        return con.execute(sql).fetchone()[0]

    assert duck("SELECT count(DISTINCT reason) FROM raw.rejects") >= 10
    assert duck("SELECT sum(rows_suppressed) FROM raw.load_audit") >= 1
    assert duck("SELECT sum(continuation_lines) FROM raw.load_audit") >= 3
    assert duck("SELECT count(*) FROM raw.rejects WHERE reason LIKE '%UTF-16%'") == 1
    assert duck("SELECT count(*) FROM raw.rejects WHERE reason LIKE '%NUL byte%'") >= 2
    assert duck("SELECT count(*) FROM raw.rejects WHERE reason LIKE '%unterminated%'") >= 2
    assert duck("SELECT count(*) FROM raw.rejects WHERE reason LIKE '%UTF-8%'") >= 1
    assert duck("SELECT count(*) FROM raw.survey_responses WHERE response_id = 'r-9001'") == 1
    # The timestamp rule: no seconds and ' UTC' load, the texts one engine's cast reads
    # differently are rejected (on both: compared above).
    assert duck(
        "SELECT list(response_id ORDER BY response_id) FROM raw.survey_responses "
        "WHERE response_id LIKE 'r-91%'"
    ) == ["r-910", "r-911"]
    assert duck("SELECT count(*) FROM raw.rejects WHERE raw_record LIKE 'r-91%'") == 5
    assert (
        duck("SELECT count(*) FROM raw.email_contacts WHERE contact_id IN ('c-91', 'c-92', 'c-93')")
        == 4
    )  # c-91 on both days
    assert duck("SELECT count(*) FROM raw.web_events WHERE message_id = 'm-9101'") == 1


def test_a_failing_day_fails_with_the_same_message_and_the_other_day_commits(loaded):
    con, raw_root, outcomes, *_ = loaded
    on_duckdb, on_spark = (
        outcomes["billing_invoices", "duckdb"],
        outcomes["billing_invoices", "spark"],
    )
    assert on_duckdb is not None and on_spark is not None
    assert (on_spark.dt, on_spark.source_file, on_spark.column_name) == (
        on_duckdb.dt,
        on_duckdb.source_file,
        on_duckdb.column_name,
    )
    assert on_spark.message == on_duckdb.message
    assert [r.dt for r in on_spark.completed] == [DAY_2]
    assert not day_dir(raw_root, "billing_invoices", DAY_1).exists()
    assert day_dir(raw_root, "billing_invoices", DAY_2).is_dir()
    assert {k: v for k, v in outcomes.items() if v is not None} == {
        ("billing_invoices", "duckdb"): on_duckdb,
        ("billing_invoices", "spark"): on_spark,
    }


def test_a_reload_that_would_shrink_a_day_is_refused_and_keeps_the_day(loaded):
    con, raw_root, outcomes, spark, zone, hashes = loaded
    folder = day_dir(raw_root, "survey_responses", DAY_2)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    extra = zone / "surveys/responses/dt=2026-10-14/part-9001.csv"
    kept = extra.read_bytes()
    extra.unlink()
    try:
        with pytest.raises(ShrinkRefusedError) as refused:
            _load_on_spark(spark, "survey_responses", [DAY_2], zone, raw_root, hashes)
        assert "--allow-shrink" in refused.value.message
        assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
        assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []
    finally:
        extra.write_bytes(kept)


def test_days_rewritten_after_an_erasure_are_read_by_spark_next_to_days_it_wrote(loaded):
    """An erasure rewrites Spark's day folders from the step store (DuckDB writes them);
    a later Spark load of another day puts Spark's files next to them, and Spark reads the
    table through its glob as one (the same types from both writers)."""
    con, raw_root, outcomes, spark, zone, hashes = loaded
    con.execute(
        "DELETE FROM raw.email_contacts WHERE _dt = ? AND contact_id = "
        "(SELECT min(contact_id) FROM raw.email_contacts WHERE _dt = ?)",
        [DAY_1, DAY_1],
    )
    assert rewrite_days_from_step_store(con, raw_root) == sum(
        len(committed_days(raw_root, t)) for t in TABLES
    )
    _load_on_spark(spark, "email_contacts", [DAY_2], zone, raw_root, hashes)
    on_spark = spark.read.parquet(raw_rows_path(raw_root, "email_contacts"))
    (in_store,) = con.execute("SELECT count(*) FROM raw.email_contacts").fetchone()
    assert on_spark.count() == in_store
    assert [c for c in compare_raw(con, raw_root, list(TABLES)) if not c.same] == []


def test_lower_case_on_spark_is_duckdbs(loaded):
    """Java's lower() lowers a word-final capital sigma to 'ς' and a dotted capital I to 'i'
    plus a combining dot, DuckDB's to 'σ' and 'i': dbt's `lower_text` on Spark (staging's
    emails) and ingestion's typing on Spark map both first, and lower as DuckDB does."""
    import jinja2
    import sqlglot

    from ingestion.column_typing import _spark_meaning

    con, _, _, spark, *_ = loaded
    values = ["ΑΝΝΑ.ΣΑΣ@EXAMPLE.GR", "İPEK@EXAMPLE.COM.TR", "STRASSE ẞ", "ÀÉÎ Ωmega"]
    macros = (Path(__file__).parents[2] / "dbt_project/macros/text_cleaning.sql").read_text()
    dbt_lower = jinja2.Environment().from_string(macros + "{{ spark__lower_text('v') }}")
    typing_lower = sqlglot.parse_one("lower(v)", read="duckdb").transform(_spark_meaning)
    rows = ", ".join("('" + v + "')" for v in values)
    on_spark = spark.sql(
        f"SELECT v, {dbt_lower.render().strip()}, {typing_lower.sql(dialect='spark')}, lower(v) "
        f"FROM VALUES {rows} AS t(v)"
    ).collect()
    on_duckdb = {v: con.execute("SELECT lower(?)", [v]).fetchone()[0] for v in values}
    assert [(r[0], r[1], r[2]) for r in on_spark] == [
        (v, on_duckdb[v], on_duckdb[v]) for v in values
    ]
    assert any(r[3] != on_duckdb[r[0]] for r in on_spark)  # Spark's own lower() differs
