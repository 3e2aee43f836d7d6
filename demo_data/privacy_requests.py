"""Erasure requests for a generated zone: `privacy/requests` rows naming a few real people.

Picks, deterministically for a seed, people who appear in the most source systems (so an
erasure has something to remove everywhere) and whose contact email nobody else uses
(a shared inbox is an ambiguous request, exercised by the tests on purpose, not by the
demo). Writes their requests on the zone's last day and `erasure_truth.csv`
(`request_id,person_id`) next to `truth.csv`, so a test can find the erased people.
"""

from __future__ import annotations

import csv
import random
from collections import Counter, defaultdict
from pathlib import Path

ERASURE_TRUTH_FILE_NAME = "erasure_truth.csv"
REQUESTS_PATH = "privacy/requests"


def _contact_emails(out_dir: Path) -> dict[str, str]:
    emails: dict[str, str] = {}
    for path in sorted(out_dir.glob("email/contacts/dt=*/*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("email"):
                    emails[row["contact_id"]] = row["email"].strip()
    return emails


def write_erasure_requests(out_dir: Path, count: int, seed: int) -> int:
    """Write `count` erase requests into the zone; returns how many were written."""
    out_dir = Path(out_dir)
    if count <= 0:
        return 0
    systems: dict[str, set[str]] = defaultdict(set)
    contacts: dict[str, list[str]] = defaultdict(list)
    with open(out_dir / "truth.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            systems[row["person_id"]].add(row["source_system"])
            if row["source_system"] == "email":
                contacts[row["person_id"]].append(row["source_record_id"])
    emails = _contact_emails(out_dir)
    owners = Counter(emails[c].lower() for cs in contacts.values() for c in cs if c in emails)
    candidates = []
    for person, ids in contacts.items():
        addresses = {emails[c].lower(): emails[c] for c in ids if c in emails}
        unique = [a for key, a in sorted(addresses.items()) if owners[key] == 1]
        if unique:
            candidates.append((-len(systems[person]), person, unique[0]))
    candidates.sort()
    best = [c for c in candidates if c[0] == candidates[0][0]] if candidates else []
    pool = best if len(best) >= count else candidates
    chosen = random.Random(seed).sample(pool, min(count, len(pool)))
    days = sorted(p.name for p in out_dir.glob("*/*/dt=*"))
    if not chosen or not days:
        return 0
    day = days[-1]
    folder = out_dir / REQUESTS_PATH / day
    folder.mkdir(parents=True, exist_ok=True)
    received_at = f"{day[3:]}T09:00:00Z"
    with open(folder / "part-0000.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["request_id", "request_type", "email", "phone", "received_at"])
        for n, (_, _, email) in enumerate(chosen, start=1):
            writer.writerow([f"dsr-{seed}-{n:04d}", "erase", email, "", received_at])
    with open(out_dir / ERASURE_TRUTH_FILE_NAME, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["request_id", "person_id"])
        for n, (_, person, _) in enumerate(chosen, start=1):
            writer.writerow([f"dsr-{seed}-{n:04d}", person])
    return len(chosen)
