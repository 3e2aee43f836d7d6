"""Steward overrides: a person's hand-made corrections that win over every rule and score.

Three kinds, after RudderStack Profiles' ID-graph include/exclude rules and Amperity's
blocklists:

* `link A B`   - records A and B are one customer (a must-link edge, taken before any
                 rule or score and exempt from the cardinality guards);
* `unlink A B` - A and B are never one customer (a cannot-link guard: the merge that
                 would join A's side to B's is refused, so the edges are taken in order of
                 confidence and the weakest link between the two sides is the one dropped);
* `block KIND VALUE` - an email, phone or user id that links nothing (treated like the
                 configured junk values: kept for display, removed from matching).
* `revoke ID` - withdraws an earlier override; nothing is ever deleted, so the file and
                 the table are the audit trail (who, when, why).

Where they live: the table `identity.overrides` and a reviewable CSV file
(`identity_overrides.csv` next to the warehouse unless configured). Every run and every
`cdp identity` command takes the union of both by `override_id` and writes it back to
both, so an override added in a reviewed pull request reaches the warehouse, and one added
with the CLI survives a warehouse rebuilt from scratch (backfill) as long as the file does.

Blocked values are personal data. They are stored as SHA-256 of the normalised value
(email: its match key, trimmed, lower case, Gmail dots and +tags removed, so every
spelling of one mailbox is blocked; phone: E.164; user id: trimmed, lower case) plus a masked
form for people (`j***@g***.com`): the hash is what a run matches against (it hashes the
records' values the same way), the mask is what the CLI and the quality page show. A hash
of an email is a pseudonym, not anonymisation (anyone who guesses the address can confirm
it), which is acceptable here because the warehouse holds the raw value anyway; what the
hash buys is that the reviewable file, the CLI output and the logs never carry it.
"""

from __future__ import annotations

import csv
import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from identity.guards import ClusterAttributes
from identity.normalize import email_match_key, normalize_phone
from quality.masking import mask_value
from warehouse_engine.catalog import table_exists

SCHEMA = "identity"
TABLE = "overrides"
DEFAULT_FILE_NAME = "identity_overrides.csv"
LINK, UNLINK, BLOCK, REVOKE = "link", "unlink", "block", "revoke"
KINDS = (LINK, UNLINK, BLOCK, REVOKE)
STEWARD_LINK = "steward_link"
STEWARD_UNLINK = "steward_unlink"

# value kind -> the columns of the identity records whose values it blocks
BLOCKABLE = {
    "email": ("email_key", "email_local"),
    "phone": ("phone_e164",),
    "user_id": ("user_id",),
}
# value kind -> SQL expression over a record giving the normalised value that is hashed
_RECORD_VALUE_SQL = {
    "email": ("lower(trim(email))", "email_key"),
    "phone": ("phone_e164",),
    "user_id": ("lower(trim(user_id))",),
}

COLUMNS: dict[str, str] = {
    "override_id": "VARCHAR",
    "kind": "VARCHAR",
    "record_a": "VARCHAR",
    "record_b": "VARCHAR",
    "value_kind": "VARCHAR",
    "value_sha256": "VARCHAR",
    "value_masked": "VARCHAR",
    "author": "VARCHAR",
    "reason": "VARCHAR",
    "created_at": "TIMESTAMP",
}


class OverrideError(ValueError):
    """An override that cannot be recorded or read; the message says what to do."""


def default_overrides_file(warehouse: Path) -> Path:
    """`CDP_IDENTITY_OVERRIDES` if set, else `identity_overrides.csv` next to the warehouse."""
    configured = os.environ.get("CDP_IDENTITY_OVERRIDES")
    return Path(configured) if configured else Path(warehouse).parent / DEFAULT_FILE_NAME


def normalised_value(value_kind: str, value: str) -> str:
    """The form of a value that is hashed: the same normalisation the records get."""
    if value_kind == "email":
        normal = email_match_key(value)
        if normal is None:
            raise OverrideError("the value is not shaped like an email address (name@domain.tld)")
        return normal
    if value_kind == "phone":
        normal = normalize_phone(value)
        if normal is None:
            raise OverrideError(
                "the value is not a possible phone number; give it in international form (+CC ...)"
            )
        return normal
    if value_kind == "user_id":
        normal = value.strip().lower()
        if not normal:
            raise OverrideError("the user id is empty")
        return normal
    raise OverrideError(
        f"cannot block a {value_kind!r} value; blockable kinds: {', '.join(BLOCKABLE)}"
    )


def value_hash(normal: str) -> str:
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def new_override(
    kind: str,
    author: str,
    reason: str,
    record_a: str | None = None,
    record_b: str | None = None,
    value_kind: str | None = None,
    value: str | None = None,
    created_at: datetime | None = None,
) -> dict:
    """One override row (raw value hashed and masked, never kept)."""
    if kind not in KINDS:
        raise OverrideError(f"unknown override kind {kind!r}; use one of {', '.join(KINDS)}")
    if not reason or not reason.strip():
        raise OverrideError("every override needs a --reason (it is the audit trail)")
    if not author or not author.strip():
        raise OverrideError(
            "every override needs an author: pass --author NAME (no login name is known here)"
        )
    row = {c: None for c in COLUMNS}
    row.update(
        override_id="ovr_" + uuid.uuid4().hex[:12],
        kind=kind,
        author=author.strip(),
        reason=" ".join(reason.split()),
        created_at=(created_at or datetime.now(UTC)).replace(tzinfo=None, microsecond=0),
    )
    if kind in (LINK, UNLINK):
        if not record_a or not record_b or record_a == record_b:
            raise OverrideError(f"{kind} needs two different records (source_system:record_id)")
        row.update(record_a=min(record_a, record_b), record_b=max(record_a, record_b))
    elif kind == BLOCK:
        normal = normalised_value(value_kind or "", value or "")
        row.update(
            value_kind=value_kind,
            value_sha256=value_hash(normal),
            value_masked=mask_value(normal, value_kind),
        )
    else:
        row.update(record_a=record_a)
    return row


# --- storage: the table and the file, kept as one union -------------------------------


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})


def read_table(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    if not table_exists(con, f"{SCHEMA}.{TABLE}"):
        return _empty()
    return con.sql(f"select {', '.join(COLUMNS)} from {SCHEMA}.{TABLE}").df()


def read_file(path: Path) -> pd.DataFrame:
    """The CSV file's overrides; a malformed row is named by line and column."""
    if not path.exists():
        return _empty()
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [
            c
            for c in ("override_id", "kind", "author", "reason")
            if c not in (reader.fieldnames or [])
        ]
        if missing:
            raise OverrideError(
                f"{path}: header lacks {', '.join(missing)}; expected columns {', '.join(COLUMNS)}"
            )
        rows = []
        for line, row in enumerate(reader, start=2):
            kind = (row.get("kind") or "").strip()
            if kind not in KINDS:
                raise OverrideError(
                    f"{path} line {line}, column kind: {kind!r} is not one of {', '.join(KINDS)}"
                )
            if kind in (LINK, UNLINK) and not (row.get("record_a") and row.get("record_b")):
                raise OverrideError(
                    f"{path} line {line}, columns record_a/record_b: a {kind} names two records"
                )
            if kind == BLOCK and not (row.get("value_kind") and row.get("value_sha256")):
                raise OverrideError(
                    f"{path} line {line}, columns value_kind/value_sha256: add blocks with "
                    "`cdp identity block-value KIND VALUE` (the file holds only the hash)"
                )
            if not (row.get("override_id") or "").strip():
                raise OverrideError(f"{path} line {line}, column override_id: empty")
            rows.append({c: (row.get(c) or None) for c in COLUMNS})
    frame = pd.DataFrame(rows, columns=list(COLUMNS)) if rows else _empty()
    frame["created_at"] = pd.to_datetime(frame["created_at"])
    return frame


def _write_file(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    out = frame.copy()
    out["created_at"] = pd.to_datetime(out["created_at"]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    out.to_csv(tmp, index=False, columns=list(COLUMNS))
    os.replace(tmp, path)


def _write_table(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    con.execute(f"create schema if not exists {SCHEMA}")
    con.register("_steward_overrides_frame", frame[list(COLUMNS)])
    try:
        select = ", ".join(f"cast({c} as {t}) as {c}" for c, t in COLUMNS.items())
        con.execute(
            f"create or replace table {SCHEMA}.{TABLE} as "
            f"select {select} from _steward_overrides_frame order by created_at, override_id"
        )
    finally:
        con.unregister("_steward_overrides_frame")


def synchronise(
    con: duckdb.DuckDBPyConnection | None, path: Path, added: list[dict] | None = None
) -> pd.DataFrame:
    """Union of the table, the file and `added` (by override_id), written back to both.
    `con=None`: only the file (the warehouse is busy; the next run adopts the file)."""
    frames = [read_file(path)]
    if con is not None:
        frames.append(read_table(con))
    if added:
        frames.append(pd.DataFrame(added, columns=list(COLUMNS)))
    frames = [f for f in frames if len(f)]
    union = pd.concat(frames, ignore_index=True) if frames else _empty()
    union["created_at"] = pd.to_datetime(union["created_at"])
    union = (
        union.drop_duplicates("override_id", keep="first")
        .sort_values(["created_at", "override_id"], kind="stable")
        .reset_index(drop=True)
    )
    if len(union) or path.exists():
        _write_file(path, union)
    if con is not None:
        _write_table(con, union)
    return union


def active_overrides(all_rows: pd.DataFrame) -> pd.DataFrame:
    """The overrides not revoked."""
    revoked = set(all_rows.loc[all_rows["kind"] == REVOKE, "record_a"].dropna())
    return all_rows[(all_rows["kind"] != REVOKE) & ~all_rows["override_id"].isin(revoked)]


# --- what a run does with them -----------------------------------------------------------


@dataclass
class StewardOverrides:
    """The active overrides of one run, in record positions (rid) of that run."""

    must_links: pd.DataFrame  # rid_l, rid_r
    cannot_links: pd.DataFrame  # rid_a, rid_b
    blocked: pd.DataFrame  # value_kind, value_sha256
    missing_records: int = 0  # overrides naming a record not in this run's staging

    @classmethod
    def none(cls) -> StewardOverrides:
        empty = pd.DataFrame({"rid_l": [], "rid_r": []}, dtype=np.int64)
        return cls(
            empty,
            empty.rename(columns={"rid_l": "rid_a", "rid_r": "rid_b"}),
            pd.DataFrame({"value_kind": [], "value_sha256": []}),
        )

    def is_empty(self) -> bool:
        return self.must_links.empty and self.cannot_links.empty and self.blocked.empty


def overrides_for_records(overrides: pd.DataFrame, record_keys: pd.Series) -> StewardOverrides:
    """Map the active link/unlink overrides onto this run's record positions."""
    active = active_overrides(overrides)
    rid_of = pd.Series(np.arange(len(record_keys)), index=record_keys.to_numpy())
    pairs = {}
    missing = 0
    for kind in (LINK, UNLINK):
        rows = active[active["kind"] == kind]
        a = rows["record_a"].map(rid_of)
        b = rows["record_b"].map(rid_of)
        present = a.notna() & b.notna()
        missing += int((~present).sum())
        pairs[kind] = pd.DataFrame(
            {
                "l": np.minimum(a[present], b[present]).to_numpy(dtype=np.int64),
                "r": np.maximum(a[present], b[present]).to_numpy(dtype=np.int64),
            }
        ).drop_duplicates()
    blocked = active.loc[active["kind"] == BLOCK, ["value_kind", "value_sha256"]].drop_duplicates()
    return StewardOverrides(
        must_links=pairs[LINK].rename(columns={"l": "rid_l", "r": "rid_r"}),
        cannot_links=pairs[UNLINK].rename(columns={"l": "rid_a", "r": "rid_b"}),
        blocked=blocked.reset_index(drop=True),
        missing_records=missing,
    )


def value_blocks_text(overrides: pd.DataFrame) -> str:
    """The active value blocks (kind and hash, sorted) as one text: part of the normaliser's
    fingerprint, so a changed block re-normalises every record (identity/records.py)."""
    active = active_overrides(overrides)
    blocks = active.loc[active["kind"] == BLOCK, ["value_kind", "value_sha256"]]
    return ";".join(sorted(f"{k}:{h}" for k, h in blocks.itertuples(index=False)))


def apply_value_blocks(
    con: duckdb.DuckDBPyConnection, records_table: str, overrides: pd.DataFrame
) -> int:
    """Remove steward-blocked values from the matching columns of `records_table` (they
    stay in the display columns and are listed in `blocked_values`, like configured junk).
    Returns the number of records touched."""
    active = active_overrides(overrides)
    blocks = active.loc[active["kind"] == BLOCK, ["value_kind", "value_sha256"]].drop_duplicates()
    if blocks.empty:
        return 0
    touched = 0
    for value_kind, group in blocks.groupby("value_kind"):
        if value_kind not in BLOCKABLE:
            continue
        hashes = ", ".join(f"'{h}'" for h in group["value_sha256"] if str(h).isalnum())
        if not hashes:
            continue
        matches = " or ".join(
            f"sha256({expr}) in ({hashes})" for expr in _RECORD_VALUE_SQL[value_kind]
        )
        label = "email" if value_kind == "email" else value_kind
        shown = {"email": "email", "phone": "phone_e164", "user_id": "user_id"}[value_kind]
        assignments = ", ".join(f"{c} = null" for c in BLOCKABLE[value_kind])
        touched += con.execute(f"""
            update {records_table}
            set {assignments},
                blocked_values = concat_ws(', ', blocked_values,
                                           'steward {label}:' || coalesce({shown}, ''))
            where coalesce({matches}, false)
        """).fetchall()[0][0]
    return touched


class StewardGuard:
    """The cardinality guards plus cannot-link pairs, for `cluster_records`.

    Each unlinked pair i tags its two records with side 0 and side 1; a cluster carries
    the tags of its records, and two clusters whose tags hold both sides of one pair are
    never merged. Must-link edges skip the cardinality guards (`unlink_violation`), not
    the unlinks: "never in one customer" is the stronger promise."""

    def __init__(self, attributes: ClusterAttributes, cannot_links: pd.DataFrame):
        self.attributes = attributes
        self.tags: dict[int, dict[int, int]] = {}
        for i, (a, b) in enumerate(
            zip(cannot_links["rid_a"].tolist(), cannot_links["rid_b"].tolist(), strict=True)
        ):
            self.tags.setdefault(int(a), {})[i] = 0
            self.tags.setdefault(int(b), {})[i] = 1

    def unlink_violation(self, root_a: int, root_b: int) -> tuple[str, str] | None:
        a, b = self.tags.get(root_a), self.tags.get(root_b)
        if not a or not b:
            return None
        if len(a) > len(b):
            a, b = b, a
        for pair, side in a.items():
            if b.get(pair, side) != side:
                return STEWARD_UNLINK, "a steward unlinked two records of these customers"
        return None

    def violation(self, root_a: int, root_b: int) -> tuple[str, str] | None:
        return self.unlink_violation(root_a, root_b) or self.attributes.violation(root_a, root_b)

    def merge(self, into: int, other: int) -> None:
        self.attributes.merge(into, other)
        moved = self.tags.pop(other, None)
        if moved:
            target = self.tags.setdefault(into, {})
            target.update(moved)


def constrain_clustering(
    edges: pd.DataFrame, attributes: ClusterAttributes, overrides: StewardOverrides | None
) -> tuple[pd.DataFrame, ClusterAttributes | StewardGuard, int]:
    """(edges with the must-links first, the guard object, number of must-link edges)."""
    if overrides is None or (overrides.must_links.empty and overrides.cannot_links.empty):
        return edges, attributes, 0
    forced = overrides.must_links.assign(rule=STEWARD_LINK, weight=np.nan)
    extra = [c for c in edges.columns if c not in forced.columns]
    forced = (
        forced.assign(**{c: None for c in extra})[list(edges.columns)]
        if len(edges.columns)
        else forced
    )
    combined = pd.concat([forced, edges], ignore_index=True) if len(forced) else edges
    return combined, StewardGuard(attributes, overrides.cannot_links), len(forced)


def settle_unlink_splits(
    assignment,
    record_keys: pd.Series,
    previous_ids: pd.Series,
    overrides: StewardOverrides | None,
    age: np.ndarray,
):
    """Least disruption for a steward's unlink: of the parts a previous customer was split
    into by an unlink, the part holding its oldest record keeps the id (stable_ids gives
    it to the biggest part), and every part is in the split log (the keeper with 0 records
    moved). `age[rid]`: sortable, smaller = older (first assigned, then key)."""
    if overrides is None or overrides.cannot_links.empty:
        return assignment
    customer = assignment.customer_of_record.to_numpy(dtype=object).copy()
    previous = previous_ids.to_numpy(dtype=object)
    keys = record_keys.to_numpy()
    splits = assignment.splits
    extra_rows = []
    handled: set[str] = set()
    for a, b in zip(overrides.cannot_links["rid_a"], overrides.cannot_links["rid_b"], strict=True):
        original = previous[a]
        if original is None or original != previous[b] or original in handled:
            continue
        if customer[a] == customer[b]:
            continue
        handled.add(original)
        members = np.flatnonzero(previous == original)
        parts = pd.DataFrame({"rid": members, "customer": customer[members], "age": age[members]})
        oldest_part = parts.sort_values("age", kind="stable").iloc[0]["customer"]
        keeper = original if original in set(parts["customer"]) else None
        if keeper is not None and oldest_part != keeper:
            # swap the two ids: the oldest part takes the original id
            swap_from = customer == oldest_part
            swap_to = customer == keeper
            customer[swap_from] = keeper
            customer[swap_to] = oldest_part
            if len(splits):
                splits = splits.copy()
                moved = splits["customer_id"] == oldest_part
                n_moved = int(np.sum(parts["customer"] == keeper))
                splits.loc[
                    moved & (splits["original_customer_id"] == original), "n_records_moved"
                ] = n_moved
                splits.loc[
                    moved & (splits["original_customer_id"] == original), "example_record"
                ] = min(keys[swap_to])
        extra_rows.append(
            {
                "original_customer_id": original,
                "customer_id": original,
                "n_records_moved": 0,
                "example_record": min(keys[customer == original])
                if (customer == original).any()
                else None,
            }
        )
    if not handled:
        return assignment
    assignment.customer_of_record = pd.Series(customer, index=assignment.customer_of_record.index)
    if extra_rows:
        splits = pd.concat([splits, pd.DataFrame(extra_rows)], ignore_index=True)
    assignment.splits = splits
    return assignment


# --- recording one override (the CLI) -------------------------------------------------


def _known_records(con: duckdb.DuckDBPyConnection, keys: list[str]) -> set[str]:
    if not table_exists(con, "identity.id_registry"):
        raise OverrideError(
            "the warehouse has no identity tables yet; run `cdp run` first, then name records "
            "as marts.customer_identity_map does (source_system:source_record_id)"
        )
    found = con.execute(
        "select record_key from identity.id_registry where list_contains(?, record_key)", [keys]
    ).fetchall()
    return {row[0] for row in found}


def record_override(con: duckdb.DuckDBPyConnection, path: Path, row: dict) -> pd.DataFrame:
    """Check `row` against the warehouse and the overrides in force, then add it to the
    table and the file. Returns all overrides (revoked ones included)."""
    current = synchronise(con, path)
    active = active_overrides(current)
    if row["kind"] in (LINK, UNLINK):
        pair = [row["record_a"], row["record_b"]]
        unknown = sorted(set(pair) - _known_records(con, pair))
        if unknown:
            raise OverrideError(
                f"unknown record {', '.join(unknown)}: records are named as "
                "marts.customer_identity_map names them (source_system:source_record_id, "
                "e.g. billing:cus_0001) and must have been through a run"
            )
        opposite = UNLINK if row["kind"] == LINK else LINK
        same_pair = active[
            (active["record_a"] == row["record_a"]) & (active["record_b"] == row["record_b"])
        ]
        clash = same_pair[same_pair["kind"] == opposite]
        if len(clash):
            raise OverrideError(
                f"{row['record_a']} and {row['record_b']} already have a {opposite} override "
                f"({clash['override_id'].iloc[0]}); revoke it first: "
                f"cdp identity revoke {clash['override_id'].iloc[0]} --reason ..."
            )
        if len(same_pair[same_pair["kind"] == row["kind"]]):
            raise OverrideError(
                f"{row['record_a']} and {row['record_b']} already have this {row['kind']} "
                f"override ({same_pair['override_id'].iloc[0]})"
            )
    elif row["kind"] == BLOCK:
        same = active[(active["kind"] == BLOCK) & (active["value_sha256"] == row["value_sha256"])]
        if len(same):
            raise OverrideError(f"that value is already blocked ({same['override_id'].iloc[0]})")
    elif row["kind"] == REVOKE:
        target = active[active["override_id"] == row["record_a"]]
        if target.empty:
            raise OverrideError(
                f"no override {row['record_a']} in force; `cdp identity overrides` lists them"
            )
    return synchronise(con, path, [row])


def format_overrides(rows: pd.DataFrame, include_revoked: bool = False) -> str:
    """A plain-text table for the terminal: no raw personal values (blocks show the mask)."""
    shown = rows if include_revoked else active_overrides(rows)
    if shown.empty:
        return "no steward overrides in force"
    lines = []
    for r in shown.itertuples(index=False):
        what = (
            f"{r.value_kind} {r.value_masked}"
            if r.kind == BLOCK
            else f"{r.record_a}" + (f" {r.record_b}" if r.kind in (LINK, UNLINK) else "")
        )
        lines.append(
            f"{r.override_id}  {pd.Timestamp(r.created_at):%Y-%m-%d %H:%M}  {r.kind:<6}  "
            f"{what}  by {r.author}: {r.reason}"
        )
    return "\n".join(lines)


def steward_seed_rids(overrides: StewardOverrides) -> np.ndarray:
    """The records a link or unlink names: an incremental run re-clusters them (and all they
    reach) even when none of them changed, so a new override takes effect the next night."""
    return np.unique(
        np.concatenate(
            [
                overrides.must_links[["rid_l", "rid_r"]].to_numpy(dtype=np.int64).ravel(),
                overrides.cannot_links[["rid_a", "rid_b"]].to_numpy(dtype=np.int64).ravel(),
            ]
        )
    )
