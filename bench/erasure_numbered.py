"""Does an erasure take only the person when every source numbers its records 1000, 1001, ...?

    .venv/bin/python bench/erasure_numbered.py --customers 5000 --days 10 --requests 3
    .venv/bin/python bench/erasure_numbered.py --browsers   # browsers numbered too

Our generator's ids carry a prefix or are UUIDs, so two sources rarely issue the same id;
another producer's sources may each count from 1: a helpdesk's ticket 1042, a survey
tool's response 1042, a billing customer 1042 and a product's user 1042 are four people.

1. `cdp generate --hard --erasure-requests N` a zone.
2. Renumber it (`renumber_zone`): contact, email event, billing customer, user,
   invoice, subscription, ticket and survey response ids each become 1000, 1001, ... in
   the order they first occur, so the same numbers recur across sources. `--browsers`
   numbers the web anonymousIds too (then a browser and a user can share a number; a
   Segment-style tracker sends UUIDs). `truth.csv` follows.
3. Two backfills of every day: with the zone's erasure requests and without them (the
   privacy folder removed).
4. Figures: the requested people's identity records left (target 0, but for records
   identity never linked to a customer the requests name, reported apart); other people's
   records present without the requests but gone with them (target 0); rows of other
   customers missing from each table with a `customer_id` (target 0); identity accuracy
   of the run without requests is in its log.

Prints the figures and writes bench/results/erasure_numbered[-browsers].json (with
`-<customers>x<days>-seed<seed>-<N>requests` for another zone than the default).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import cdp_runs  # noqa: E402
from bench.hostile_zone import _csv_bytes, _csv_rows, _read, _write  # noqa: E402
from orchestration.cli import landing_days  # noqa: E402

# landing folder -> {column: the numbering it takes}
CSV_IDS = {
    "email/contacts": {"contact_id": "contact"},
    "email/events": {"contact_id": "contact", "event_id": "event"},
    "billing/customers": {"customer_id": "customer", "user_id": "user"},
    "billing/invoices": {
        "invoice_id": "invoice",
        "customer_id": "customer",
        "subscription_id": "subscription",
    },
    "billing/subscriptions": {"subscription_id": "subscription", "customer_id": "customer"},
    "support/tickets": {"ticket_id": "ticket"},
    "surveys/responses": {"response_id": "response"},
}
# truth.csv's source_system -> the numbering of its record ids (web: see renumber_zone)
TRUTH_NUMBERING = {
    "billing": "customer",
    "email": "contact",
    "support": "ticket",
    "survey": "response",
}


class Numbering:
    """Each kind of id numbered from 1000 in the order its values first occur."""

    def __init__(self) -> None:
        self.numbers: dict[str, dict[str, str]] = {}

    def __call__(self, kind: str, value: str | None) -> str | None:
        if value in (None, ""):
            return value
        numbers = self.numbers.setdefault(kind, {})
        return numbers.setdefault(value, str(1000 + len(numbers)))


def renumber_zone(source: Path, target: Path, browsers: bool = False) -> dict[str, int]:
    """Copy the zone at `source` to `target` with its ids renumbered (see the module
    docstring); returns how many ids of each kind were numbered."""
    if (source / "_bad_manifest.json").exists():
        raise SystemExit(f"{source} holds malformed files (--bad): renumber a zone without them")
    number = Numbering()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = path.relative_to(source)
        folder = "/".join(relative.parts[:2])
        if folder in CSV_IDS:
            header, rows = _csv_rows(_read(path))
            columns = CSV_IDS[folder]
            for row in rows:
                for i, column in enumerate(header[: len(row)]):
                    if column in columns:
                        row[i] = number(columns[column], row[i])
            _write(target / relative, _csv_bytes(header, rows))
        elif folder == "web/events":
            lines = []
            for line in _read(path).decode("utf-8").splitlines():
                if line.strip():
                    event = json.loads(line)
                    if browsers:
                        event["anonymousId"] = number("anonymous", event.get("anonymousId"))
                    event["userId"] = number("user", event.get("userId"))
                    line = json.dumps(event, ensure_ascii=False)
                lines.append(line)
            _write(target / relative, ("\n".join(lines) + "\n").encode("utf-8"))
        elif relative.name != "truth.csv":
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)
    rows = list(csv.DictReader(open(source / "truth.csv", encoding="utf-8")))
    with open(target / "truth.csv", "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            system, record_id = row["source_system"], row["source_record_id"]
            if system == "web":  # a browser's anonymous id, or a user id without one
                numbered = number.numbers.get("anonymous", {}).get(record_id)
                row["source_record_id"] = numbered or number.numbers["user"].get(
                    record_id, record_id
                )
            else:
                row["source_record_id"] = number.numbers[TRUTH_NUMBERING[system]][record_id]
            writer.writerow(row)
    return {kind: len(values) for kind, values in number.numbers.items()}


def _backfill(landing: Path, folder: Path) -> tuple[Path, cdp_runs.CdpRun]:
    warehouse = folder / "warehouse" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    env = cdp_runs.night_env(
        cdp_runs.fresh_dagster_home(folder / "dagster_home"), warehouse, landing
    )
    days = landing_days(landing)
    window = ["--from", days[0].isoformat(), "--to", days[-1].isoformat()]
    return warehouse, cdp_runs.run_cdp(["run", *window], env)


def compare(zone: Path, erased_run: Path, plain_run: Path) -> dict:
    """The figures of step 4, from the two warehouses and the zone's truth."""
    erased = {r["person_id"] for r in csv.DictReader(open(zone / "erasure_truth.csv"))}
    person = {
        (r["source_system"], r["source_record_id"]): r["person_id"]
        for r in csv.DictReader(open(zone / "truth.csv", encoding="utf-8"))
    }
    with (
        duckdb.connect(str(erased_run), read_only=True) as after,
        duckdb.connect(str(plain_run), read_only=True) as before,
    ):
        records = "select source_system, source_record_id from identity.identity_records"
        kept = set(after.execute(records).fetchall())
        had = set(before.execute(records).fetchall())
        owners: dict[str, set[str | None]] = {}
        customer_of: dict[tuple[str, str], str] = {}
        for system, record_id, customer in before.execute(
            "select source_system, source_record_id, customer_id from marts.customer_identity_map"
        ).fetchall():
            owners.setdefault(customer, set()).add(person.get((system, record_id)))
            customer_of[(system, record_id)] = customer
        # the customers the requests name: those holding a record with a requested email
        emails = []
        for path in sorted((zone / "privacy").rglob("*.csv*")):
            header, rows = _csv_rows(_read(path))
            emails += [r[header.index("email")].strip().lower() for r in rows]
        named = {
            customer_of.get((system, record_id))
            for system, record_id in before.execute(
                "select source_system, source_record_id from identity.identity_records "
                "where list_contains(?, lower(trim(email)))",
                [[e for e in emails if e]],
            ).fetchall()
        }

        def requested(customer: str) -> bool:  # a golden id, or a billing customer's id
            return bool(owners.get(customer, set()) & erased) or (
                person.get(("billing", customer)) in erased
            )

        missing: dict[str, int] = {}
        for schema, table in before.execute(
            "select distinct table_schema, table_name from information_schema.columns "
            "where column_name = 'customer_id' and table_catalog = current_database() "
            "and table_schema in ('staging', 'intermediate', 'marts')"
        ).fetchall():
            sql = f'select customer_id, count(*) from "{schema}"."{table}" group by 1'
            now = dict(after.execute(sql).fetchall())
            lost = sum(
                n - now.get(c, 0)
                for c, n in before.execute(sql).fetchall()
                if not requested(c) and n > now.get(c, 0)
            )
            if lost:
                missing[f"{schema}.{table}"] = lost
    theirs = {k for k, p in person.items() if p in erased}
    left = theirs & kept
    return {
        "requested_people": len(erased),
        "their_records_left": len(left),
        # of those, records identity never put in a customer the requests name (no email,
        # phone or user id ties them to the person): no erasure by email can find them
        "their_records_left_never_linked": len(
            {k for k in left if customer_of.get(k) not in named}
        ),
        "other_records": len(had - theirs),
        "other_records_lost": len((had - theirs) - kept),
        "other_customers_rows_missing": missing,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--seed", type=int, default=99)
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--browsers", action="store_true", help="number anonymousIds too")
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir)")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cdp-numbered-"))
    workdir.mkdir(parents=True, exist_ok=True)
    generated, zone = workdir / "generated", workdir / "numbered"
    zone_without = workdir / "numbered-without-requests"
    for folder in (generated, zone, zone_without, workdir / "erased", workdir / "plain"):
        shutil.rmtree(folder, ignore_errors=True)
    cdp_runs.run_cdp(
        ["generate", "--out", str(generated), "--customers", str(args.customers)]
        + ["--days", str(args.days), "--seed", str(args.seed), "--hard"]
        + ["--erasure-requests", str(args.requests)],
        dict(os.environ),
    )
    numbered = renumber_zone(generated, zone, browsers=args.browsers)
    shutil.copytree(zone, zone_without)
    shutil.rmtree(zone_without / "privacy")
    erased_run, erased_cdp = _backfill(zone, workdir / "erased")
    plain_run, plain_cdp = _backfill(zone_without, workdir / "plain")
    figures = {
        "customers": args.customers,
        "days": args.days,
        "seed": args.seed,
        "browsers_numbered": args.browsers,
        "ids_numbered": numbered,
        **compare(zone, erased_run, plain_run),
        "backfill_seconds": {
            "with_requests": erased_cdp.wall_seconds,
            "without": plain_cdp.wall_seconds,
        },
    }
    print(json.dumps(figures, indent=2))
    name = "erasure_numbered" + ("-browsers" if args.browsers else "")
    if (args.customers, args.days, args.seed, args.requests) != (5000, 10, 99, 3):
        # another zone: a file of its own
        name += f"-{args.customers}x{args.days}-seed{args.seed}-{args.requests}requests"
    (REPO / "bench" / "results" / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    ok = not (
        figures["their_records_left"] - figures["their_records_left_never_linked"]
        or figures["other_records_lost"]
        or figures["other_customers_rows_missing"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
