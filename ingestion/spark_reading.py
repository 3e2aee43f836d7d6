"""Ingestion on Spark: the landing zone read by Spark with the DuckDB loader's own rules.

Not a second loader. Every rule comes from the modules DuckDB's loader runs:

* **What a day's delivery is** (`ingestion.load.plan_day`: files, skipped entries,
  `_SUCCESS` markers, settling) runs on the driver, as in `load_partition`.
* **Reading a file** runs in a Spark task, one task per file (`mapInArrow` over
  `spark.range(n_files)` split into n_files partitions): the task calls the same
  `scan_file` (physical lines counted from the bytes, whole-file checks),
  `check_header` and `read_records` (lines, CSV splitting with quotes and multi-line
  records, JSON parsing, structure errors) that `load_partition` calls, on an
  in-memory DuckDB inside the task, and hands Spark the **staged text**: one row per
  record, `ln, record, odd_quotes, structure_error, s_<column>`, plus one row per file
  with its line counts, warnings and the error that fails its day, if any.
* **Typing and reject rules** run on Spark: `spark_typed_select`, the same SQL as
  `typed_select` transpiled (ingestion/column_typing.py).
* **Suppression** (rows about erased people) runs on Spark: the same
  `row_hashes_sql` (ingestion/suppression.py) transpiled, joined to the suppression
  list the caller passes.
* **Accounting**: per file, `check_line_accounting` (file_reading.py) on the counts:
  lines_in_file = header + blank + continuation + records, records = loaded + rejected +
  suppressed. A day that breaks it is not committed.
* **The commit** of a day is one rename: the day's raw rows, rejects and audit rows are
  written as Parquet into a hidden folder next to the table, then renamed over
  `<raw_root>/<table>/dt=<day>/` (`rows/`, `rejects/`, `load_audit/`), so a reader sees
  the old day or the new one whole. A re-load that would shrink a day is refused unless
  `allow_shrink`, as on DuckDB.

So a day either commits whole or raises the `PartitionLoadError` DuckDB's loader raises,
with the same message. What differs: the tasks need `duckdb` and this package installed
where they run (locally, the driver's Python); the driver renames folders, so it must see
`raw_root` as a local path (the hand-off's limit, docs/spark.md).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ingestion.column_typing import spark_typed_select
from ingestion.contract import LOAD_AUDIT_COLUMNS, RawTable
from ingestion.errors import PartitionLoadError
from ingestion.file_reading import ParsedFile, check_header, check_line_accounting, read_records
from ingestion.load import plan_day, results_or_first_error, table_spec
from ingestion.load_results import FileLoadStats, PartitionLoadResult
from ingestion.load_session import as_utc_naive, relative_path
from ingestion.partition_commit import audit_rows, shrink_refused_error

#: The Parquet sub-folders of one committed day.
ROWS, REJECTS, AUDIT = "rows", "rejects", "load_audit"

_STAGED_BASE = ("file_index", "kind", "ln", "record", "odd_quotes", "structure_error")


@dataclass
class _FileTask:
    """One landing file, as shipped to its Spark task."""

    index: int
    day_index: int
    dt: date
    path: str
    source_file: str


@dataclass
class _FileOutcome:
    """What a task reports about its file (the `kind = 'file'` row)."""

    index: int
    scan_error: dict | None = None
    header_error: dict | None = None
    read_error: dict | None = None
    header_warnings: list[str] = field(default_factory=list)
    read_warnings: list[str] = field(default_factory=list)
    parsed: dict | None = None  # ParsedFile's counts


def raw_rows_path(raw_root: Path, table: str) -> str:
    """A glob of every committed day's raw rows of `table` (for spark.read.parquet)."""
    return str(Path(raw_root) / table / "dt=*" / ROWS)


def rejects_path(raw_root: Path) -> str:
    """A glob of every committed day's rejects, all tables."""
    return str(Path(raw_root) / "*" / "dt=*" / REJECTS)


def load_audit_path(raw_root: Path) -> str:
    return str(Path(raw_root) / "*" / "dt=*" / AUDIT)


def load_partitions_on_spark(
    spark: Any,
    table: str,
    dts: Iterable[date],
    landing_dir: Path,
    raw_root: Path,
    loaded_at: datetime | None = None,
    allow_shrink: bool = False,
    settle_seconds: float | None = None,
    settle_max_wait_seconds: float | None = None,
    suppressed_hashes: Iterable[str] = (),
) -> list[PartitionLoadResult]:
    """Load days of one raw table with Spark into `<raw_root>/<table>/dt=<day>/`.

    The same outcomes as `ingestion.load.load_partitions` on DuckDB: the same raw rows,
    rejects (reasons, files, lines) and audit counts; each day commits on its own, and a
    `PartitionLoadError` (the first failing day's, with `others` and `completed` set) is
    raised after the other days committed. All files of all days are read in one Spark
    job and typed in one query. `suppressed_hashes` are the keyed hashes of
    `privacy.suppressed_identifiers` (rows about erased people are counted, not stored).
    The session's time zone must be UTC (the pipeline's session is).
    """
    started = time.perf_counter()
    spec = table_spec(table)
    landing_dir = Path(landing_dir)
    raw_root = Path(raw_root)
    loaded_at_utc = as_utc_naive(loaded_at or datetime.now(UTC))
    _require_utc(spark)
    days = sorted(set(dts))

    outcomes: dict[date, PartitionLoadResult | PartitionLoadError] = {}
    plans = {}
    for dt in days:
        try:
            plan = plan_day(spec, dt, landing_dir, settle_seconds, settle_max_wait_seconds, started)
        except PartitionLoadError as exc:
            outcomes[dt] = exc
            continue
        if plan.incomplete is not None:
            outcomes[dt] = plan.incomplete
        else:
            plans[dt] = plan
    tasks: list[_FileTask] = []
    for day_index, (dt, plan) in enumerate(plans.items()):
        for path in plan.day.files:
            source_file = relative_path(landing_dir, path)
            tasks.append(_FileTask(len(tasks), day_index, dt, str(path), source_file))

    read = _read_files(spark, spec, landing_dir, tasks)
    try:
        file_outcomes = read.outcomes
        typed = None
        ok_days = []
        for dt, plan in plans.items():
            day_tasks = [t for t in tasks if t.dt == dt]
            error = _first_error([file_outcomes[t.index] for t in day_tasks], spec, dt)
            if error is not None:
                outcomes[dt] = error
                continue
            for t in day_tasks:
                plan.warnings.extend(file_outcomes[t.index].header_warnings)
            for t in day_tasks:
                plan.warnings.extend(file_outcomes[t.index].read_warnings)
            ok_days.append(dt)
        if any(t.dt in ok_days for t in tasks):
            typed, view = _typed_rows(spark, spec, read.staged, suppressed_hashes)
            read.cached.append(typed)  # unpersisted with the staged text, below
            read.views.append(view)
            counts = _counts_per_file(typed)
        else:
            counts = {}
        checked: dict[date, list[FileLoadStats]] = {}
        for dt in ok_days:
            day_tasks = [t for t in tasks if t.dt == dt]
            try:
                stats = _checked_stats(spec, dt, day_tasks, file_outcomes, counts)
                _refuse_shrink(spec, dt, raw_root, stats, allow_shrink)
            except PartitionLoadError as exc:
                outcomes[dt] = exc
                continue
            checked[dt] = stats
        if checked:
            with _DayWriter(spark, spec, raw_root, loaded_at_utc) as writer:
                writer.write(typed, {dt: [t for t in tasks if t.dt == dt] for dt in checked})
                for dt, stats in checked.items():
                    plan = plans[dt]
                    writer.commit(dt, stats + plan.skipped)
                    outcomes[dt] = PartitionLoadResult.of_files(
                        spec.name,
                        dt,
                        stats + plan.skipped,
                        plan.warnings,
                        time.perf_counter() - started,
                        plan.waited,
                    )
    finally:
        read.release()

    return results_or_first_error([outcomes[dt] for dt in days])


def _require_utc(spark: Any) -> None:
    zone = spark.conf.get("spark.sql.session.timeZone")
    if zone not in ("UTC", "Etc/UTC", "GMT", "+00:00", "Z"):
        raise ValueError(
            f"the Spark session's time zone is {zone!r}; ingestion on Spark reads timestamps "
            "without an offset as UTC and needs spark.sql.session.timeZone=UTC"
        )


# ---------------------------------------------------------------- reading, in the tasks


@dataclass
class _Read:
    spark: Any
    staged: Any  # DataFrame of kind='row' rows, persisted
    outcomes: dict[int, _FileOutcome]
    cached: list[Any]
    views: list[str] = field(default_factory=list)

    def release(self) -> None:
        """Drop what Spark keeps of the load (the records hold personal data)."""
        for frame in self.cached:
            frame.unpersist()
        for view in self.views:
            self.spark.catalog.dropTempView(view)


def _staged_schema(spec: RawTable) -> Any:
    from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType

    fields = [
        StructField("file_index", LongType(), False),
        StructField("kind", StringType(), False),
        StructField("ln", LongType(), True),
        StructField("record", StringType(), True),
        StructField("odd_quotes", BooleanType(), True),
        StructField("structure_error", StringType(), True),
    ]
    fields += [StructField(f"s_{c.name}", StringType(), True) for c in spec.columns]
    return StructType(fields)


def _read_files(spark: Any, spec: RawTable, landing_dir: Path, tasks: list[_FileTask]) -> _Read:
    """Run `read_file_task` on every file, one Spark task per file; collect the per-file
    outcomes and keep the records (staged text) checkpointed for the typing."""
    if not tasks:
        return _Read(spark, staged=None, outcomes={}, cached=[])
    schema = _staged_schema(spec)
    shipped = [(t.index, t.dt.isoformat(), t.path) for t in tasks]
    landing = str(landing_dir)
    table = spec.name

    def read_partition(batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            for file_index in batch.column(0).to_pylist():
                index, dt, path = shipped[file_index]
                yield from read_file_task(table, landing, index, dt, path)

    frame = (
        spark.range(0, len(tasks), 1, numPartitions=len(tasks))
        .mapInArrow(read_partition, schema)
        .persist()
    )
    metas = frame.where("kind = 'file'").select("file_index", "record").collect()
    outcomes = {}
    for row in metas:
        outcome = _FileOutcome(**json.loads(row["record"]))
        outcomes[outcome.index] = outcome
    missing = {t.index for t in tasks} - set(outcomes)
    if missing:
        frame.unpersist()
        raise RuntimeError(
            f"{spec.name}: Spark reported no outcome for {len(missing)} file(s); this is a "
            "loader bug, nothing was written"
        )
    staged = frame.where("kind = 'row'")
    return _Read(spark, staged=staged, outcomes=outcomes, cached=[frame])


def read_file_task(table: str, landing_dir: str, index: int, dt_iso: str, path_text: str):
    """One file, inside a Spark task: scan, header, records, as `load_partition` does.

    Yields Arrow record batches: the staged text rows (`kind = 'row'`), then one
    `kind = 'file'` row whose `record` is the file's outcome as JSON (counts, warnings,
    the error that fails its day).
    """
    import duckdb
    import pyarrow as pa

    from ingestion.delivery import scan_file
    from ingestion.load_session import loader_session

    spec = table_spec(table)
    dt = date.fromisoformat(dt_iso)
    landing = Path(landing_dir)
    path = Path(path_text)
    source_file = relative_path(landing, path)
    outcome = _FileOutcome(index)
    names = [name for name in _STAGED_BASE] + [f"s_{c.name}" for c in spec.columns]
    try:
        scan = scan_file(path, source_file, spec.name, dt)
    except PartitionLoadError as exc:
        outcome.scan_error = _error_dict(exc)
        yield _outcome_batch(outcome, names)
        return
    try:
        header = check_header(spec, dt, landing, path, scan, outcome.header_warnings)
    except PartitionLoadError as exc:
        outcome.header_error = _error_dict(exc)
        yield _outcome_batch(outcome, names)
        return
    con = duckdb.connect()
    try:
        con.execute("SET threads = 1")
        con.execute("SET memory_limit = '1GB'")
        with loader_session(con), tempfile.TemporaryDirectory(prefix="cdp-spark-ingest-") as s:
            try:
                parsed = read_records(
                    con,
                    spec,
                    dt,
                    landing,
                    path,
                    scan,
                    header,
                    index,
                    Path(s),
                    outcome.read_warnings,
                    typed=False,
                )
            except PartitionLoadError as exc:
                outcome.read_error = _error_dict(exc)
                yield _outcome_batch(outcome, names)
                return
            outcome.parsed = {
                "rows_read": parsed.rows_read,
                "lines_in_file": parsed.lines_in_file,
                "header_lines": parsed.header_lines,
                "blank_lines": parsed.blank_lines,
                "continuation_lines": parsed.continuation_lines,
            }
            if parsed.parsed_table:
                text = ", ".join(f"s_{c.name}" for c in spec.columns)
                reader = con.sql(
                    f"SELECT CAST({index} AS BIGINT) AS file_index, 'row' AS kind, "
                    f"CAST(ln AS BIGINT) AS ln, record, odd_quotes, structure_error, {text} "
                    f"FROM {parsed.parsed_table} ORDER BY ln"
                ).to_arrow_reader(65_536)
                for batch in reader:
                    yield pa.RecordBatch.from_arrays(
                        [batch.column(i).cast(_arrow_type(n)) for i, n in enumerate(names)],
                        names=names,
                    )
    finally:
        con.close()
    yield _outcome_batch(outcome, names)


def _arrow_type(name: str) -> Any:
    import pyarrow as pa

    if name in ("file_index", "ln"):
        return pa.int64()
    if name == "odd_quotes":
        return pa.bool_()
    return pa.string()


def _outcome_batch(outcome: _FileOutcome, names: list[str]) -> Any:
    import pyarrow as pa

    values = {name: [None] for name in names}
    values["file_index"] = [outcome.index]
    values["kind"] = ["file"]
    values["record"] = [json.dumps(outcome.__dict__)]
    return pa.RecordBatch.from_arrays(
        [pa.array(values[n], type=_arrow_type(n)) for n in names], names=names
    )


def _error_dict(exc: PartitionLoadError) -> dict:
    return {
        "source_file": exc.source_file,
        "message": exc.message,
        "line_number": exc.line_number,
        "column_name": exc.column_name,
    }


def _first_error(
    outcomes: list[_FileOutcome], spec: RawTable, dt: date
) -> PartitionLoadError | None:
    """The error DuckDB's loader would raise first: it scans every file, then checks every
    header, then reads the files in order."""
    for stage in ("scan_error", "header_error", "read_error"):
        for outcome in outcomes:
            error = getattr(outcome, stage)
            if error:
                return PartitionLoadError(spec.name, dt, **error)
    return None


# --------------------------------------------------------------- typing, on Spark


def _typed_rows(
    spark: Any, spec: RawTable, staged: Any, suppressed_hashes: Iterable[str]
) -> tuple[Any, str]:
    """The typing and reject rules on Spark, then suppression; persisted. Returns the
    frame and the temp view it reads (dropped when the load is done: on Spark Connect a
    frame's plan names the view until it runs)."""
    view = f"_cdp_staged_{spec.name}_{uuid.uuid4().hex[:8]}"
    staged.createOrReplaceTempView(view)
    typed = spark.sql(spark_typed_select(spec, view, carry=("file_index",)))
    hashes = sorted(set(suppressed_hashes))
    typed = typed.withColumn("_suppressed", _suppressed_column(spark, spec, typed, hashes))
    return typed.persist(), view


def _suppressed_column(spark: Any, spec: RawTable, typed: Any, hashes: list[str]) -> Any:
    """True for a row about an erased person: any of its identifier hashes (the same
    `row_hashes_sql` as on DuckDB, transpiled) is in the list."""
    from pyspark.sql import functions as F

    from ingestion.suppression import NEVER_SUPPRESSED, privacy_salt

    if not hashes or spec.name in NEVER_SUPPRESSED:
        return F.lit(False)
    return F.expr(spark_row_suppressed_sql(spec.name, privacy_salt(), hashes))


def spark_row_suppressed_sql(table: str, salt: str, hashes: list[str]) -> str:
    """A Spark SQL boolean: the row's identifier hashes meet `hashes`.

    `row_hashes_sql` (ingestion/suppression.py) written for DuckDB, transpiled by
    sqlglot, with DuckDB's `regexp_extract_all` (whole match) given Spark's group index 0.
    """
    import sqlglot
    from sqlglot import exp

    from ingestion.suppression import row_hashes_sql

    duck = row_hashes_sql(table, salt, "record")
    tree = sqlglot.parse_one(duck, read="duckdb")

    def whole_match(node):
        if isinstance(node, exp.RegexpExtractAll) and node.args.get("group") is None:
            node = node.copy()
            node.set("group", exp.Literal.number(0))
        return node

    row_hashes = tree.transform(whole_match).sql(dialect="spark")
    listed = ", ".join("'" + h.replace("'", "''") + "'" for h in hashes)
    return f"arrays_overlap({row_hashes}, array({listed}))"


def _counts_per_file(typed: Any) -> dict[int, tuple[int, int, int]]:
    """file_index -> (loaded, rejected, suppressed), one small Spark aggregate."""
    from pyspark.sql import functions as F

    kept = ~F.col("_suppressed")
    rows = (
        typed.groupBy("file_index")
        .agg(
            F.sum((kept & F.col("reject_reason").isNull()).cast("long")).alias("loaded"),
            F.sum((kept & F.col("reject_reason").isNotNull()).cast("long")).alias("rejected"),
            F.sum(F.col("_suppressed").cast("long")).alias("suppressed"),
        )
        .collect()
    )
    return {r["file_index"]: (r["loaded"], r["rejected"], r["suppressed"]) for r in rows}


def _checked_stats(
    spec: RawTable,
    dt: date,
    day_tasks: list[_FileTask],
    outcomes: dict[int, _FileOutcome],
    counts: dict[int, tuple[int, int, int]],
) -> list[FileLoadStats]:
    """Per-file counts, each file's line accounting checked as on DuckDB."""
    stats = []
    for task in day_tasks:
        counted = outcomes[task.index].parsed or {}
        loaded, rejected, suppressed = counts.get(task.index, (0, 0, 0))
        parsed = ParsedFile(
            task.source_file,
            None,
            rows_read=counted.get("rows_read", 0),
            rows_loaded=loaded,
            rows_rejected=rejected,
            lines_in_file=counted.get("lines_in_file", 0),
            header_lines=counted.get("header_lines", 0),
            blank_lines=counted.get("blank_lines", 0),
            continuation_lines=counted.get("continuation_lines", 0),
            rows_suppressed=suppressed,
        )
        if counted:
            check_line_accounting(spec, dt, parsed)
        stats.append(parsed.stats())
    return stats


# ------------------------------------------------------------------ the commit


def day_dir(raw_root: Path, table: str, dt: date) -> Path:
    return Path(raw_root) / table / f"dt={dt.isoformat()}"


def _refuse_shrink(
    spec: RawTable, dt: date, raw_root: Path, stats: list[FileLoadStats], allow_shrink: bool
) -> None:
    """The committed day's records (loaded + rejected, from its audit) against the new."""
    audit = day_dir(raw_root, spec.name, dt) / AUDIT
    if allow_shrink or not audit.is_dir():
        return
    import pyarrow.parquet as pq

    table = pq.read_table(audit, columns=["rows_loaded", "rows_rejected"])
    before = sum(table.column("rows_loaded").to_pylist()) + sum(
        table.column("rows_rejected").to_pylist()
    )
    now = sum(s.rows_read for s in stats)
    if now < before:
        raise shrink_refused_error(spec, dt, before, now, len(stats))


def replace_day_folder(raw_root: Path, table: str, dt: date, staging: Path) -> None:
    """Rename `staging`, a day folder written whole (`rows/`, `rejects/`, `load_audit/`),
    over `<raw_root>/<table>/dt=<day>/`: the old day is moved aside first and removed
    after, so a reader sees the old day or the new one, never a mix. `staging` must sit
    in the table's folder (one file system, a hidden name)."""
    final = day_dir(raw_root, table, dt)
    aside = None
    if final.exists():
        aside = final.with_name(f".{final.name}.replaced-{uuid.uuid4().hex[:8]}")
        os.rename(final, aside)
    os.rename(staging, final)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


class _DayWriter:
    """Writes the checked days' rows and rejects (one Spark job each, all days), then
    commits each day by one rename.

    Spark writes into `<raw_root>/<table>/.writing-<id>/{rows,rejects}/_day=<day>/`; a
    day's commit moves its two folders and its audit into `.dt=<day>.writing-<id>/` and
    renames that over `dt=<day>` (the old day, if any, moved aside first and removed
    after): a reader sees the old day or the new one, never a mix. Hidden names ('.')
    are ignored by Spark's and DuckDB's readers. Whatever is left is removed on exit.
    """

    def __init__(self, spark: Any, spec: RawTable, raw_root: Path, loaded_at: datetime):
        self.spark, self.spec, self.loaded_at = spark, spec, loaded_at
        self.raw_root = Path(raw_root)
        self.table_dir = self.raw_root / spec.name
        self.work = self.table_dir / f".writing-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> _DayWriter:
        self.table_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def write(self, typed: Any, day_tasks: dict[date, list[_FileTask]]) -> None:
        from pyspark.sql import functions as F

        tasks = [t for ts in day_tasks.values() for t in ts]
        if not tasks:
            return
        files = self.spark.createDataFrame(
            [(t.index, t.source_file, t.dt.isoformat()) for t in tasks],
            "file_index long, _source_file string, _day string",
        )
        rows = (
            typed.where(~F.col("_suppressed"))
            .join(F.broadcast(files), "file_index")
            .withColumn("_day_date", F.to_date("_day"))
        )
        stamp = F.lit(self.loaded_at.isoformat(sep=" ")).cast("timestamp_ntz")
        columns = [c.name for c in self.spec.columns]
        good = rows.where(F.col("reject_reason").isNull()).select(
            *columns,
            F.col("_day_date").alias("_dt"),
            "_source_file",
            F.col("ln").alias("_line_number"),
            stamp.alias("_loaded_at"),
            "_day",
        )
        bad = rows.where(F.col("reject_reason").isNotNull()).select(
            F.lit(self.spec.name).alias("source_table"),
            F.col("_day_date").alias("dt"),
            F.col("_source_file").alias("source_file"),
            F.col("ln").alias("line_number"),
            F.col("reject_column").alias("column_name"),
            F.col("record").alias("raw_record"),
            F.col("reject_reason").alias("reason"),
            stamp.alias("rejected_at"),
            "_day",
        )
        good.write.partitionBy("_day").parquet(str(self.work / ROWS))
        bad.write.partitionBy("_day").parquet(str(self.work / REJECTS))

    def commit(self, dt: date, audit: list[FileLoadStats]) -> None:
        day = dt.isoformat()
        staging = self.table_dir / f".dt={day}{self.work.name}"
        staging.mkdir()
        try:
            for folder, schema in ((ROWS, _rows_schema(self.spec)), (REJECTS, _rejects_schema())):
                written = self.work / folder / f"_day={day}"
                if written.is_dir():
                    os.rename(written, staging / folder)
                else:  # no row of this kind this day: an empty file keeps the schema
                    _write_empty(staging / folder, schema)
            _write_audit(self.spec, dt, audit, self.loaded_at, staging / AUDIT)
            replace_day_folder(self.raw_root, self.spec.name, dt, staging)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


_ARROW_TYPES = {
    "VARCHAR": "string",
    "JSON": "string",
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "bool",
    "BIGINT": "int64",
    "DATE": "date32",
}


def _arrow_schema(columns: list[tuple[str, str]]) -> Any:
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "timestamp": pa.timestamp("us"),
        "bool": pa.bool_(),
        "int64": pa.int64(),
        "date32": pa.date32(),
    }
    return pa.schema([(name, types[_ARROW_TYPES[kind]]) for name, kind in columns])


def _write_empty(target: Path, columns: list[tuple[str, str]]) -> None:
    import pyarrow.parquet as pq

    target.mkdir(parents=True)
    schema = _arrow_schema(columns)
    pq.write_table(schema.empty_table(), target / "part-0.parquet")


def _rows_schema(spec: RawTable) -> list[tuple[str, str]]:
    from ingestion.contract import LINEAGE_COLUMNS

    return [(c.name, c.type) for c in spec.columns] + [
        (n, ddl.split()[0]) for n, ddl in LINEAGE_COLUMNS
    ]


def _rejects_schema() -> list[tuple[str, str]]:
    from ingestion.contract import REJECTS_COLUMNS

    return [(n, ddl.split()[0]) for n, ddl in REJECTS_COLUMNS]


def _write_audit(
    spec: RawTable, dt: date, stats: list[FileLoadStats], loaded_at: datetime, target: Path
) -> None:
    """The day's `raw.load_audit` rows (a few per day), written by the driver."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema([(n, ddl.split()[0]) for n, ddl in LOAD_AUDIT_COLUMNS])
    columns = list(zip(*audit_rows(spec, dt, stats, loaded_at), strict=True)) or [
        () for _ in LOAD_AUDIT_COLUMNS
    ]
    target.mkdir(parents=True)
    pq.write_table(
        pa.Table.from_arrays(
            [pa.array(list(v), type=f.type) for v, f in zip(columns, schema, strict=True)],
            schema=schema,
        ),
        target / "part-0.parquet",
    )


__all__ = [
    "AUDIT",
    "REJECTS",
    "ROWS",
    "day_dir",
    "load_audit_path",
    "load_partitions_on_spark",
    "raw_rows_path",
    "read_file_task",
    "rejects_path",
    "replace_day_folder",
    "spark_row_suppressed_sql",
]
