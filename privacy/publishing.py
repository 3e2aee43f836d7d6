"""What BI users may see: PII masking derived from the dbt docs' `meta: {pii: true}`.

The marts' yml files are the one place that says which columns are personal data
(`config: {meta: {pii: true, masking: ...}}` on a column). Publishing reads them and
writes the default BI copy with each such column treated by its `masking`:

* `drop`: the column is left out (names, street address, postal code);
* `hash`: a keyed hash (the privacy salt, `ingestion/suppression.py`) of the trimmed,
  lower-cased value, 16 hex characters: analysts can still count and join on it, but
  nobody without the salt can test a guessed email or phone against it;
* `url_without_query`: the URL up to its `?` or `#` (query strings carry emails, tokens
  and click ids).

A pii column without `masking` gets the kind `quality.masking.masks_column` gives its
name (email and phone: hash) and is dropped otherwise: the safe default.
The clear values go only to the opt-in contact-data file (`publish_contacts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from quality.masking import masks_column

MASKINGS = ("drop", "hash", "url_without_query")
HASH_CHARS = 16


@dataclass(frozen=True)
class PiiColumn:
    table: str
    column: str
    masking: str


def _column_meta(column: dict) -> dict:
    meta = dict(column.get("meta") or {})
    meta.update((column.get("config") or {}).get("meta") or {})
    return meta


def pii_columns(models_dir: Path) -> dict[str, dict[str, str]]:
    """table -> {column: masking} for every column documented `pii: true` under models_dir."""
    plan: dict[str, dict[str, str]] = {}
    for path in sorted(Path(models_dir).rglob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for model in document.get("models") or []:
            for column in model.get("columns") or []:
                meta = _column_meta(column)
                if not meta.get("pii"):
                    continue
                masking = meta.get("masking") or (
                    "hash" if masks_column(column["name"]) in ("email", "phone") else "drop"
                )
                if masking not in MASKINGS:
                    raise ValueError(
                        f"{path}: {model['name']}.{column['name']} has masking {masking!r}; "
                        f"use one of {', '.join(MASKINGS)}"
                    )
                plan.setdefault(model["name"], {})[column["name"]] = masking
    return plan


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def masked_select_list(
    table: str, columns: list[str], plan: dict[str, dict[str, str]], salt: str
) -> str:
    """The SELECT list that publishes `table` with its pii columns masked."""
    masks = plan.get(table, {})
    items = []
    for column in columns:
        quoted = f'"{column}"'
        masking = masks.get(column)
        if masking is None:
            items.append(quoted)
        elif masking == "hash":
            prefix = _sql_str(f"{salt}|bi|{column}|")
            items.append(
                f"left(sha256({prefix} || lower(trim(CAST({quoted} AS VARCHAR)))), {HASH_CHARS})"
                f" AS {quoted}"
            )
        elif masking == "url_without_query":
            items.append(f"regexp_replace({quoted}, '[?#].*$', '') AS {quoted}")
    return ", ".join(items)
