"""How long the validation store keeps results: read without importing Great Expectations,
so that `cdp run` can check the setting before it loads anything."""

from __future__ import annotations

import os

#: Validation results kept per suite in the store (older ones are pruned on write);
#: $CDP_GX_STORE_KEEP overrides it. Data Docs keep their own, longer, index.
DEFAULT_RESULTS_KEPT_PER_SUITE = 30


def results_kept_per_suite() -> int:
    """How many validation results per suite the store keeps ($CDP_GX_STORE_KEEP, >= 1)."""
    raw = os.environ.get("CDP_GX_STORE_KEEP", "").strip()
    if not raw:
        return DEFAULT_RESULTS_KEPT_PER_SUITE
    try:
        kept = int(raw)
    except ValueError:
        raise ValueError(f"CDP_GX_STORE_KEEP={raw!r} is not a whole number") from None
    if kept < 1:
        raise ValueError(f"CDP_GX_STORE_KEEP={raw!r} must be at least 1")
    return kept
