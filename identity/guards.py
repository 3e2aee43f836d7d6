"""Guards against over-merging.

Blocked values (config `blocked_*`) are removed from the matching columns in `records.py`
so they never link anything. Here: cardinality limits per golden customer, checked every
time two clusters would merge, and the household rule for probabilistic pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from identity.config import IdentityConfig
from quality.masking import mask_text

HOUSEHOLD = "household"


@dataclass(frozen=True)
class CardinalityLimit:
    guard: str
    attribute: str
    limit: int


def cardinality_limits(config: IdentityConfig) -> tuple[CardinalityLimit, ...]:
    return (
        CardinalityLimit("max_user_ids", "user_id", config.max_user_ids_per_customer),
        CardinalityLimit("max_emails", "email_key", config.max_emails_per_customer),
        CardinalityLimit("max_phones", "phone_e164", config.max_phones_per_customer),
    )


class ClusterAttributes:
    """The distinct identifier values held by each cluster root, merged small-into-large.

    A root's set is built only when a merge first touches it: until then the cluster is its
    own record, whose value is in `values` (most records never take part in a merge)."""

    def __init__(self, limits: tuple[CardinalityLimit, ...], values: dict[str, list]):
        self.limits = limits
        self.values = [values[limit.attribute] for limit in limits]
        self.sets: list[dict[int, set]] = [{} for _ in limits]

    def _set_of(self, k: int, root: int) -> set | None:
        per_root = self.sets[k]
        if root in per_root:
            return per_root[root]
        value = self.values[k][root]
        return None if value is None else {value}

    def violation(self, root_a: int, root_b: int) -> tuple[str, str] | None:
        """(guard, detail) when merging the two clusters would break a limit, else None."""
        for k, limit in enumerate(self.limits):
            a, b = self._set_of(k, root_a), self._set_of(k, root_b)
            if a and b and len(a) + len(b) > limit.limit:
                union = a | b
                if len(union) > limit.limit:
                    # refused_merges is a log table: it names the values masked (j***@x.com),
                    # enough for a steward to recognise them, never in clear.
                    shown = ", ".join(mask_text(v) for v in sorted(map(str, union))[:6])
                    return (
                        limit.guard,
                        f"merged customer would hold {len(union)} {limit.attribute} values "
                        f"(limit {limit.limit}): {shown}",
                    )
        return None

    def merge(self, into: int, other: int) -> None:
        for k, per_root in enumerate(self.sets):
            moved = self._set_of(k, other)
            per_root.pop(other, None)
            target = self._set_of(k, into)
            if not moved:
                if target is not None:
                    per_root[into] = target
                continue
            if target is None:
                per_root[into] = moved
            elif len(target) >= len(moved):
                target |= moved
                per_root[into] = target
            else:
                moved |= target
                per_root[into] = moved


def household_pairs(levels_of_guard_comparison: np.ndarray | None) -> np.ndarray | None:
    """Mask of probabilistic pairs whose guarded name comparison disagrees outright.

    Two records at one address with one phone but different first names are a household
    (partners, parent and child), not one person; such a pair is never merged on its own.
    """
    if levels_of_guard_comparison is None:
        return None
    return levels_of_guard_comparison <= 0
