"""Mask personal values before they are shown anywhere outside the warehouse.

Failing values are what make a quality report useful, and they are exactly the values
that must not leak: the Dagster UI has no login, Data Docs are static files, logs are
shipped around. Every example the pipeline shows (check metadata, Data Docs, the GX
result store) goes through `mask_value`, so a reader still sees the *shape* of the
problem (`j***@g***.com`, `+1 *** *** 12 34`, `A. L.`) but not the person.

Rules, by column name first (what the value is), then by the value's shape (a safety
net for emails and phone numbers in columns with unexpected names):

* email columns: first character of the local part and of the domain, then the last
  label of the domain (`jane.doe@gmail.com` -> `j***@g***.com`); not an email: `j***`;
* phone columns: a leading `+` and the first digit, then the last four digits
  (`+1 415 555 1234` -> `+1 *** *** 12 34`);
* name columns: initials (`Ada Lovelace` -> `A. L.`);
* other personal columns (addresses, IPs, free text, user agents, raw records):
  `***` and the value's length;
* everything else (ids, statuses, amounts, timestamps, dates) is kept: ids are what
  lets an engineer find the row in the warehouse, where the data is protected.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "mask_example",
    "mask_text",
    "mask_validation_result",
    "mask_value",
    "masks_column",
]

_EMAIL_COLUMN = re.compile(r"e_?mail")
_PHONE_COLUMN = re.compile(r"phone|mobile|msisdn|(^|_)tel($|_)")
_NAME_COLUMN = re.compile(
    r"^(name|full_name|first_name|last_name|given_name|family_name|display_name|"
    r"requester_name|respondent_name|customer_name|contact_name|best_name|surname)$"
)
_OTHER_PERSONAL_COLUMN = re.compile(
    r"address|street|postal|postcode|zip|line1|line2|(^|_)ip($|_)|user_?agent|comment|"
    r"traits|raw_record|birth|ssn|passport|iban|card"
)
_EMAIL_IN_TEXT = re.compile(r"[^\s@,;:<>()\[\]\"']+@[^\s@,;:<>()\[\]\"']+")
# Seven or more digits, possibly split by spaces, dots, dashes, slashes or parentheses.
# Not inside a word or a dashed token: ids (`cus_1234567`) and UUIDs stay as they are.
_PHONE_IN_TEXT = re.compile(r"(?<![\w\-])\+?\(?\d[\d\s().\-/]{5,}\d(?![\w\-])")


def masks_column(column: str | None) -> str | None:
    """The kind of personal data a column holds (email, phone, name, other), or None."""
    if not column:
        return None
    name = column.lower().rsplit(".", 1)[-1]
    if _EMAIL_COLUMN.search(name):
        return "email"
    if _PHONE_COLUMN.search(name):
        return "phone"
    if _NAME_COLUMN.match(name):
        return "name"
    if _OTHER_PERSONAL_COLUMN.search(name):
        return "other"
    return None


def mask_value(value: Any, column: str | None = None) -> Any:
    """`value` as it may be shown, given the column it comes from (None when unknown)."""
    if isinstance(value, dict):
        return mask_example(value, column)
    if isinstance(value, list | tuple):
        return [mask_value(v, column) for v in value]
    if not isinstance(value, str):
        return value  # numbers, booleans, dates and timestamps are no personal text
    text = value
    kind = masks_column(column)
    if kind == "email":
        return _mask_email(text)
    if kind == "phone":
        return _mask_phone(text)
    if kind == "name":
        return _initials(text)
    if kind == "other":
        return f"*** ({len(text)} chars)" if text else text
    return mask_text(text)


def mask_example(example: dict[str, Any], column: str | None = None) -> dict[str, Any]:
    """A row of keys and values (a GX unexpected-index row): each value by its own key.

    GX names the checked column's value after the column, or `value` in count lists; a
    `value` key is masked as the checked `column`.
    """
    masked = {}
    for key, value in example.items():
        own = column if key in ("value", "unexpected_value") else key
        masked[key] = value if key == "count" else mask_value(value, own)
    return masked


def mask_text(text: str) -> str:
    """Free text from a column not known to be personal: emails and phone numbers in it."""
    text = _EMAIL_IN_TEXT.sub(lambda m: _mask_email(m.group(0)), text)
    return _PHONE_IN_TEXT.sub(_mask_phone_match, text)


def _mask_phone_match(match: re.Match) -> str:
    found = match.group(0)
    # Dates, timestamps and decimals have few separators of one kind; a phone has >= 7 digits.
    if sum(c.isdigit() for c in found) < 7 or re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", found):
        return found
    return _mask_phone(found)


def _mask_email(text: str) -> str:
    stripped = text.strip()
    local, at, domain = stripped.rpartition("@")
    if not at or not local:
        return (stripped[:1] + "***") if stripped else stripped
    labels = domain.split(".")
    tld = labels[-1] if len(labels) > 1 else ""
    shown_domain = (domain[:1] + "***") + (f".{tld}" if tld else "")
    return f"{local[:1]}***@{shown_domain}"


def _mask_phone(text: str) -> str:
    digits = [c for c in text if c.isdigit()]
    if len(digits) < 4:
        return "***" if text.strip() else text
    tail = "".join(digits[-4:])
    prefix = f"+{digits[0]} " if text.strip().startswith("+") else ""
    return f"{prefix}*** *** {tail[:2]} {tail[2:]}"


def _initials(text: str) -> str:
    words = [w for w in re.split(r"[\s,]+", text.strip()) if w]
    return " ".join(f"{w[0].upper()}." for w in words) if words else text


# Keys of a GX expectation result that hold values of the checked column.
_RESULT_VALUE_KEYS = (
    "partial_unexpected_list",
    "partial_unexpected_index_list",
    "partial_unexpected_counts",
    "unexpected_list",
    "unexpected_index_list",
    "observed_value",
    "details",
)


def mask_validation_result(validation_result: Any) -> Any:
    """Mask, in place, every value a GX suite validation result holds; return it.

    Applied before the result is stored, rendered or reduced to check metadata, so the
    GX store, Data Docs and the Dagster UI all show the same masked examples.
    """
    for result in validation_result.results:
        details = result.result
        if not details:
            continue
        kwargs = result.expectation_config.kwargs if result.expectation_config else {}
        column = kwargs.get("column") or kwargs.get("column_A")
        for key in _RESULT_VALUE_KEYS:
            if key in details and details[key] is not None:
                value = details[key]
                if key == "observed_value" and isinstance(value, int | float | bool):
                    continue
                details[key] = mask_value(value, column)
    return validation_result
