"""Guards against over-merging.

Blocked values (config `blocked_*`) are removed from the matching columns in `records.py`
so they never link anything. Here: cardinality limits per golden customer, checked every
time two clusters would merge, and the household rule for probabilistic pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from identity.config import IdentityConfig

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
    """The distinct identifier values held by each cluster root, merged small-into-large."""

    def __init__(self, limits: tuple[CardinalityLimit, ...], values: dict[str, list]):
        self.limits = limits
        self.sets: list[dict[int, set]] = []
        for limit in limits:
            per_root: dict[int, set] = {}
            for rid, value in enumerate(values[limit.attribute]):
                if value is not None:
                    per_root[rid] = {value}
            self.sets.append(per_root)

    def violation(self, root_a: int, root_b: int) -> tuple[str, str] | None:
        """(guard, detail) when merging the two clusters would break a limit, else None."""
        for limit, per_root in zip(self.limits, self.sets, strict=True):
            a, b = per_root.get(root_a), per_root.get(root_b)
            if a and b and len(a) + len(b) > limit.limit:
                union = a | b
                if len(union) > limit.limit:
                    shown = ", ".join(sorted(map(str, union))[:6])
                    return (
                        limit.guard,
                        f"merged customer would hold {len(union)} {limit.attribute} values "
                        f"(limit {limit.limit}): {shown}",
                    )
        return None

    def merge(self, into: int, other: int) -> None:
        for per_root in self.sets:
            moved = per_root.pop(other, None)
            if moved:
                target = per_root.get(into)
                if target is None:
                    per_root[into] = moved
                elif len(target) >= len(moved):
                    target |= moved
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
