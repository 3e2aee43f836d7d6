"""`cdp generate`: a realistic, messy demo landing zone with a ground-truth file.

Writes `<out>/<source>/<table>/dt=YYYY-MM-DD/part-NNNN.*` exactly as
docs/landing-contract.md describes, plus `<out>/truth.csv` naming the real person
behind every identifiable source record, so identity resolution can be scored. With
`bad=True` it also injects malformed rows and files and lists them in
`<out>/_bad_manifest.json`, so tests can check the loader rejects each one.

Output is byte-identical for the same arguments. Everything is vectorised: 1M customers
over 30 days is a couple of minutes on two cores.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from demo_data import experience
from demo_data.bad import BAD_MANIFEST_NAME, inject_bad_data
from demo_data.habits import DEFAULT_HABITS, HABIT_NAMES, Habits, habits_from_names
from demo_data.people import build_population, stream_rng
from demo_data.sources import (
    Timeline,
    build_billing_customers,
    build_contact_records,
    build_contacts_table,
    build_email_events,
    build_subscriptions_and_invoices,
    build_web_events,
)
from demo_data.strings import day_number
from demo_data.writer import (
    DELIVERY_DAY_COLUMN,
    DeliveryStyle,
    mark_days_complete,
    sort_by_delivery_day,
    write_csv_table,
    write_jsonl_table,
)

TRUTH_FILE_NAME = "truth.csv"
# Web activity is generated in slices of the population to bound memory and use both cores:
# this many people over two weeks (~200 MB of JSON lines); a longer zone has fewer people
# per slice, so that a slice's lines stay well under Arrow's 2 GiB limit for one string
# array (100,000 people over a year were 4.3 GB in one slice).
WEB_PEOPLE_PER_CHUNK = 125_000
WEB_CHUNK_DAYS = 14
DEFAULT_START = date(2026, 10, 1)
# The last delivery day when neither --start nor --end is given: a fixed date (same
# arguments, same bytes) in the past, so that a long history (`--days 120`) ends there
# instead of running into days `cdp run` refuses as future ones.
DEFAULT_END = date(2026, 10, 14)
TABLE_PATHS = (
    "email/contacts",
    "email/events",
    "billing/customers",
    "billing/invoices",
    "billing/subscriptions",
    "web/events",
    "support/tickets",
    "surveys/responses",
)


@dataclass
class GenerationSummary:
    """What a generation run wrote (counts are delivered rows, duplicates included)."""

    out_dir: Path
    files_written: int
    rows_per_table: dict[str, int]
    people: int
    truth_records: int
    elapsed_seconds: float
    bad_injections: int = 0
    seconds_per_step: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [
            f"Generated landing zone in {self.out_dir} ({self.elapsed_seconds:.1f} s): "
            f"{self.people:,} people, {self.files_written:,} files, "
            f"{self.truth_records:,} identifiable records in {TRUTH_FILE_NAME}",
        ]
        lines += [f"  {table:<22} {rows:>12,} rows" for table, rows in self.rows_per_table.items()]
        if self.bad_injections:
            lines.append(
                f"  {self.bad_injections} malformed rows/files injected, listed in {BAD_MANIFEST_NAME}"
            )
        return "\n".join(lines)


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(
            f"{out_dir} is not empty; generate into a new or empty directory "
            "(or delete it first) so no stale files mix into the landing zone."
        )


def _web_truth(web) -> pa.Table:
    """Identifiable web identities of one batch: anonymousIds that identified or carried a
    userId, and userIds seen without any anonymousId."""
    identifying = (web.event_device >= 0) & (web.event_identifies | web.event_carries_user)
    devices = np.unique(web.event_device[identifying])
    user_only = (
        pa.table(
            {
                "user_id": web.event_user_id.filter(pa.array(web.event_user_only)),
                "person": pa.array(web.event_person[web.event_user_only]),
            }
        )
        .group_by("user_id")
        .aggregate([("person", "min")])
    )
    return pa.table(
        {
            "source_record_id": pa.concat_arrays(
                [
                    web.anonymous_id.take(pa.array(devices)),
                    user_only.column("user_id").combine_chunks(),
                ]
            ),
            "person": pa.array(
                np.concatenate(
                    [web.device_person[devices], user_only.column("person_min").to_numpy()]
                )
            ),
        }
    )


@dataclass
class _TaskResult:
    files: list[Path]
    rows_per_table: dict[str, int]
    truth: dict[str, pa.Table]  # source_system -> (source_record_id, person)
    seconds: dict[str, float]


# Inputs shared with worker processes: set before the pool forks, read by the tasks.
_SHARED: dict = {}


def _email_task() -> _TaskResult:
    began = time.perf_counter()
    population, timeline, seed = (_SHARED[k] for k in ("population", "timeline", "seed"))
    contacts = build_contact_records(population, timeline, seed)
    events, unsubscribes = build_email_events(contacts, timeline, seed)
    contacts_table = build_contacts_table(contacts, population, timeline, seed, unsubscribes)
    return _write_csv_task(
        "email",
        began,
        {"email/contacts": contacts_table, "email/events": events},
        {"email": (contacts.contact_id, contacts.person)},
    )


def _write_csv_tables(
    out_dir: Path, seed: int, tables: dict[str, pa.Table]
) -> tuple[list[Path], dict[str, int]]:
    """Write each source table's day folders; one seeded stream per table keeps the file
    layout independent of which worker writes it."""
    files: list[Path] = []
    rows: dict[str, int] = {}
    timeline: Timeline = _SHARED["timeline"]
    for table_path, table in tables.items():
        rows[table_path] = table.num_rows
        window_days = range(timeline.start_day, timeline.last_day + 1)
        if _SHARED.get("skipped_delivery_day") and table_path == SKIPPED_DAY_TABLE:
            table, skipped = skip_delivery_day(table, timeline)
            window_days = [d for d in window_days if d != skipped]
        files += write_csv_table(
            out_dir,
            table_path,
            sort_by_delivery_day(table),
            stream_rng(seed, f"delivery-files/{table_path}"),
            DeliveryStyle(),
            window_days,
        )
    return files, rows


# The opt-in outage of `--skipped-day`: this table delivers nothing one day.
SKIPPED_DAY_TABLE = "email/events"


def skip_delivery_day(table: pa.Table, timeline: Timeline) -> tuple[pa.Table, int]:
    """An export outage: the middle day of the window delivers no file and its rows arrive
    the next day, late. Returns the table and the skipped day; no row is lost."""
    if timeline.days < 2:
        return table, timeline.last_day + 1  # no next day to catch up on: nothing skipped
    skipped = timeline.start_day + timeline.days // 2
    column = table.schema.get_field_index(DELIVERY_DAY_COLUMN)
    days = table.column(column).to_numpy()
    days = np.where(days == skipped, skipped + 1, days).astype(np.int32)
    return table.set_column(column, DELIVERY_DAY_COLUMN, pa.array(days, pa.int32())), skipped


def _write_csv_task(
    name: str, began: float, tables: dict[str, pa.Table], truth: dict[str, tuple]
) -> _TaskResult:
    """Write a task's CSV tables and name the person behind each record it identifies.

    `truth` maps a source system to (record ids, person per record); the seconds are split
    into building (since `began`) and writing."""
    built = time.perf_counter()
    files, rows = _write_csv_tables(_SHARED["out_dir"], _SHARED["seed"], tables)
    return _TaskResult(
        files,
        rows,
        {
            system: pa.table({"source_record_id": ids, "person": pa.array(people)})
            for system, (ids, people) in truth.items()
        },
        {f"{name}_build": built - began, f"{name}_write": time.perf_counter() - built},
    )


def _billing_task() -> _TaskResult:
    began = time.perf_counter()
    billing, customers_table, timeline, seed = (
        _SHARED[k] for k in ("billing", "customers_table", "timeline", "seed")
    )
    subscriptions, invoices = build_subscriptions_and_invoices(billing, timeline, seed)
    return _write_csv_task(
        "billing",
        began,
        {
            "billing/customers": customers_table,
            "billing/invoices": invoices,
            "billing/subscriptions": subscriptions,
        },
        {"billing": (billing.customer_id, billing.person)},
    )


def _web_task(chunk: int, n_chunks: int) -> _TaskResult:
    """One slice of the population's web activity, written as its own part files per day."""
    began = time.perf_counter()
    population, billing, timeline, seed, out_dir = (
        _SHARED[k] for k in ("population", "billing", "timeline", "seed", "out_dir")
    )
    bounds = np.linspace(0, population.size, n_chunks + 1).astype(np.int64)
    people = np.arange(bounds[chunk], bounds[chunk + 1])
    web = build_web_events(population, billing, timeline, seed, people=people, chunk=chunk)
    built = time.perf_counter()
    files = write_jsonl_table(
        out_dir,
        "web/events",
        web.lines,
        web.delivery_day,
        stream_rng(seed, f"delivery-files/web/events/{chunk}"),
        DeliveryStyle(p_gzip=0.2),
        part_start=chunk,
        part_step=n_chunks,
    )
    return _TaskResult(
        files,
        {"web/events": len(web.lines)},
        {"web": _web_truth(web)},
        {f"web_{chunk}_build": built - began, f"web_{chunk}_write": time.perf_counter() - built},
    )


def _experience_task() -> _TaskResult:
    """Support tickets and NPS survey responses (demo_data/experience.py)."""
    began = time.perf_counter()
    population, billing, timeline, seed = (
        _SHARED[k] for k in ("population", "billing", "timeline", "seed")
    )
    tickets, ticket_ids, ticket_people = experience.build_support_tickets(
        population, billing, timeline, seed
    )
    responses, response_ids, respondents = experience.build_survey_responses(
        population, billing, timeline, seed
    )
    return _write_csv_task(
        "experience",
        began,
        {"support/tickets": tickets, "surveys/responses": responses},
        {"support": (ticket_ids, ticket_people), "survey": (response_ids, respondents)},
    )


def _run_task(task: tuple) -> _TaskResult:
    if task[0] == "web":
        return _web_task(task[1], task[2])
    if task[0] == "experience":
        return _experience_task()
    return _email_task() if task[0] == "email" else _billing_task()


def _single_threaded_worker() -> None:
    """Each worker process gets one core's worth of Arrow threads; the pool supplies the rest."""
    pa.set_cpu_count(1)


def web_chunk_count(customers: int, days: int) -> int:
    """Slices of the population whose web activity is generated (and written) apart.

    Zones of up to two weeks keep their slicing (and so their bytes); a longer one is cut
    into proportionally more slices, each ~WEB_PEOPLE_PER_CHUNK x WEB_CHUNK_DAYS person-days.
    """
    people_per_chunk = max(1, WEB_PEOPLE_PER_CHUNK * WEB_CHUNK_DAYS // max(days, WEB_CHUNK_DAYS))
    return max(1, -(-customers // people_per_chunk))


def _worker_count(customers: int) -> int:
    if customers < 50_000 or sys.platform != "linux":
        return 1
    return max(1, min(2, os.cpu_count() or 1))


def generate_landing_zone(
    out_dir: Path,
    customers: int,
    days: int,
    seed: int,
    start: date = DEFAULT_START,
    bad: bool = False,
    workers: int | None = None,
    habits: Habits = DEFAULT_HABITS,
    skipped_delivery_day: bool = False,
) -> GenerationSummary:
    """Write a landing zone for `customers` people over `days` delivery days from `start`.

    Big runs split the work (email, billing, and slices of web activity) across
    `workers` forked processes; every slice has its own random stream, so the bytes
    written do not depend on the number of workers. `habits` sets how often the hard
    habits of real data appear (demo_data.habits). Every CSV table delivers every day
    (a header-only file on a quiet day) unless `skipped_delivery_day` gives email/events
    an outage (`skip_delivery_day`), which `delivery_arrived` reports as a warning.
    """
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    timeline = Timeline(start_day=day_number(start), days=days)
    population = build_population(customers, seed, habits)
    billing, customers_table = build_billing_customers(population, timeline, seed)
    steps = {"population_and_billing": time.perf_counter() - started}
    _SHARED.update(
        population=population,
        billing=billing,
        customers_table=customers_table,
        timeline=timeline,
        seed=seed,
        out_dir=out_dir,
        skipped_delivery_day=skipped_delivery_day,
    )
    n_web_chunks = web_chunk_count(customers, days)
    tasks = [("web", c, n_web_chunks) for c in range(n_web_chunks)] + [
        ("email",),
        ("billing",),
        ("experience",),
    ]
    workers = _worker_count(customers) if workers is None else workers
    try:
        if workers > 1:
            with ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_single_threaded_worker,
            ) as pool:
                results = list(pool.map(_run_task, tasks))
        else:
            results = [_run_task(task) for task in tasks]
    finally:
        _SHARED.clear()

    files = [f for r in results for f in r.files]
    rows_per_table: dict[str, int] = {}
    truth_parts: dict[str, list[pa.Table]] = {}
    for r in results:
        for table_path, count in r.rows_per_table.items():
            rows_per_table[table_path] = rows_per_table.get(table_path, 0) + count
        for system, part in r.truth.items():
            truth_parts.setdefault(system, []).append(part)
        steps.update({k: round(v, 3) for k, v in r.seconds.items()})
    rows_per_table = {t: rows_per_table[t] for t in TABLE_PATHS}
    truth = pa.concat_tables(
        [
            pa.table(
                {
                    "source_system": pa.array(
                        [system] * sum(p.num_rows for p in parts), pa.string()
                    ),
                    "source_record_id": pa.concat_arrays(
                        [p.column("source_record_id").combine_chunks() for p in parts]
                    ),
                    "person_id": population.person_ids(
                        np.concatenate([p.column("person").to_numpy() for p in parts])
                    ),
                }
            )
            for system, parts in sorted(truth_parts.items())
        ]
    )
    bad_count = 0
    if bad:
        injections, extra_truth = inject_bad_data(out_dir, files, population, seed)
        bad_count = len(injections)
        truth = pa.concat_tables([truth, extra_truth])
    truth = truth.sort_by([("source_system", "ascending"), ("source_record_id", "ascending")])
    with open(out_dir / TRUTH_FILE_NAME, "wb") as truth_file:
        truth_file.write(b"source_system,source_record_id,person_id\n")
        pa_csv.write_csv(
            truth,
            truth_file,
            write_options=pa_csv.WriteOptions(include_header=False, quoting_style="none"),
        )
    files_written = sum(1 for p in out_dir.rglob("part-*") if p.is_file())
    return GenerationSummary(
        out_dir=out_dir,
        files_written=files_written,
        rows_per_table=rows_per_table,
        people=customers,
        truth_records=truth.num_rows,
        elapsed_seconds=round(time.perf_counter() - started, 3),
        bad_injections=bad_count,
        seconds_per_step={k: round(v, 3) for k, v in steps.items()},
    )


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `cdp generate`."""
    parser.add_argument(
        "--out", type=Path, required=True, help="landing directory to create (must be empty)"
    )
    parser.add_argument(
        "--customers", type=int, default=2000, help="number of real people (default 2000)"
    )
    parser.add_argument("--days", type=int, default=14, help="number of delivery days (default 14)")
    parser.add_argument("--seed", type=int, default=7, help="random seed; same seed, same bytes")
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=None,
        help="first delivery day, YYYY-MM-DD (default: --end minus --days plus one)",
    )
    parser.add_argument(
        "--end",
        type=date.fromisoformat,
        default=None,
        help=f"last delivery day, YYYY-MM-DD, when --start is not given (default {DEFAULT_END})",
    )
    parser.add_argument(
        "--hard",
        action="store_true",
        help="raise every hard habit of real data (shared inboxes, surname changes, ...) "
        "to its hard rate",
    )
    parser.add_argument(
        "--habits",
        metavar="LIST",
        help="raise only these habits to their hard rate (comma-separated: "
        + ", ".join(HABIT_NAMES)
        + "), or 'none' for a zone without them; default: a realistic sprinkle of each",
    )
    parser.add_argument(
        "--bad",
        action="store_true",
        help=f"also inject malformed rows and files, listed in {BAD_MANIFEST_NAME}",
    )
    parser.add_argument(
        "--skipped-day",
        action="store_true",
        help=f"{SKIPPED_DAY_TABLE} delivers nothing on the middle day (an export outage; its "
        "rows arrive the next day), which the run reports as a delivery_arrived warning",
    )
    parser.add_argument(
        "--erasure-requests",
        type=int,
        default=0,
        metavar="N",
        help="also file N GDPR erasure requests (privacy/requests) for people found in every "
        "source, listed in erasure_truth.csv (default 0; `make run` files 3)",
    )
    parser.add_argument(
        "--markers",
        action="store_true",
        help="write a _SUCCESS marker into every day folder once the zone is written, as "
        "Spark and Hadoop writers do, so a run started right away need not wait for the "
        "files to settle (`make demo` does; a table with markers then needs one every day)",
    )


def first_delivery_day(days: int, start: date | None = None, end: date | None = None) -> date:
    """`--start` as given, else the day that makes `days` delivery days end on `end`
    (DEFAULT_END by default): the 14-day demo still starts on DEFAULT_START."""
    if start is not None and end is not None:
        raise ValueError("give --start or --end, not both: the other follows from --days")
    if start is not None:
        return start
    return (end or DEFAULT_END) - timedelta(days=days - 1)


def generate_from_args(args: argparse.Namespace) -> int:
    """Run `cdp generate` from parsed arguments; returns the process exit code."""
    try:
        habits = habits_from_names(args.habits, hard=args.hard)
        summary = generate_landing_zone(
            args.out,
            customers=args.customers,
            days=args.days,
            seed=args.seed,
            start=first_delivery_day(args.days, args.start, getattr(args, "end", None)),
            bad=args.bad,
            habits=habits,
            skipped_delivery_day=getattr(args, "skipped_day", False),
        )
        from demo_data.privacy_requests import write_erasure_requests

        erasures = write_erasure_requests(args.out, args.erasure_requests, args.seed)
        if getattr(args, "markers", False):
            mark_days_complete(args.out)
    except (FileExistsError, ValueError) as error:
        print(f"cdp generate: {error}")
        return 2
    print(summary.describe())
    if erasures:
        print(f"  privacy/requests   {erasures} erasure request(s) (erasure_truth.csv)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cdp generate", description=__doc__.splitlines()[0])
    add_generate_arguments(parser)
    return generate_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "GenerationSummary",
    "TABLE_PATHS",
    "TRUTH_FILE_NAME",
    "add_generate_arguments",
    "first_delivery_day",
    "generate_from_args",
    "generate_landing_zone",
    "main",
]
