"""Identity-resolution settings: blocked values, guards, blocking rules, comparisons, thresholds.

Every knob that changes who is merged with whom lives here, so a run is reproducible from
its config alone. Defaults suit the CDP sources (email, billing, web); `load_identity_config`
reads overrides from YAML or TOML and rejects unknown keys and bad values by name.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

COMPARISON_KINDS = ("exact", "jaro_winkler", "levenshtein", "email")


class IdentityConfigError(ValueError):
    """A config value is missing, unknown or invalid; the message names the key."""


@dataclass(frozen=True)
class ComparisonSpec:
    """One field compared between two records, turned into an ordinal agreement level.

    Levels: -1 = a value is missing (no evidence), 0 = disagree, then one level per
    threshold (loosest first), and the top level = exact agreement.
    `kind`: `exact`; `jaro_winkler` (thresholds are similarities, e.g. [0.85, 0.92]);
    `levenshtein` (thresholds are max edit distances, e.g. [2, 1]); `email` (top = same
    matching key, then same local part, then local-part Jaro-Winkler >= each threshold).
    """

    name: str
    column: str
    kind: str = "exact"
    thresholds: tuple[float, ...] = ()
    # Term-frequency adjustment (as in Splink): exact agreement on a rare value ("Zebulon")
    # is stronger evidence than on a common one ("James"); the exact level's u becomes the
    # value's own frequency among the records.
    term_frequency: bool = False
    # Names written the other way round ("LOVELACE Ada" read as first "lovelace"): when
    # this record's `column` equals the other's `swap_column` and vice versa, the pair
    # agrees exactly (set on the first- and last-name comparisons, each naming the other).
    swap_column: str | None = None
    # People have several of these (a personal and a work email, a mobile and a landline):
    # before the data says otherwise, a disagreement is weak evidence of two people.
    several_per_person: bool = False

    def level_labels(self) -> list[str]:
        """What each non-missing level means, for `cdp explain --model`."""
        if self.kind == "jaro_winkler":
            middle = [f"similar (Jaro-Winkler >= {t:g})" for t in sorted(self.thresholds)]
        elif self.kind == "levenshtein":
            middle = [
                f"close (edit distance <= {t:g})" for t in sorted(self.thresholds, reverse=True)
            ]
        elif self.kind == "email":
            middle = [f"mailbox similar (Jaro-Winkler >= {t:g})" for t in sorted(self.thresholds)]
            middle.append("same mailbox name, other domain")
        else:
            middle = []
        return ["disagree", *middle, "exact"]

    @property
    def n_levels(self) -> int:
        """Number of non-missing levels (0 .. top)."""
        if self.kind == "email":
            return len(self.thresholds) + 3
        return len(self.thresholds) + 2


@dataclass(frozen=True)
class DeterministicRule:
    """Records that share a non-null value of `column` (after blocking junk) are the same customer.

    `source_pairs` limits the rule to pairs of source systems (e.g. web<->billing for user ids);
    empty means any pair.
    """

    name: str
    column: str
    source_pairs: tuple[tuple[str, str], ...] = ()


def _default_comparisons() -> tuple[ComparisonSpec, ...]:
    return (
        ComparisonSpec(
            "first_name", "first_name_key", "jaro_winkler", (0.85, 0.92), True, "last_name"
        ),
        ComparisonSpec(
            "last_name", "last_name", "jaro_winkler", (0.85, 0.94), True, "first_name_key"
        ),
        ComparisonSpec("email", "email_key", "exact", several_per_person=True),
        ComparisonSpec("phone", "phone_e164", "exact", several_per_person=True),
        ComparisonSpec("address", "address_line1", "jaro_winkler", (0.9,)),
        ComparisonSpec("city", "address_city", "exact", term_frequency=True),
        ComparisonSpec("postcode", "address_postal_code", "exact"),
    )


def _default_rules() -> tuple[DeterministicRule, ...]:
    return (
        DeterministicRule("user_id", "user_id", (("billing", "web"),)),
        DeterministicRule("anonymous_stitch", "user_id", (("web", "web"),)),
        DeterministicRule("email_key", "email_key"),
    )


@dataclass(frozen=True)
class IdentityConfig:
    """Settings of one identity-resolution run. See docs in each field's comment."""

    # Values that never link records: exact matches (after normalisation) and regexes.
    blocked_emails: tuple[str, ...] = (
        "test@test.com",
        "test@example.com",
        "example@example.com",
        "user@example.com",
        "email@email.com",
        "none@none.com",
        "na@na.com",
        "noemail@noemail.com",
        "asdf@asdf.com",
    )
    # RE2 syntax (evaluated in DuckDB): no backreferences.
    blocked_email_patterns: tuple[str, ...] = (
        # placeholders and role accounts many people type or share
        r"^(no-?reply|do-?not-?reply|donotreply|noemail|none|null|unknown|test|info|admin|support|sales|contact|hello|office)@",
        # reserved (RFC 2606) and throw-away domains
        r"@(test|invalid|localhost|example)\.(com|org|net|invalid)$",
        r"@(mailinator|guerrillamail|10minutemail|yopmail)\.com$",
        # one-letter mailboxes at one-letter domains: a@a.com, x@y.com
        r"^[a-z0-9]@[a-z0-9]\.[a-z]+$",
    )
    # Also never linking: an address whose mailbox repeats its domain name (asdf@asdf.com).
    block_mailbox_equal_to_domain: bool = True
    # Phones are compared as E.164 strings; patterns are matched against the digits only.
    blocked_phones: tuple[str, ...] = ("+10000000000", "+11111111111", "+11234567890")
    blocked_phone_patterns: tuple[str, ...] = (
        r"^(0+|1+|2+|3+|4+|5+|6+|7+|8+|9+)$",  # one digit repeated: 0000000000
        r"^1?(0123456789|1234567890|123456789)$",
        r"^\d{0,5}$",
    )
    blocked_user_ids: tuple[str, ...] = ("", "null", "undefined", "none", "0", "anonymous")
    blocked_names: tuple[str, ...] = ("test", "unknown", "n/a", "na", "none", "null", "customer")
    # Cardinality limits per golden customer, enforced when two clusters would merge.
    # Two: people do open a second product account with the same email (duplicate
    # signups); three or more user ids on one customer is a shared or junk identifier.
    max_user_ids_per_customer: int = 2
    max_emails_per_customer: int = 3
    max_phones_per_customer: int = 3
    # Shared identifiers found in the data (identity/shared_values.py): a value carried by
    # records with this many different first names, or with more distinct other identifiers
    # than the limits above (and max_addresses_per_person) allow one person, is shared and
    # stops being a key. Addresses need more names: a family at one address is normal.
    detect_shared_values: bool = True
    shared_value_min_first_names: int = 2
    shared_address_min_first_names: int = 5
    max_addresses_per_person: int = 3
    # Households share an address and a phone: a probabilistic pair whose comparison of this
    # name is "disagree" is never merged. None disables the guard (e.g. for FEBRL).
    household_guard_comparison: str | None = "first_name"
    # What a household shares: such a pair is still linked when the other comparisons
    # (the personal evidence: email, birth date, ...) reach the threshold on their own.
    household_shared_comparisons: tuple[str, ...] = (
        "last_name",
        "phone",
        "address",
        "city",
        "postcode",
    )
    # Deterministic rules, applied first, in this order of confidence.
    deterministic_rules: tuple[DeterministicRule, ...] = field(default_factory=_default_rules)
    # Blocking: each rule is a list of columns that must be equal (and non-null) for two
    # records to be compared. Blocks bigger than max_block_size are skipped (and counted).
    blocking_rules: tuple[tuple[str, ...], ...] = (
        ("phone_e164",),
        ("email_local",),
        ("first_name_key", "last_name"),
        ("last_name", "address_postal_code"),
        ("first_name_key", "address_postal_code"),
        ("address_line1", "address_postal_code"),
    )
    max_block_size: int = 200
    comparisons: tuple[ComparisonSpec, ...] = field(default_factory=_default_comparisons)
    # Fellegi-Sunter: pairs with a match weight (log2 Bayes factor incl. prior) at or above
    # this are accepted.
    match_weight_threshold: float = 7.0
    # Hysteresis for stable customers: a probabilistic link accepted in an earlier run is
    # kept while today's model still gives it at least threshold - margin.
    keep_link_weight_margin: float = 6.0
    # A nightly run keeps the last full run's model and re-clusters only what the day's
    # records touch (identity/incremental.py); once the model is this many days old, the
    # run retrains it and re-resolves everything (`cdp run --full-identity` forces that).
    full_identity_every_days: int = 7
    # ... or once the records outnumber those the model was trained on by this share (a
    # model learnt on a much smaller history, e.g. the first day's, is no model of today's).
    full_identity_growth: float = 0.2
    # Comparisons a pair also reads from the records' deterministic components (the records
    # an exact identifier already made one customer) when a record lacks the value itself:
    # an email contact with no phone is compared through the phone of the billing account its
    # address already ties it to. Only disagreement is taken this way (components whose
    # values are all different), so two namesakes in one city, each with their own phone
    # and postcode elsewhere in their records, stay apart. Names the comparisons do not
    # have are skipped (a config with its own comparisons need not repeat this); empty
    # disables it.
    component_evidence_comparisons: tuple[str, ...] = ("email", "phone", "postcode")
    # A probabilistic pair must also agree (level >= 1) on at least this many comparisons:
    # a shared full name alone passes only when the names are rare enough (term frequencies)
    # to reach the threshold; one agreeing field never does.
    min_agreeing_comparisons: int = 2
    # Share of all true matches the deterministic rules are believed to find; sets the
    # prior probability that two random records match (as Splink's
    # estimate_probability_two_random_records_match).
    deterministic_rule_recall: float = 0.8
    u_sample_pairs: int = 500_000
    em_max_iterations: int = 25
    random_seed: int = 42
    # Default phone region when a record has no country.
    default_phone_region: str = "US"

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_file(cls, path: Path | str) -> IdentityConfig:
        """Settings from a YAML or TOML file (see `load_identity_config`)."""
        return load_identity_config(path)

    def with_overrides(self, **overrides: Any) -> IdentityConfig:
        """A copy with some settings replaced (validated like a loaded file)."""
        return _from_mapping({**_to_mapping(self), **overrides}, source="overrides")


def _re2_problem(pattern: str) -> str | None:
    """Why DuckDB's regex engine (RE2) rejects `pattern`, or None when it accepts it."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    try:
        duckdb.execute("select regexp_matches('', ?)", [pattern]).fetchall()
    except duckdb.Error as exc:
        return str(exc).split("\n", 1)[0]
    return None


def _validate(config: IdentityConfig) -> None:
    for key in ("blocked_email_patterns", "blocked_phone_patterns"):
        for pattern in getattr(config, key):
            problem = _re2_problem(pattern)
            if problem:
                raise IdentityConfigError(
                    f"{key}: {pattern!r} is not a valid RE2 regular expression ({problem}); "
                    "fix or remove it (DuckDB evaluates these patterns: no backreferences or "
                    "look-arounds)"
                )
    for key in (
        "max_user_ids_per_customer",
        "max_emails_per_customer",
        "max_phones_per_customer",
        "max_block_size",
        "u_sample_pairs",
        "min_agreeing_comparisons",
        "shared_value_min_first_names",
        "shared_address_min_first_names",
        "max_addresses_per_person",
        "full_identity_every_days",
    ):
        value = getattr(config, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise IdentityConfigError(f"{key}: must be a positive integer, got {value!r}")
    if not isinstance(config.em_max_iterations, int) or config.em_max_iterations < 0:
        raise IdentityConfigError(
            f"em_max_iterations: must be an integer >= 0, got {config.em_max_iterations!r}"
        )
    if (
        not isinstance(config.keep_link_weight_margin, int | float)
        or config.keep_link_weight_margin < 0
    ):
        raise IdentityConfigError(
            f"keep_link_weight_margin: must be a number >= 0, got {config.keep_link_weight_margin!r}"
        )
    if not isinstance(config.full_identity_growth, int | float) or config.full_identity_growth < 0:
        raise IdentityConfigError(
            f"full_identity_growth: must be a number >= 0, got {config.full_identity_growth!r}"
        )
    if not isinstance(config.match_weight_threshold, int | float):
        raise IdentityConfigError(
            f"match_weight_threshold: must be a number, got {config.match_weight_threshold!r}"
        )
    if not isinstance(config.deterministic_rule_recall, int | float) or not (
        0 < config.deterministic_rule_recall <= 1
    ):
        raise IdentityConfigError(
            f"deterministic_rule_recall: must be a number in (0, 1], got {config.deterministic_rule_recall!r}"
        )
    names = [c.name for c in config.comparisons]
    if len(set(names)) != len(names):
        raise IdentityConfigError(f"comparisons: names must be unique, got {names}")
    for i, comparison in enumerate(config.comparisons):
        if comparison.kind not in COMPARISON_KINDS:
            raise IdentityConfigError(
                f"comparisons[{i}].kind: {comparison.kind!r} is not one of {COMPARISON_KINDS}"
            )
        if comparison.kind == "exact" and comparison.thresholds:
            raise IdentityConfigError(f"comparisons[{i}].thresholds: `exact` takes no thresholds")
        if comparison.kind in ("jaro_winkler", "email") and any(
            not 0 < t < 1 for t in comparison.thresholds
        ):
            raise IdentityConfigError(
                f"comparisons[{i}].thresholds: similarities must be between 0 and 1"
            )
    if config.household_guard_comparison not in (None, *names):
        raise IdentityConfigError(
            f"household_guard_comparison: {config.household_guard_comparison!r} is not a "
            f"comparison name ({names}) or null"
        )
    unknown = [c for c in config.household_shared_comparisons if c not in names]
    if config.household_guard_comparison is not None and unknown:
        raise IdentityConfigError(
            f"household_shared_comparisons: {unknown} are not comparison names ({names})"
        )
    for i, rule in enumerate(config.blocking_rules):
        if not rule or not all(isinstance(c, str) and c for c in rule):
            raise IdentityConfigError(f"blocking_rules[{i}]: must be a non-empty list of columns")


def _to_mapping(config: IdentityConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def _from_mapping(values: dict[str, Any], source: str) -> IdentityConfig:
    known = {f.name for f in dataclasses.fields(IdentityConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise IdentityConfigError(
            f"{source}: unknown key(s) {unknown}; valid keys are {sorted(known)}"
        )
    converted: dict[str, Any] = {}
    for key, value in values.items():
        try:
            converted[key] = _convert(key, value)
        except (TypeError, ValueError, KeyError) as exc:
            if isinstance(exc, IdentityConfigError):
                raise
            raise IdentityConfigError(f"{source}: {key}: invalid value {value!r} ({exc})") from None
    try:
        return IdentityConfig(**converted)
    except IdentityConfigError as exc:
        raise IdentityConfigError(f"{source}: {exc}") from None


def _convert(key: str, value: Any) -> Any:
    if key == "comparisons":
        return tuple(
            v
            if isinstance(v, ComparisonSpec)
            else ComparisonSpec(
                name=v["name"],
                column=v["column"],
                kind=v.get("kind", "exact"),
                thresholds=tuple(float(t) for t in v.get("thresholds", ())),
                term_frequency=bool(v.get("term_frequency", False)),
                swap_column=v.get("swap_column"),
                several_per_person=bool(v.get("several_per_person", False)),
            )
            for v in value
        )
    if key == "deterministic_rules":
        return tuple(
            v
            if isinstance(v, DeterministicRule)
            else DeterministicRule(
                name=v["name"],
                column=v["column"],
                source_pairs=tuple(tuple(p) for p in v.get("source_pairs", ())),
            )
            for v in value
        )
    if (
        key == "household_guard_comparison"
        and isinstance(value, str)
        and value.lower() in ("", "none")
    ):
        return None  # TOML has no null
    if key == "blocking_rules":
        return tuple(tuple([r] if isinstance(r, str) else r) for r in value)
    if isinstance(value, list):
        return tuple(value)
    return value


def load_identity_config(path: Path | str) -> IdentityConfig:
    """Read a YAML (.yml/.yaml) or TOML (.toml) file; missing keys keep their defaults."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise IdentityConfigError(f"{path}: cannot read the identity config ({exc})") from None
    try:
        if path.suffix == ".toml":
            values = tomllib.loads(text)
        elif path.suffix in (".yml", ".yaml"):
            values = yaml.safe_load(text) or {}
        else:
            raise IdentityConfigError(f"{path}: use a .yml, .yaml or .toml file")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise IdentityConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    if not isinstance(values, dict):
        raise IdentityConfigError(f"{path}: the top level must be a mapping of settings")
    return _from_mapping(values, source=str(path))
