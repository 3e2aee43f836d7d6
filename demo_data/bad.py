"""`cdp generate --bad`: malformed rows and files, each kind at least once, with a manifest.

Bad rows are *added* next to the good data (copies of a real row of the same file with
one defect and a fresh id), so the clean part of the landing zone and its truth stay
intact. Every injection is listed in `_bad_manifest.json` with its file (relative to the
landing root), its 1-based physical line (header = line 1; null when the whole file is
the problem), its kind, and what a loader is expected to do with it.

Every injected row breaks the contract, so the loader quarantines it in `raw.rejects`
(docs/data-model.md); none of them is an identifiable record, so none is in truth.csv
(an evaluation would otherwise count a rejected record as a missed match).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from demo_data.experience import EXPERIENCE_BAD_KINDS, inject_bad_experience_rows
from demo_data.people import Population, stream_rng
from demo_data.strings import date_of_day_number, prefixed_ids

BAD_MANIFEST_NAME = "_bad_manifest.json"

# kind -> what the loader should do with it (documentation for the manifest reader).
BAD_KINDS: dict[str, str] = {
    "unterminated_quote": "reject: a quoted field is opened and never closed (only that line; the lines after it still load)",
    "wrong_column_count": "reject: the line has fewer fields than the header",
    "unparseable_timestamp": "reject: a required timestamp does not parse",
    "negative_amount": "reject: amount_due_cents is negative; amounts in cents cannot be",
    "invalid_email": "reject: a contact's email, which is required and is its identity, is not an email address",
    "unknown_enum": "reject: event_type is outside the documented set",
    "required_empty": "reject: a required value is empty",
    "non_utf8": "reject: the line is not valid UTF-8",
    "json_not_object": "reject: the JSON line is valid JSON but not an object",
    "json_invalid": "reject: the line is not JSON",
    "nul_byte": "reject: the line holds a NUL byte (0x00), which no text export writes",
    "empty_file": "load nothing, no error: a 0-byte file",
    "header_only_file": "load nothing, no error: a CSV with only its header",
    "duplicate_file": "load idempotently: an identical copy of an earlier delivery under another name",
    **EXPERIENCE_BAD_KINDS,
}


@dataclass(frozen=True)
class BadInjection:
    kind: str
    table: str
    file: str
    line: int | None
    expected: str
    detail: str


def _relative(out_dir: Path, path: Path) -> str:
    return path.relative_to(out_dir).as_posix()


def _table_of(out_dir: Path, path: Path) -> str:
    parts = path.relative_to(out_dir).parts
    return f"{parts[0]}/{parts[1]}"


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _write_bytes(path: Path, data: bytes) -> None:
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)


def _csv_line(values: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


class _FilePlan:
    """Bad lines to insert into one delivery file, spread through its middle."""

    def __init__(self, path: Path):
        self.path = path
        self.lines = _read_bytes(path).split(b"\n")
        if self.lines and self.lines[-1] == b"":
            self.lines.pop()
        self.pending: list[tuple[str, bytes, str]] = []

    def header(self) -> list[str]:
        return next(csv.reader([self.lines[0].decode("utf-8")]))

    def sample_row(self) -> dict[str, str]:
        line = self.lines[len(self.lines) // 2].decode("utf-8")
        return dict(zip(self.header(), next(csv.reader([line])), strict=True))

    def apply(self, out_dir: Path, table: str) -> list[BadInjection]:
        first_data_line = 1 if self.path.name.split(".")[1] == "csv" else 0
        n_data = len(self.lines) - first_data_line
        injections = []
        lines = list(self.lines)
        k = len(self.pending)
        positions = [first_data_line + (j + 1) * n_data // (k + 1) for j in range(k)]
        for inserted, (position, (kind, raw, detail)) in enumerate(
            zip(positions, self.pending, strict=True)
        ):
            index = position + inserted
            lines.insert(index, raw.rstrip(b"\n"))
            injections.append(
                BadInjection(
                    kind, table, _relative(out_dir, self.path), index + 1, BAD_KINDS[kind], detail
                )
            )
        _write_bytes(self.path, b"\n".join(lines) + b"\n")
        return injections


def inject_bad_data(
    out_dir: Path, files: list[Path], population: Population, seed: int
) -> tuple[list[BadInjection], pa.Table]:
    """Inject every bad kind; returns the injections and the truth rows they add (none:
    every injected record is rejected, so none may be counted as a record to match)."""
    rng = stream_rng(seed, "bad-data")
    by_table: dict[str, list[Path]] = {}
    for path in files:
        by_table.setdefault(_table_of(out_dir, path), []).append(path)
    plans: dict[Path, _FilePlan] = {}
    used: dict[str, int] = {}

    def plan_for(table: str) -> _FilePlan:
        """Files of a table in turn (prefer plain ones with a few rows), one plan per file."""
        candidates = [p for p in by_table.get(table, []) if p.suffix != ".gz"] or by_table.get(
            table, []
        )
        if not candidates:
            raise RuntimeError(f"no {table} files were generated; cannot inject bad rows into it")
        i = used.get(table, 0)
        used[table] = i + 1
        path = candidates[(int(rng.integers(0, len(candidates))) + i) % len(candidates)]
        if path not in plans:
            plans[path] = _FilePlan(path)
        return plans[path]

    fresh = iter(range(1, 10**6))

    def fresh_id(prefix: str, alphabet: str = "hex") -> str:
        return prefixed_ids(prefix, np.array([next(fresh)]), seed ^ 0xBAD0BAD, alphabet)[0].as_py()

    def add_row(table: str, kind: str, detail: str, edit) -> None:
        plan = plan_for(table)
        row = plan.sample_row()
        raw = edit(row, plan.header())
        plan.pending.append((kind, raw if isinstance(raw, bytes) else _csv_line(raw), detail))

    def row_values(row: dict[str, str], header: list[str]) -> list[str]:
        return [row[c] for c in header]

    # email/events: unterminated quote, unparseable timestamp, unknown enum, non-UTF-8.
    def unterminated(row, header):
        row["event_id"] = fresh_id("evt_")
        return _unterminated_line(row, header)

    add_row(
        "email/events",
        "unterminated_quote",
        "campaign_name opens a quote that never closes",
        unterminated,
    )

    def bad_timestamp(row, header):
        row["event_id"] = fresh_id("evt_")
        row["occurred_at"] = "2026-13-45T25:61:00Z"
        return row_values(row, header)

    add_row(
        "email/events", "unparseable_timestamp", "occurred_at = 2026-13-45T25:61:00Z", bad_timestamp
    )

    def unknown_enum(row, header):
        row["event_id"] = fresh_id("evt_")
        row["event_type"] = "forwarded"
        return row_values(row, header)

    add_row("email/events", "unknown_enum", "event_type = forwarded", unknown_enum)

    def non_utf8(row, header):
        row["event_id"] = fresh_id("evt_")
        row["campaign_name"] = "\x00NONUTF8\x00"
        return _csv_line(row_values(row, header)).replace(
            b"\x00NONUTF8\x00", "Schöne Grüße".encode("latin-1")
        )

    add_row(
        "email/events",
        "non_utf8",
        "campaign_name holds Latin-1 bytes (Sch\\xf6ne Gr\\xfc\\xdfe)",
        non_utf8,
    )

    def nul_byte(row, header):
        row["event_id"] = fresh_id("evt_")
        row["campaign_name"] = "\x00"
        return _csv_line(row_values(row, header))

    add_row("email/events", "nul_byte", "campaign_name is a NUL byte", nul_byte)

    # billing/invoices: wrong column count, negative amount.
    def short_row(row, header):
        row["invoice_id"] = fresh_id("in_", "base62")
        return row_values(row, header)[:-2]

    add_row("billing/invoices", "wrong_column_count", "two fields fewer than the header", short_row)

    def negative(row, header):
        row["invoice_id"] = fresh_id("in_", "base62")
        row["amount_due_cents"] = "-4900"
        return row_values(row, header)

    add_row("billing/invoices", "negative_amount", "amount_due_cents = -4900", negative)

    # email/contacts: invalid email with a real person's name (rejected: not in truth), empty id.
    person = int(rng.integers(0, population.size))
    invalid_contact_id = fresh_id("")
    first = population.first_names.slugs[int(population.first_idx[person])].as_py()
    last = population.last_names.slugs[int(population.last_idx[person])].as_py()

    def invalid_email(row, header):
        row["contact_id"] = invalid_contact_id
        row["email"] = f"{first}.{last}(at)gmail"
        row["first_name"], row["last_name"] = first.title(), last.title()
        return row_values(row, header)

    add_row("email/contacts", "invalid_email", f"email = {first}.{last}(at)gmail", invalid_email)

    def empty_id(row, header):
        row["contact_id"] = ""
        return row_values(row, header)

    add_row("email/contacts", "required_empty", "contact_id is empty", empty_id)

    injections: list[BadInjection] = []
    for path, plan in plans.items():
        injections += plan.apply(out_dir, _table_of(out_dir, path))

    # web/events: JSON lines that are not objects / not JSON.
    web_plan = plan_for("web/events")
    web_plan.pending.append(("json_not_object", b'["page", "not an object"]', "a JSON array"))
    web_plan.pending.append(
        (
            "json_invalid",
            b'{"messageId": "trunc-0001", "type": "page", "timestamp": "2026-10-0',
            "a JSON object cut off mid-value",
        )
    )
    injections += web_plan.apply(out_dir, "web/events")

    injections += [
        BadInjection(kind, table, file, line, BAD_KINDS[kind], detail)
        for kind, table, file, line, detail in inject_bad_experience_rows(out_dir, by_table, seed)
    ]

    untouched = {
        table: [p for p in paths if p not in plans] or paths for table, paths in by_table.items()
    }
    injections += _inject_bad_files(out_dir, untouched, rng)
    injections.sort(key=lambda i: (i.file, i.line or 0, i.kind))
    manifest = {
        "kinds": BAD_KINDS,
        "injections": [asdict(i) for i in injections],
    }
    (out_dir / BAD_MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    no_truth = pa.table(
        {
            "source_system": pa.array([], pa.string()),
            "source_record_id": pa.array([], pa.string()),
            "person_id": population.person_ids(np.array([], np.int64)),
        }
    )
    return injections, no_truth


def _unterminated_line(row: dict[str, str], header: list[str]) -> bytes:
    """A CSV line whose campaign_name field opens a quote and never closes it."""
    fields = []
    for column in header:
        if column == "campaign_name":
            fields.append('"' + (row[column] or "Weekly Digest").replace('"', ""))
        else:
            fields.append(_csv_line([row[column]]).rstrip(b"\n").decode("utf-8"))
    return (",".join(fields) + "\n").encode("utf-8")


def _day_folder(path: Path, day_offset: int) -> Path:
    day = path.parent.name.removeprefix("dt=")
    from datetime import date

    shifted = date_of_day_number((date.fromisoformat(day) - date(1970, 1, 1)).days + day_offset)
    return path.parent.parent / f"dt={shifted.isoformat()}"


def _inject_bad_files(
    out_dir: Path, by_table: dict[str, list[Path]], rng: np.random.Generator
) -> list[BadInjection]:
    """Whole-file cases that load: empty, header-only, the same file twice.

    A truncated gzip is not among them: it fails its day (tests/reliability/).
    """
    injections = []
    contacts = by_table["email/contacts"]
    target = contacts[int(rng.integers(0, len(contacts)))].parent / "part-0902.csv"
    target.write_bytes(b"")
    injections.append(
        BadInjection(
            "empty_file",
            "email/contacts",
            _relative(out_dir, target),
            None,
            BAD_KINDS["empty_file"],
            "0 bytes",
        )
    )

    customers = by_table["billing/customers"]
    source = customers[int(rng.integers(0, len(customers)))]
    header = _read_bytes(source).split(b"\n", 1)[0] + b"\n"
    target = source.parent / "part-0903.csv"
    target.write_bytes(header)
    injections.append(
        BadInjection(
            "header_only_file",
            "billing/customers",
            _relative(out_dir, target),
            1,
            BAD_KINDS["header_only_file"],
            "only the header line",
        )
    )

    events = sorted(by_table["email/events"])
    source = events[int(rng.integers(0, max(1, len(events) - 1)))]
    later = _day_folder(source, 1)
    if not later.exists():  # the source is on the last day: copy into the same day instead
        later = source.parent
    later.mkdir(parents=True, exist_ok=True)
    suffix = "".join(source.suffixes)
    target = later / f"part-0904{suffix}"
    shutil.copyfile(source, target)
    injections.append(
        BadInjection(
            "duplicate_file",
            "email/events",
            _relative(out_dir, target),
            None,
            BAD_KINDS["duplicate_file"],
            f"identical copy of {_relative(out_dir, source)}",
        )
    )
    return injections
