"""Row synthesis for the customer-experience sources: support tickets and NPS responses.

Both tables are drawn from the same synthetic population as the other sources, so
requesters and respondents are real people the identity engine must find:

- `support/tickets` is a change export: a ticket re-appears whenever it changes (new ->
  open/pending -> solved -> sometimes reopened and solved again -> closed), each version
  delivered on the day it happened, versions before the window in the first day's export.
  Requesters write from their personal address, from a work address (with their name and
  phone), by phone only, or anonymously from a chat widget (no email, no phone: not an
  identity record, so not in the truth file).
- `surveys/responses` is at-least-once: some responses are re-delivered the same or a
  later day, some arrive up to 7 days late. Some are anonymous (no email); comments hold
  commas, quotes, line breaks and non-ASCII text.

Everything is vectorised; the functions return Arrow tables in contract column names
plus `_dt`, and (ticket_id | response_id, person) pairs for the truth file.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from demo_data.people import (
    Population,
    render_email,
    render_phone,
    shows_phone,
    stream_rng,
)
from demo_data.sources import (
    DAY_MS,
    EVENT_DAY_COLUMN,
    HOUR_MS,
    MINUTE_MS,
    BillingRecords,
    Timeline,
    _entity_delivery_day,
    _event_delivery_day,
    _redeliveries,
    _render_times,
    _within_window,
)
from demo_data.strings import (
    TS_MILLIS_Z,
    TS_NAIVE_SPACE,
    TS_OFFSET,
    TS_Z,
    concat,
    digit_strings,
    format_timestamps,
    null_where,
    take,
    uuid_strings,
    where,
)
from demo_data.writer import DELIVERY_DAY_COLUMN
from ingestion.contract import (
    SUPPORT_TICKETS,
    SURVEY_RESPONSES,
    TICKET_CHANNELS,
    TICKET_PRIORITIES,
)

TICKET_SUBJECTS = (
    "Cannot log in",
    "Refund request",
    "Invoice shows the wrong amount",
    "How do I export my data?",
    "Card declined at checkout",
    "Change my plan",
    "Order not delivered",
    "Cancel my subscription",
    "Password reset email never arrives",
    "Feature request: dark mode",
    "Charged twice this month",
    "Question about VAT, invoices and receipts",
    'Error "500" on the dashboard',
)
CHANNELS = TICKET_CHANNELS
PRIORITIES = TICKET_PRIORITIES
SURVEY_IDS_BY_KIND = ("relationship", "post-purchase")
NPS_COMMENTS = (
    "Great product, fast support.",
    'The "export" button is hard to find, otherwise fine.',
    "Too expensive for what it does",
    "Support took three days to answer.\nThen it was fixed in ten minutes.",
    "Love it, use it every day, tell all my friends",
    "Billing is confusing: two invoices, one order",
    "Would recommend — with reservations",
    "He said \"it's fixed\", it wasn't.",
    "ok",
    "Schöne App, aber langsam",
    'Line one\nline two, with a comma\nand a "quote"',
    "Nothing to add",
)
# Zendesk closes a solved ticket after a few days without a reply.
AUTO_CLOSE_MS = 4 * DAY_MS
# How the requester is known: ways a real helpdesk receives people.
VIA_PERSONAL, VIA_WORK, VIA_PHONE_ONLY, VIA_EMAIL_ONLY, VIA_ANONYMOUS = range(5)
VIA_SHARES = (0.68, 0.12, 0.10, 0.06, 0.04)


@dataclass
class ExperienceRecords:
    """What the truth file needs: the person behind each identifiable ticket and response."""

    ticket_id: pa.Array
    ticket_person: np.ndarray
    response_id: pa.Array
    response_person: np.ndarray


def _customers_first(
    population: Population, billing: BillingRecords, n: int, p_customer: float, rng
) -> np.ndarray:
    """People who contact support or answer a survey: mostly paying customers, some anyone."""
    from_billing = rng.random(n) < p_customer
    billed = billing.person[rng.integers(0, len(billing.person), n)]
    anyone = rng.integers(0, population.size, n)
    return np.where(from_billing, billed, anyone)


def _has_work_email(population: Population, person: np.ndarray) -> np.ndarray:
    return population.work_email.is_valid().to_numpy(zero_copy_only=False)[person]


def _full_names(population: Population, person: np.ndarray, rng) -> pa.Array:
    first = population.first_names.render(population.first_idx[person], rng, 0.15, 0.02)
    last = population.last_names.render(population.last_idx[person], rng, 0.0, 0.02)
    name = concat(first, " ", last)
    style = rng.random(len(person))
    name = where(style < 0.08, pc.utf8_lower(name), name)
    return where((style >= 0.08) & (style < 0.12), first, name)  # first name only


def _requester_fields(population: Population, person: np.ndarray, rng):
    """(via, email, name, phone) per ticket, as a helpdesk holds its requesters."""
    n = len(person)
    via = rng.choice(len(VIA_SHARES), size=n, p=np.array(VIA_SHARES) / sum(VIA_SHARES))
    has_work = _has_work_email(population, person)
    via = np.where((via == VIA_WORK) & ~has_work, VIA_PERSONAL, via)
    # Only people who give their number out can be known by it alone.
    via = np.where((via == VIA_PHONE_ONLY) & ~population.gives_phone[person], VIA_PERSONAL, via)
    work = via == VIA_WORK
    canonical = where(
        work,
        population.work_email.take(pa.array(person)),
        population.personal_email.take(pa.array(person)),
    )
    email = render_email(canonical, ~work & population.personal_is_gmail[person], rng)
    email = null_where((via == VIA_PHONE_ONLY) | (via == VIA_ANONYMOUS), email)
    name = _full_names(population, person, rng)
    name = null_where(
        (via == VIA_EMAIL_ONLY) | (rng.random(n) < 0.05) & (via == VIA_PERSONAL), name
    )
    name = where(
        via == VIA_ANONYMOUS, concat("Visitor ", digit_strings(rng.integers(0, 10**4, n), 4)), name
    )
    shown = shows_phone(population, person, 0.2, work, rng)
    shown = (shown & (via == VIA_PERSONAL)) | (via == VIA_WORK) | (via == VIA_PHONE_ONLY)
    phone = null_where(~shown, render_phone(population, person, rng))
    return via, email, name, phone


def build_support_tickets(
    population: Population, billing: BillingRecords, timeline: Timeline, seed: int
) -> tuple[pa.Table, pa.Array, np.ndarray]:
    """Every version of every ticket touched in the window, plus (ticket_id, person) of the
    identifiable ones (a requester with an email or a phone)."""
    rng = stream_rng(seed, "support/tickets")
    n = max(1, int(population.size * 0.25 * timeline.window_fraction()))
    person = _customers_first(population, billing, n, 0.85, rng)
    # Tickets opened up to three weeks before the window are still being worked on in it.
    span = timeline.end_ms - (timeline.start_ms - 21 * DAY_MS)
    created = np.sort(timeline.start_ms - 21 * DAY_MS + (rng.random(n) * span).astype(np.int64))
    ticket_id = concat("", digit_strings(10_000 + np.arange(n) * 7 + rng.integers(0, 7, n), 6))

    responded = rng.random(n) < 0.93
    first_response = created + (rng.lognormal(np.log(3), 1.0, n) * HOUR_MS).astype(np.int64)
    first_response = np.maximum(first_response, created + 2 * MINUTE_MS)
    solved = responded & (rng.random(n) < 0.85)
    solve_1 = first_response + (rng.lognormal(np.log(18), 1.1, n) * HOUR_MS).astype(np.int64)
    reopened = solved & (rng.random(n) < 0.07)
    reopen_at = solve_1 + (rng.uniform(0.2, 3.0, n) * DAY_MS).astype(np.int64)
    solve_2 = reopen_at + (rng.lognormal(np.log(8), 0.8, n) * HOUR_MS).astype(np.int64)
    last_solve = np.where(reopened, solve_2, solve_1)
    closed = solved & (rng.random(n) < 0.6)
    close_at = last_solve + AUTO_CLOSE_MS
    rated = solved & (rng.random(n) < 0.4)
    slow = (last_solve - created) > 2 * DAY_MS
    bad = rng.random(n) < np.where(slow, 0.45, 0.12)
    rating = where(rated, where(bad, "bad", "good"), None)

    via, email, name, phone = _requester_fields(population, person, rng)
    channel_idx = rng.choice(4, size=n, p=[0.45, 0.3, 0.2, 0.05])
    channel_idx = np.where(via == VIA_PHONE_ONLY, 3, channel_idx)
    channel_idx = np.where(via == VIA_ANONYMOUS, 2, channel_idx)
    channel = null_where(rng.random(n) < 0.02, take(CHANNELS, channel_idx))
    priority = take(PRIORITIES, rng.choice(4, size=n, p=[0.15, 0.56, 0.23, 0.06]))
    priority = null_where(rng.random(n) < 0.04, priority)
    subject = take(TICKET_SUBJECTS, rng.integers(0, len(TICKET_SUBJECTS), n))
    pending_first = rng.random(n) < 0.3

    # One entry per kind of version: which tickets have it, when, with which status, and
    # whether it shows the first response, a solved time and the CSAT rating.
    kinds = [
        dict(rows=np.arange(n), at=created, status="new"),
        dict(rows=np.flatnonzero(responded), at=first_response, status="open", may_pend=True),
        # The first solve of a reopened ticket is not rated: the rating follows the last solve.
        dict(rows=np.flatnonzero(solved & ~reopened), at=solve_1, status="solved", solved=solve_1),
        dict(
            rows=np.flatnonzero(reopened), at=solve_1, status="solved", solved=solve_1, unrated=True
        ),
        dict(rows=np.flatnonzero(reopened), at=reopen_at, status="open", unrated=True),
        dict(rows=np.flatnonzero(reopened), at=solve_2, status="solved", solved=solve_2),
        dict(rows=np.flatnonzero(closed), at=close_at, status="closed", solved=last_solve),
    ]
    parts = []
    for kind in kinds:
        rows = kind["rows"]
        t = pa.array(rows, pa.int64())
        status_text = pa.array([kind["status"]] * len(rows), pa.string())
        if kind.get("may_pend"):
            status_text = where(pending_first[rows], "pending", status_text)
        is_new = kind["status"] == "new"
        rated_here = not (is_new or kind.get("may_pend") or kind.get("unrated"))
        solved_at = kind.get("solved")
        parts.append(
            pa.table(
                {
                    "ticket_id": ticket_id.take(t),
                    "requester_email": email.take(t),
                    "requester_name": name.take(t),
                    "requester_phone": phone.take(t),
                    "subject": subject.take(t),
                    "status": status_text,
                    "priority": priority.take(t),
                    "channel": channel.take(t),
                    "created_ms": created[rows],
                    "updated_ms": kind["at"][rows],
                    "first_responded_ms": np.full(len(rows), -1)
                    if is_new
                    else first_response[rows],
                    "solved_ms": np.full(len(rows), -1) if solved_at is None else solved_at[rows],
                    "satisfaction": rating.take(t)
                    if rated_here
                    else pa.nulls(len(rows), pa.string()),
                }
            )
        )
    rows = pa.concat_tables(parts)
    updated = rows.column("updated_ms").to_numpy()
    rows = rows.filter(pa.array(updated < timeline.end_ms))
    updated = rows.column("updated_ms").to_numpy()
    styles, offsets = _render_times(updated, rng, {TS_Z: 0.6, TS_NAIVE_SPACE: 0.2, TS_OFFSET: 0.2})

    def render(column: str) -> pa.Array:
        ms = rows.column(column).to_numpy()
        return null_where(ms < 0, format_timestamps(np.maximum(ms, 0), styles, offsets))

    status = rows.column("status")
    status = where(rng.random(rows.num_rows) < 0.05, pc.utf8_capitalize(status), status)
    table = pa.table(
        {
            "ticket_id": rows.column("ticket_id"),
            "requester_email": rows.column("requester_email"),
            "requester_name": rows.column("requester_name"),
            "requester_phone": rows.column("requester_phone"),
            "subject": rows.column("subject"),
            "status": status,
            "priority": rows.column("priority"),
            "channel": rows.column("channel"),
            "created_at": render("created_ms"),
            "updated_at": render("updated_ms"),
            "first_responded_at": render("first_responded_ms"),
            "solved_at": render("solved_ms"),
            "satisfaction": rows.column("satisfaction"),
            DELIVERY_DAY_COLUMN: pa.array(_entity_delivery_day(updated, timeline)),
        }
    )
    identifiable = np.flatnonzero((via != VIA_ANONYMOUS) & (created < timeline.end_ms))
    return table, ticket_id.take(pa.array(identifiable)), person[identifiable]


def build_survey_responses(
    population: Population, billing: BillingRecords, timeline: Timeline, seed: int
) -> tuple[pa.Table, pa.Array, np.ndarray]:
    """NPS responses submitted in the window (duplicates and late deliveries included),
    plus (response_id, person) of those that name their respondent by email."""
    rng = stream_rng(seed, "surveys/responses")
    n = max(1, int(population.size * 0.2 * timeline.window_fraction()))
    person = _customers_first(population, billing, n, 0.85, rng)
    submitted = timeline.start_ms + (rng.random(n) * (timeline.end_ms - timeline.start_ms)).astype(
        np.int64
    )
    response_id = uuid_strings(np.arange(n), seed ^ 0x5EE1)
    kind = rng.choice(len(SURVEY_IDS_BY_KIND), size=n, p=[0.8, 0.2])
    month = np.datetime_as_string((submitted // DAY_MS).astype("datetime64[D]"), unit="M")
    survey_id = concat("nps-", take(SURVEY_IDS_BY_KIND, kind), "-", pa.array(month.tolist()))

    # A person answers in character: unhappy people stay unhappy across surveys.
    mood = rng.random(population.size)[person]
    deleted = np.zeros(population.size, bool)
    deleted[billing.person[billing.deleted]] = True
    mood = np.where(deleted[person], mood * 0.5, mood)
    score = np.select(
        [mood < 0.25, mood < 0.55],
        [rng.integers(0, 7, n), rng.integers(7, 9, n)],
        default=rng.integers(9, 11, n),
    )

    anonymous = rng.random(n) < 0.1
    work = _has_work_email(population, person) & (rng.random(n) < 0.08)
    canonical = where(
        work,
        population.work_email.take(pa.array(person)),
        population.personal_email.take(pa.array(person)),
    )
    email = null_where(
        anonymous, render_email(canonical, ~work & population.personal_is_gmail[person], rng)
    )
    comment = take(NPS_COMMENTS, rng.integers(0, len(NPS_COMMENTS), n))
    comment = null_where(rng.random(n) >= 0.45, comment)
    styles, offsets = _render_times(submitted, rng, {TS_Z: 0.5, TS_MILLIS_Z: 0.3, TS_OFFSET: 0.2})
    table = pa.table(
        {
            "response_id": response_id,
            "survey_id": survey_id,
            "respondent_email": email,
            "score": pa.array(score.astype(str).tolist(), pa.string()),
            "comment": comment,
            "submitted_at": format_timestamps(submitted, styles, offsets),
            DELIVERY_DAY_COLUMN: pa.array(_event_delivery_day(submitted, timeline, rng, 0.1)),
            EVENT_DAY_COLUMN: pa.array((submitted // DAY_MS).astype(np.int32)),
        }
    )
    table = _within_window(_redeliveries(table, rng, 0.05, timeline), timeline)
    # A response submitted at the end of the window may arrive after it: not delivered yet.
    delivered = pc.is_in(response_id, value_set=table.column("response_id").combine_chunks())
    named = np.flatnonzero(~anonymous & delivered.to_numpy(zero_copy_only=False))
    return table, response_id.take(pa.array(named)), person[named]


# --- `--bad`: the customer-experience defects --------------------------------------------

EXPERIENCE_BAD_KINDS: dict[str, str] = {
    "score_out_of_range": "reject: an NPS score must be a whole number from 0 to 10",
    "score_not_a_number": "reject: an NPS score written as a word is not a number",
    "unknown_ticket_status": "reject: a ticket status outside new, open, pending, solved, closed",
    "missing_ticket_id": "reject: a ticket without its ticket_id",
    "bad_submitted_at": "reject: a survey response whose submitted_at is not a timestamp",
}


def _csv_record(values: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


def _read_delivery(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _write_delivery(path: Path, data: bytes) -> None:
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)


def _first_record(data: bytes) -> tuple[list[str], dict[str, str]]:
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(reader)
    return header, dict(zip(header, next(reader), strict=True))


def _delivery_of_one_template_row(
    out_dir: Path, by_table: dict[str, list[Path]], table: str
) -> tuple[Path, bytes, list[str], dict[str, str]]:
    """A new file holding one valid record, on the first day any table was delivered."""
    first_day = min(p.parent.name for paths in by_table.values() for p in paths)
    at = f"{first_day.removeprefix('dt=')}T09:00:00Z"
    if table == "support/tickets":
        header = [c.name for c in SUPPORT_TICKETS.columns]
        sample = {"ticket_id": "template", "status": "open", "created_at": at, "updated_at": at}
    else:
        header = [c.name for c in SURVEY_RESPONSES.columns]
        sample = {"response_id": "template", "survey_id": "nps", "score": "9", "submitted_at": at}
    row = {column: sample.get(column, "") for column in header}
    folder = out_dir / table / first_day
    folder.mkdir(parents=True, exist_ok=True)
    data = _csv_record(header) + _csv_record([row[c] for c in header])
    return folder / "part-0900.csv", data, header, row


def inject_bad_experience_rows(
    out_dir: Path, by_table: dict[str, list[Path]], seed: int
) -> list[tuple[str, str, str, int, str]]:
    """Append one bad record of each kind to a ticket file and a response file.

    Appending keeps every good record (and its multi-line comment) intact; the line of a
    bad record is the file's physical line count plus one, the way the loader numbers it.
    Returns (kind, table, file relative to the landing root, line, detail).
    """
    rng = stream_rng(seed, "bad-data/experience")
    edits = {
        "support/tickets": [
            ("unknown_ticket_status", {"status": "escalated"}, "status = escalated"),
            ("missing_ticket_id", {"ticket_id": ""}, "ticket_id is empty"),
        ],
        "surveys/responses": [
            ("score_out_of_range", {"score": "11"}, "score = 11"),
            ("score_not_a_number", {"score": "ten"}, "score = ten"),
            (
                "bad_submitted_at",
                {"submitted_at": "yesterday at 5pm"},
                "submitted_at = yesterday at 5pm",
            ),
        ],
    }
    injected = []
    for table, kinds in edits.items():
        files = sorted(by_table.get(table, []))
        if files:
            # Prefer a plain file (easy to inspect); a gzipped one will do.
            plain = [p for p in files if p.suffix == ".csv"] or files
            path = plain[int(rng.integers(0, len(plain)))]
            data = _read_delivery(path)
            header, sample = _first_record(data)
        else:  # a tiny zone delivered none (say, every response arrives after the window)
            path, data, header, sample = _delivery_of_one_template_row(out_dir, by_table, table)
        for number, (kind, change, detail) in enumerate(kinds):
            row = dict(sample)
            key = "ticket_id" if table == "support/tickets" else "response_id"
            row[key] = f"bad-{kind}-{number}"
            if "comment" in row:  # one physical line, so the manifest's line is the record
                row["comment"] = "bad row"
            row.update(change)
            first_line = data.count(b"\n") + 1
            data += _csv_record([row[c] for c in header])
            injected.append((kind, table, path.relative_to(out_dir).as_posix(), first_line, detail))
        _write_delivery(path, data)
    return injected
