"""Behaviour with signal for `cdp generate`: engaged people churn less and convert more.

Every person gets one latent engagement level (mean 1, log-normal-like spread), a pure
function of the seed and the person's index, so the email, billing and web generators
(which run in separate worker processes) all see the same value without sharing state.
It scales how often a person opens campaigns and visits the site, how likely a
billing account of theirs is opened during the window (their first payment, a lead
converting), and their monthly hazard of canceling a paid subscription. Predictive models
can then learn churn and conversion from engagement, as they could from real data; the
planted effects are moderate, so a model must combine several features to rank well.
"""

from __future__ import annotations

import numpy as np

ENGAGEMENT_SPREAD = 0.8  # sigma of log engagement
# A paying subscriber of average engagement cancels with this probability per 30 days.
BASE_MONTHLY_CHURN = 0.05
MONTH_MS = 30 * 86_400_000
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _uniform(seed: int, person: np.ndarray) -> np.ndarray:
    """A uniform (0, 1) per person from splitmix64 of (seed, index): stateless and vectorised."""
    with np.errstate(over="ignore"):
        z = np.asarray(person, np.uint64) * _MIX + np.uint64(seed * 0x2545F491 + 0x1B873593)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (np.asarray(z >> np.uint64(11), np.float64) + 0.5) / float(1 << 53)


def person_engagement(seed: int, person: np.ndarray) -> np.ndarray:
    """Engagement level per person (mean about 1): a logistic draw, scaled like a normal."""
    u = _uniform(seed, person)
    z = np.log(u / (1 - u)) * (np.sqrt(3) / np.pi)
    return np.exp(ENGAGEMENT_SPREAD * z - ENGAGEMENT_SPREAD**2 / 2)


def open_probability(seed: int, person: np.ndarray, base: float) -> np.ndarray:
    """Chance a delivered campaign is opened: `base` for an average person."""
    return np.clip(base * person_engagement(seed, person), 0.01, 0.95)


def session_rate_factor(seed: int, person: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Multiplier of a device's visit rate: its owner's engagement; 1 for strangers."""
    return np.where(known, person_engagement(seed, np.maximum(person, 0)), 1.0)


def conversion_share(seed: int, person: np.ndarray, base: float) -> np.ndarray:
    """Chance a billing account is opened during the window rather than before it: engaged
    people are the ones who become paying customers while we watch."""
    lift = person_engagement(seed, person) ** 1.2
    return np.clip(base * lift / np.mean(lift) if len(lift) else base, 0.0, 0.9)


def engaged_open_accounts_in_window(
    seed: int,
    person: np.ndarray,
    created_ms: np.ndarray,
    start_ms: int,
    end_ms: int,
    base: float,
    history_days: int = 3 * 365,
) -> np.ndarray:
    """Redraw which billing accounts are opened during the window (`conversion_share`) and
    when; accounts that stay historic keep their time, or get one in the history."""
    u = _uniform(seed ^ 0x0C0FFEE, person)
    in_window = u < conversion_share(seed, person, base)
    v = _uniform(seed ^ 0x5EED5, person)
    fresh = start_ms + (v * (end_ms - start_ms)).astype(np.int64)
    past = start_ms - (v**0.7 * history_days * 86_400_000).astype(np.int64) - 1
    historic = np.where(created_ms < start_ms, created_ms, past)
    return np.where(in_window, fresh, historic)


def plant_engagement_churn(
    seed: int,
    person: np.ndarray,
    is_cancel_candidate: np.ndarray,
    change: np.ndarray,
    change_ms: np.ndarray,
    change_from: np.ndarray,
    end_ms: int,
    rng: np.random.Generator,
    cancel_code: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Cancel paying subscriptions at a monthly hazard that falls with engagement.

    `is_cancel_candidate` marks subscriptions with no other change planned; each cancels
    after an exponential time with monthly probability BASE_MONTHLY_CHURN / engagement^1.5
    (capped), and only when that falls inside the window.
    """
    hazard = np.clip(BASE_MONTHLY_CHURN / person_engagement(seed, person) ** 1.5, 0.003, 0.5)
    rate_per_ms = -np.log1p(-hazard) / MONTH_MS
    wait = rng.exponential(1.0, len(person)) / rate_per_ms
    cancel_ms = change_from + wait.astype(np.int64)
    cancels = is_cancel_candidate & (cancel_ms < end_ms)
    return np.where(cancels, cancel_code, change), np.where(cancels, cancel_ms, change_ms)


def add_repeat_purchases(
    seed: int,
    person: np.ndarray,
    buyer: np.ndarray,
    first_ms: np.ndarray,
    end_ms: int,
    rng: np.random.Generator,
    max_repeats: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """One-off buyers come back, the engaged sooner and for longer (a buy-till-you-die shape).

    After each purchase a buyer stays with probability 0.75 and buys again after an
    exponential wait of 45 days / engagement on average. Returns every buyer and purchase
    time, the first purchases included; `person` maps a buyer to their person index.
    """
    engagement = person_engagement(seed, person[buyer])
    buyers, times = [buyer], [first_ms]
    current = first_ms.copy()
    alive = np.ones(len(buyer), bool)
    for _ in range(max_repeats):
        alive &= rng.random(len(buyer)) < 0.75
        current = current + (rng.exponential(45.0, len(buyer)) / engagement * 86_400_000).astype(
            np.int64
        )
        alive &= current < end_ms
        if not alive.any():
            break
        buyers.append(buyer[alive])
        times.append(current[alive])
    return np.concatenate(buyers), np.concatenate(times)


__all__ = [
    "add_repeat_purchases",
    "conversion_share",
    "engaged_open_accounts_in_window",
    "open_probability",
    "person_engagement",
    "plant_engagement_churn",
    "session_rate_factor",
]
