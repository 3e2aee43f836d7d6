"""Fellegi-Sunter classification of candidate pairs into matches and non-matches.

For each comparison and level, m = P(level | same person) and u = P(level | different
people); a pair's match weight is log2(prior odds) + sum of log2(m/u) over its non-missing
levels, which makes every decision explainable field by field (as in Splink).

- u comes from random record pairs (almost all are different people).
- m comes from the deterministic matches used as labels, for every comparison not on the
  rule's own column (a pair matched on email says nothing about how often emails agree).
- Without labels (e.g. FEBRL) the model is unsupervised: recordlinkage's ECMClassifier
  is fitted on the candidate pairs' agreement vectors, and its match posterior gives m, u
  and the prior for every level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from identity.compare import level_counts
from identity.config import ComparisonSpec

MIN_LABELS_TO_FIX_M = 200


@dataclass
class FellegiSunterModel:
    comparisons: tuple[ComparisonSpec, ...]
    m: list[np.ndarray]
    u: list[np.ndarray]
    prior: float
    m_source: dict[str, str] = field(default_factory=dict)

    @property
    def log2_bayes_factors(self) -> list[np.ndarray]:
        return [np.log2(m / u) for m, u in zip(self.m, self.u, strict=True)]

    def field_weights(
        self, levels: np.ndarray, term_frequencies: dict[int, np.ndarray] | None = None
    ) -> np.ndarray:
        """log2 Bayes factor of each comparison for each pair (n_pairs x n_comparisons; 0 when
        a value is missing). `term_frequencies[i]` = the agreed value's frequency for
        comparison i (NaN when not an exact agreement): it replaces u of the exact level."""
        out = np.zeros(levels.shape, dtype=float)
        for i, bf in enumerate(self.log2_bayes_factors):
            column = levels[:, i].astype(np.int64)
            present = column >= 0
            out[present, i] = bf[column[present]]
            tf = (term_frequencies or {}).get(i)
            if tf is not None:
                exact = present & (column == len(bf) - 1) & ~np.isnan(tf)
                out[exact, i] = np.log2(self.m[i][-1] / np.maximum(tf[exact], 1e-9))
        return out

    @property
    def prior_weight(self) -> float:
        return float(np.log2(self.prior / (1 - self.prior)))

    def match_weights(
        self, levels: np.ndarray, term_frequencies: dict[int, np.ndarray] | None = None
    ) -> np.ndarray:
        """log2 posterior odds for each row of `levels` (n_pairs x n_comparisons)."""
        return self.prior_weight + self.field_weights(levels, term_frequencies).sum(axis=1)

    def describe(self) -> pd.DataFrame:
        """One row per comparison level: m, u and the log2 Bayes factor (for docs and explain)."""
        rows = []
        for spec, m, u, bf in zip(
            self.comparisons, self.m, self.u, self.log2_bayes_factors, strict=True
        ):
            for level, label in enumerate(spec.level_labels()):
                rows.append(
                    {
                        "comparison": spec.name,
                        "level": level,
                        "level_label": label,
                        "m": float(m[level]),
                        "u": float(u[level]),
                        "log2_bayes_factor": float(bf[level]),
                        "m_source": self.m_source.get(spec.name, ""),
                    }
                )
        return pd.DataFrame(rows)


PRIOR_PAIRS = 20.0


def _level_distribution(
    levels: np.ndarray,
    n_levels: int,
    weights: np.ndarray | None = None,
    prior: np.ndarray | None = None,
) -> np.ndarray:
    """P(level) over the non-missing rows, smoothed towards `prior` as if it were 20 pairs,
    so tiny inputs keep sensible defaults and large ones are driven by the data."""
    present = levels >= 0
    counts = np.bincount(
        levels[present].astype(np.int64),
        weights=None if weights is None else weights[present],
        minlength=n_levels,
    )[:n_levels]
    return _smoothed(counts, n_levels, prior)


def _smoothed(counts: np.ndarray, n_levels: int, prior: np.ndarray | None) -> np.ndarray:
    """`counts` per level as probabilities, smoothed towards `prior` (`_level_distribution`)."""
    counts = counts.astype(float)
    counts += PRIOR_PAIRS * (prior if prior is not None else np.full(n_levels, 1.0 / n_levels))
    return counts / counts.sum()


def _default_u(spec: ComparisonSpec) -> np.ndarray:
    """Before seeing data: different people rarely agree exactly (1%) or closely (2% per level)."""
    u = np.full(spec.n_levels, 0.02)
    u[-1] = 0.01
    u[0] = 1.0 - u[1:].sum()
    return u


def estimate_u(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    comparisons: tuple[ComparisonSpec, ...],
    n_records: int,
    sample_pairs: int,
    seed: int,
) -> list[np.ndarray]:
    """u probabilities from uniformly random record pairs."""
    rng = np.random.default_rng(seed)
    n = min(sample_pairs, max(n_records * (n_records - 1) // 2, 1))
    left = rng.integers(0, n_records, size=n, dtype=np.int64)
    right = rng.integers(0, n_records, size=n, dtype=np.int64)
    keep = left != right
    random_pairs = pd.DataFrame({"rid_l": left[keep], "rid_r": right[keep]})
    con.register("_identity_random_pairs", random_pairs)
    try:
        counts = level_counts(con, records_table, "_identity_random_pairs", comparisons)
    finally:
        con.unregister("_identity_random_pairs")
    return [
        _smoothed(n, spec.n_levels, prior=_default_u(spec))
        for spec, n in zip(comparisons, counts, strict=True)
    ]


SEVERAL_PER_PERSON_DISAGREE_M = 0.3


def _default_m(spec: ComparisonSpec) -> np.ndarray:
    """A starting m for EM: most true matches agree exactly, few disagree - except on values
    people have several of (emails, phones), where a third of true pairs disagree."""
    m = np.full(spec.n_levels, 0.05)
    m[0] = SEVERAL_PER_PERSON_DISAGREE_M if spec.several_per_person else 0.05
    m[-1] = 0.9 - (m[0] - 0.05)
    return m / m.sum()


def fit_fellegi_sunter(
    comparisons: tuple[ComparisonSpec, ...],
    candidate_levels: np.ndarray,
    u: list[np.ndarray],
    labelled_levels: dict[str, np.ndarray],
    max_iterations: int,
    random_match_probability: float | None = None,
    blocked_em_m: dict[int, tuple[np.ndarray, str]] | None = None,
    n_records: int | None = None,
) -> FellegiSunterModel:
    """Fit m and the prior. `labelled_levels[name]` = levels of comparison `name` on labelled
    true matches whose rule does not involve that comparison's column; `blocked_em_m` = m
    learnt by `estimate_m_by_blocked_em` (preferred over the labels: deterministic matches
    are a biased sample, e.g. web and billing records tied by a user id nearly always share
    their email, which would make any email disagreement look like proof of two people).

    Supervised (labels and `random_match_probability` given): m from the labels, the
    default m where a comparison has too few labels, and the prior = the probability that
    two random records match, consistent with u from random pairs. Unsupervised: the classic
    EM over the candidate pairs' level patterns estimates m and the prior among candidates.
    """
    m: list[np.ndarray] = []
    fixed: list[bool] = []
    sources: dict[str, str] = {}
    blocked_em_m = blocked_em_m or {}
    supervised = random_match_probability is not None and (
        bool(blocked_em_m)
        or any(int((v >= 0).sum()) >= MIN_LABELS_TO_FIX_M for v in labelled_levels.values())
    )
    for i, spec in enumerate(comparisons):
        labels = labelled_levels.get(spec.name)
        if supervised and i in blocked_em_m:
            m.append(blocked_em_m[i][0])
            fixed.append(True)
            sources[spec.name] = blocked_em_m[i][1]
        elif labels is not None and int((labels >= 0).sum()) >= MIN_LABELS_TO_FIX_M:
            m.append(_level_distribution(labels, spec.n_levels, prior=_default_m(spec)))
            fixed.append(True)
            sources[spec.name] = (
                f"deterministic matches ({int((labels >= 0).sum())} labelled pairs)"
            )
        else:
            m.append(_default_m(spec))
            fixed.append(supervised)
            sources[spec.name] = "default" if supervised else "expectation-maximisation"
    if supervised:
        return FellegiSunterModel(
            comparisons, m, u, prior=random_match_probability, m_source=sources
        )
    if blocked_em_m and n_records and len(candidate_levels):
        # No deterministic matches to set the prior: m from the blocked EM sessions, u from
        # random pairs, and the prior = the candidates' expected matches over all pairs.
        for i in blocked_em_m:
            m[i] = blocked_em_m[i][0]
            sources[comparisons[i].name] = blocked_em_m[i][1]
        model = FellegiSunterModel(comparisons, m, u, prior=0.5, m_source=sources)
        share = _candidate_match_share(model, candidate_levels, max_iterations)
        all_pairs = n_records * (n_records - 1) / 2
        model.prior = float(np.clip(share * len(candidate_levels) / all_pairs, 1e-12, 0.5))
        return model
    model = FellegiSunterModel(comparisons, m, u, prior=0.1, m_source=sources)
    if len(candidate_levels) == 0:
        return model
    return _fit_ecm(model, candidate_levels, fixed, max_iterations)


def _candidate_match_share(
    model: FellegiSunterModel, candidate_levels: np.ndarray, max_iterations: int
) -> float:
    """The share of candidate pairs that are matches, by EM with m and u held fixed."""
    patterns, counts = _unique_patterns(candidate_levels)
    log_ratio = _pattern_log_probability(patterns, model.m) - _pattern_log_probability(
        patterns, model.u
    )
    share = 0.1
    for _ in range(max(max_iterations, 1) * 4):
        log_odds = np.log(share / (1 - share)) + log_ratio
        posterior = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -60, 60)))
        updated = float(np.clip((posterior * counts).sum() / counts.sum(), 1e-9, 1 - 1e-9))
        if abs(updated - share) < EM_TOLERANCE:
            return updated
        share = updated
    return share


def _fit_ecm(
    model: FellegiSunterModel, candidate_levels: np.ndarray, fixed: list[bool], max_iterations: int
) -> FellegiSunterModel:
    """Unsupervised Fellegi-Sunter with recordlinkage's ECMClassifier.

    ECM is fitted on the binary agreement vectors of the candidate pairs (level >= 1 = the
    field agrees at least loosely; a missing value counts as not agreeing), computed in
    DuckDB. Its match posterior for each pair then weighs the pairs to give m and u for every
    graded level (exact vs close), so the explainable per-level Bayes factors come from the
    fitted model. u and the prior are both over candidate pairs, hence consistent.
    Comparisons with label-fixed m keep it."""
    from recordlinkage import ECMClassifier

    comparisons = model.comparisons
    agreement = pd.DataFrame(
        (candidate_levels >= 1).astype(np.int8), columns=[spec.name for spec in comparisons]
    )
    informative = [c for c in agreement.columns if agreement[c].nunique() == 2]
    if not informative:
        return model
    ecm = ECMClassifier(init="jaro", binarize=None, max_iter=max(max_iterations, 1))
    ecm.fit(agreement[informative])
    posterior = ecm.prob(agreement[informative]).to_numpy(dtype=float)
    m_agree, u_agree = ecm.m_probs, ecm.u_probs
    for i, spec in enumerate(comparisons):
        levels = candidate_levels[:, i]
        if not fixed[i]:
            model.m[i] = _level_distribution(levels, spec.n_levels, posterior, _default_m(spec))
        model.u[i] = _level_distribution(levels, spec.n_levels, 1.0 - posterior, _default_u(spec))
        if spec.name in m_agree and not fixed[i]:
            model.m_source[spec.name] = (
                "recordlinkage ECMClassifier: P(agree | match) = "
                f"{m_agree[spec.name].get(1, 0.0):.3f}, P(agree | non-match) = "
                f"{u_agree[spec.name].get(1, 0.0):.4f}"
            )
    model.prior = float(np.clip(ecm.p, 1e-9, 1 - 1e-9))
    return model


MAX_EM_PAIRS_PER_SESSION = 400_000
EM_TOLERANCE = 1e-5


@dataclass(frozen=True)
class TrainingSession:
    """Candidate pairs selected by one blocking rule; EM learns m for every comparison the
    rule does not involve (the rule decided whether those pairs agree on its own fields)."""

    label: str
    pairs: np.ndarray  # boolean mask over the candidate pairs
    trained: tuple[int, ...]  # indexes of the comparisons this session learns m for


def estimate_m_by_blocked_em(
    comparisons: tuple[ComparisonSpec, ...],
    candidate_levels: np.ndarray,
    sessions: list[TrainingSession],
    u: list[np.ndarray],
    initial_m: list[np.ndarray],
    max_iterations: int,
    seed: int,
) -> dict[int, tuple[np.ndarray, str]]:
    """m per comparison from expectation-maximisation on candidate pairs, as Splink trains it:
    each session's pairs come from one blocking rule, u stays fixed (from random pairs), and
    a comparison's m is learnt only in sessions whose rule does not involve its column, so no
    comparison is trained on pairs selected by that same comparison (an email disagreement
    is learnt among pairs that share a name and a postcode, not among pairs that share an
    email). Sessions are combined weighted by their expected matches.
    Returns {comparison index: (m, description)}."""
    rng = np.random.default_rng(seed)
    learnt: dict[int, list[tuple[np.ndarray, float, str]]] = {}
    for session in sessions:
        rows = np.flatnonzero(session.pairs)
        if len(rows) < MIN_LABELS_TO_FIX_M or not session.trained:
            continue
        if len(rows) > MAX_EM_PAIRS_PER_SESSION:
            rows = np.sort(rng.choice(rows, MAX_EM_PAIRS_PER_SESSION, replace=False))
        active = list(session.trained)
        patterns, counts = _unique_patterns(candidate_levels[np.ix_(rows, active)])
        m = [initial_m[i].copy() for i in active]
        u_active = [u[i] for i in active]
        log_u = _pattern_log_probability(patterns, u_active)
        match_share = 0.3
        for _ in range(max(max_iterations, 1)):
            log_m = _pattern_log_probability(patterns, m)
            log_odds = np.log(match_share / (1 - match_share)) + log_m - log_u
            posterior = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -60, 60)))
            weights = posterior * counts
            match_share = float(np.clip(weights.sum() / counts.sum(), 1e-6, 1 - 1e-6))
            previous = m
            m = [
                _level_distribution(
                    patterns[:, j], comparisons[i].n_levels, weights, _default_m(comparisons[i])
                )
                for j, i in enumerate(active)
            ]
            if max(np.abs(a - b).max() for a, b in zip(m, previous, strict=True)) < EM_TOLERANCE:
                break
        expected_matches = float(weights.sum())
        for j, i in enumerate(active):
            learnt.setdefault(i, []).append((m[j], expected_matches, session.label))
    result = {}
    for i, estimates in learnt.items():
        total = sum(w for _, w, _ in estimates)
        if total <= 0:
            continue
        combined = sum(m_i * w for m_i, w, _ in estimates) / total
        labels = ", ".join(label for _, _, label in estimates)
        result[i] = (
            combined / combined.sum(),
            f"EM on candidate pairs blocked on other fields ({labels}; "
            f"{total:,.0f} expected matches)",
        )
    return result


def _unique_patterns(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a small-integer level matrix and their counts (rows packed into one
    integer first: much faster than a row-wise unique)."""
    levels = levels.astype(np.int64) + 1  # -1 (missing) .. 14 -> 0 .. 15
    packed = np.zeros(len(levels), dtype=np.int64)
    for j in range(levels.shape[1]):
        packed = packed * 16 + levels[:, j]
    codes, index, counts = np.unique(packed, return_index=True, return_counts=True)
    return levels[index] - 1, counts


def _pattern_log_probability(patterns: np.ndarray, probabilities: list[np.ndarray]) -> np.ndarray:
    """Sum over comparisons of log P(level), a missing level (-1) adding nothing."""
    total = np.zeros(len(patterns))
    for j, p in enumerate(probabilities):
        levels = patterns[:, j]
        present = levels >= 0
        total[present] += np.log(p[levels[present]])
    return total
