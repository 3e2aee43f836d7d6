"""Identity resolution as SQL the engine executes: the same decisions as identity/linkage.py,
on DuckDB or on Spark (issue 15).

Every heavy step is a SELECT written once in DuckDB's dialect and run by a
`warehouse_engine.sql_engines` engine (Spark gets it transpiled by sqlglot), each step
materialised as a table: deterministic rule edges, blocking, term frequencies, comparison
vectors, the two level fills (a missing name read from the mailbox, a missing identifier
contradicted by the record's deterministic component), Fellegi-Sunter scoring with the
household guard, connected components by iterative min-label propagation, stable ids and
survivorship (identity/golden_customers.sql).

What stays on the driver, and why:
- fitting m, u and the prior (identity/classify.py, unchanged): on the comparison levels of
  the candidate pairs (all of them up to `training_sample_pairs`, then a fixed sample),
  random pairs and the deterministic labels, compared by the engine. Up to that size the
  model is the one `link_records` fits, so the two paths agree exactly.
- the shared-mailbox split of email edges: the engine selects the edges whose first names
  differ (Jaro-Winkler < 0.6), the driver tests those few for names written the other way
  round (nickname tables in Python).
- the cardinality guards: they depend on the order edges are merged in (union-find by
  confidence), which SQL cannot express. The engine finds the connected components that
  would break a limit (more user ids, emails or phones than a customer may hold); only
  their edges come to the driver for `cluster_records`. Components are independent and a
  component within every limit can break none while it is built, so this is exactly the
  full union-find's result.
Steward overrides: a link is one more edge, taken first; a component holding an unlink
pair goes to the driver with the guarded ones. In `cdp run` (identity/engine_pipeline.py)
the pipeline keeps stable ids, the merge / split / refused logs and survivorship on its
DuckDB step store. Not on this path: last run's links (hysteresis) and incremental runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from identity.classify import (
    FellegiSunterModel,
    _default_u,
    _level_distribution,
)
from identity.clusters import cluster_records
from identity.compare import level_columns, level_sql, tf_column
from identity.config import ComparisonSpec, IdentityConfig
from identity.guards import ClusterAttributes, cardinality_limits
from identity.linkage import (
    MAX_TRAINING_LABELS,
    MIN_SPELT_FIRST_NAME,
    MIN_SPELT_SURNAME,
    PROBABILISTIC,
    SHARED_MAILBOX_NAME_SIMILARITY,
    fit_model,
)
from identity.overrides import STEWARD_LINK, StewardOverrides
from identity.rules import _rule_sql
from identity.shared_values import written_other_way_round
from identity.stable_ids import mint_customer_id

GOLDEN_CUSTOMERS_SQL = Path(__file__).with_name("golden_customers.sql")
ASSIGNED_TABLE = "_identity_assigned"  # the name golden_customers.sql reads
# Above this many candidate pairs the model is fit on a fixed sample of them.
TRAINING_SAMPLE_PAIRS = 2_000_000
MAX_COMPONENT_ITERATIONS = 60
PREFIX = "_ie_"
GUARDED_COLUMNS = ("user_id", "email_key", "phone_e164")


@dataclass
class EngineLinkage:
    """Where the engine left the result, and what the driver learnt on the way."""

    engine: str
    clusters_table: str  # rid, cluster (the smallest rid of the customer)
    model: FellegiSunterModel
    n_records: int
    candidate_pairs: int
    accepted_probabilistic_pairs: int
    household_refused_pairs: int
    shared_mailbox_refused_edges: int
    guarded_components: int  # components that broke a cardinality limit (union-find on the driver)
    refused: pd.DataFrame  # rid_l, rid_r, rule, weight, guard, detail (cardinality guards)
    component_iterations: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # the spanning-tree edges union-find kept in the components settled on the driver
    driver_tree_edges: pd.DataFrame | None = None
    mailbox_refused: pd.DataFrame | None = None  # rid_l, rid_r: email edges of a shared mailbox

    def cluster_of(self, engine) -> np.ndarray:
        """rid -> cluster as an array on the driver (for tests and benches)."""
        frame = engine.fetch_frame(f"select rid, cluster from {self.clusters_table} order by rid")
        return frame["cluster"].to_numpy(dtype=np.int64)


def _t(name: str) -> str:
    return PREFIX + name


def _columns(engine, table: str) -> set[str]:
    return set(engine.columns(table))


def _count(engine, select_sql: str) -> int:
    return int(engine.fetch_frame(f"select count(*) as n from ({select_sql}) q")["n"].iloc[0])


# --- SQL generators (DuckDB dialect) ---------------------------------------------------


def rule_edges_sql(records_table: str, config: IdentityConfig) -> str:
    """Every deterministic rule's edges (identity/rules.py), tagged with its order."""
    parts = [
        f"select cast(rid_l as integer) as rid_l, cast(rid_r as integer) as rid_r, rule, "
        f"cast(rule_order as integer) as rule_order from ({_rule_sql(records_table, rule, k)}) e{k}"
        for k, rule in enumerate(config.deterministic_rules)
    ]
    return " union all ".join(parts)


def blocking_sql(records_table: str, config: IdentityConfig) -> str:
    """The distinct candidate pairs of all blocking rules (blocks of 2..max_block_size)."""
    parts = []
    for k, rule in enumerate(config.blocking_rules):
        columns = ", ".join(rule)
        not_null = " and ".join(f"{c} is not null" for c in rule)
        join_on = " and ".join(f"l.{c} = r.{c}" for c in rule)
        blocks = f"""(select rid, {columns} from (
                select rid, {columns}, count(*) over (partition by {columns}) as block_size
                from {records_table} where {not_null}) sized{k}
            where block_size between 2 and {config.max_block_size})"""
        parts.append(
            f"select l.rid as rid_l, r.rid as rid_r from {blocks} l join {blocks} r "
            f"on {join_on} and l.rid < r.rid"
        )
    return " union ".join(parts)


def term_frequency_sql(records_table: str, spec: ComparisonSpec) -> str:
    return (
        f"select {spec.column} as value, count(*) / sum(count(*)) over () as tf "
        f"from {records_table} where {spec.column} is not null group by {spec.column}"
    )


def compare_sql(
    records_table: str,
    pairs_table: str,
    config: IdentityConfig,
    with_rule_flags: bool = False,
) -> str:
    """Levels (and term frequencies) of every pair, as identity/compare.py computes them;
    `with_rule_flags`: whether each blocking rule holds for the pair (EM training)."""
    selects = [
        f"cast({level_sql(spec)} as tinyint) as level_{spec.name}" for spec in config.comparisons
    ]
    joins = []
    for i, spec in enumerate(config.comparisons):
        if spec.term_frequency:
            alias = f"tf{i}"
            joins.append(
                f"left join {_t('tf_' + spec.name)} {alias} on {alias}.value = l.{spec.column} "
                f"and l.{spec.column} = r.{spec.column}"
            )
            selects.append(f"cast({alias}.tf as double) as {tf_column(spec)}")
    if with_rule_flags:
        for k, rule in enumerate(config.blocking_rules):
            holds = " and ".join(f"l.{c} = r.{c}" for c in rule)
            selects.append(f"coalesce({holds}, false) as rule_{k}")
    return f"""
        select p.rid_l, p.rid_r, {", ".join(selects)}
        from {pairs_table} p
        join {records_table} l on l.rid = p.rid_l
        join {records_table} r on r.rid = p.rid_r
        {" ".join(joins)}"""


def _letters(expr: str) -> str:
    return f"regexp_replace({expr}, '[^a-z]', '', 'g')"


def connected_components(engine, edges_table: str, out_table: str, records_table: str) -> int:
    """`out_table(rid, cluster)`: every record's component in the graph of `edges_table`
    (rid_l, rid_r), labelled by its smallest rid. The alternating large-star / small-star
    rounds of Kiveris et al. (2014), as GraphFrames runs them on Spark: each round rewires
    edges towards the smallest neighbour, until the edge set stops changing and every
    component is a star around its smallest rid. O(log^2 n) rounds for any shape (plain
    min-label propagation needs as many rounds as the longest chain), one materialised
    table per half-round. Returns the rounds taken."""
    arcs, large, small = _t("cc_arcs"), _t("cc_large"), _t("cc_small")

    def both_ways(select_xy: str) -> str:
        return (
            f"select x as a, y as b from ({select_xy}) q1 where x <> y union "
            f"select y as a, x as b from ({select_xy}) q2 where x <> y"
        )

    engine.create_table(arcs, both_ways(f"select rid_l as x, rid_r as y from {edges_table}"))
    rounds = 0
    for round_number in range(1, MAX_COMPONENT_ITERATIONS + 1):
        rounds = round_number
        # large star: each node's larger neighbours hang on its neighbourhood's minimum
        engine.create_table(
            large,
            both_ways(f"""
                select e.b as x, m.m as y from {arcs} e
                join (select a, least(a, min(b)) as m from {arcs} group by a) m on m.a = e.a
                where e.b > e.a"""),
            materialize=False,
        )
        # small star: a node and its smaller neighbours hang on their minimum
        engine.create_table(
            small,
            both_ways(f"""
                with m as (
                    select a, least(a, min(b)) as m from {large} where b < a group by a
                )
                select e.b as x, m.m as y from {large} e join m on m.a = e.a where e.b < e.a
                union all select a as x, m as y from m"""),
        )
        changed = _count(
            engine,
            f"(select a, b from {small} except select a, b from {arcs}) union all "
            f"(select a, b from {arcs} except select a, b from {small})",
        )
        arcs, small = small, arcs  # the rewired edges are read next round
        if changed == 0:
            break
    else:
        raise RuntimeError(
            f"connected components did not settle in {MAX_COMPONENT_ITERATIONS} rounds"
        )
    engine.create_table(
        out_table,
        f"select r.rid, coalesce(c.label, r.rid) as cluster from {records_table} r "
        f"left join (select a as rid, least(a, min(b)) as label from {arcs} group by a) c "
        f"on c.rid = r.rid",
    )
    for table in (arcs, large, small):
        engine.drop_table(table)
    return rounds


# --- the driver's part of training ------------------------------------------------------


def training_sample_filter(candidate_pairs: int, training_sample_pairs: int) -> str:
    """The WHERE clause that keeps a fixed ~`training_sample_pairs` of the candidate pairs
    (none when they are fewer): a hash of the pair's record ids, the same on every engine.
    The ids are INTEGER columns; the arithmetic is BIGINT, or a record id above ~53,000
    overflows (DuckDB and Spark's ANSI mode raise, a non-ANSI Spark would wrap)."""
    if candidate_pairs <= training_sample_pairs:
        return ""
    keep = max(1, int(1000 * training_sample_pairs / candidate_pairs))
    return (
        "where (cast(rid_l as bigint) * 2654435761 + cast(rid_r as bigint) * 40503) % 1000"
        f" < {keep}"
    )


def _fit_model(
    engine,
    records_table: str,
    config: IdentityConfig,
    n_records: int,
    kept_rule_edges: str,
    rule_components: str,
    candidate_pairs: int,
    training_sample_pairs: int,
) -> FellegiSunterModel:
    """m, u and the prior, as `identity.linkage.train_model` fits them, from levels the
    engine computed: candidate pairs (a fixed sample above `training_sample_pairs`),
    random pairs and deterministic labels."""
    comparisons = config.comparisons
    levels = level_columns(comparisons)
    flags = [f"rule_{k}" for k in range(len(config.blocking_rules))]
    sample = training_sample_filter(candidate_pairs, training_sample_pairs)
    training = engine.fetch_frame(
        f"select {', '.join(levels + flags)} from {_t('compared')} {sample} order by rid_l, rid_r"
    )
    candidate_levels = training[levels].to_numpy(dtype=np.int8)
    rule_flags = (
        training[flags].to_numpy(dtype=bool) if flags else np.zeros((len(training), 0), bool)
    )

    # u from uniformly random pairs: the same pairs identity.classify.estimate_u draws
    rng = np.random.default_rng(config.random_seed)
    n = min(config.u_sample_pairs, max(n_records * (n_records - 1) // 2, 1))
    left = rng.integers(0, n_records, size=n, dtype=np.int64)
    right = rng.integers(0, n_records, size=n, dtype=np.int64)
    keep = left != right
    engine.register_frame(
        _t("random_pairs"),
        pd.DataFrame({"rid_l": left[keep].astype(np.int32), "rid_r": right[keep].astype(np.int32)}),
    )
    random_levels = engine.fetch_frame(
        f"select {', '.join(levels)} from ({compare_sql(records_table, _t('random_pairs'), config)}) q"
    )
    engine.drop_table(_t("random_pairs"))
    u = [
        _level_distribution(random_levels[c].to_numpy(), spec.n_levels, prior=_default_u(spec))
        for spec, c in zip(comparisons, levels, strict=True)
    ]

    rule_edges = engine.fetch_frame(
        f"select rid_l, rid_r, rule from {kept_rule_edges} order by rule_order, rid_l, rid_r"
    )
    labelled = _labelled_levels(engine, records_table, config, rule_edges)
    return fit_model(
        config,
        candidate_levels,
        rule_flags,
        u,
        labelled,
        _random_match_probability(engine, rule_components, rule_edges, n_records, config),
        n_records,
    )


def _labelled_levels(engine, records_table, config, rule_edges) -> dict[str, np.ndarray]:
    if rule_edges.empty:
        return {}
    sample = rule_edges
    if len(sample) > MAX_TRAINING_LABELS:
        sample = sample.sample(MAX_TRAINING_LABELS, random_state=config.random_seed)
    engine.register_frame(
        _t("label_pairs"),
        sample[["rid_l", "rid_r"]].astype(np.int32).reset_index(drop=True),
    )
    compared = engine.fetch_frame(
        f"select * from ({compare_sql(records_table, _t('label_pairs'), config)}) q "
        "order by rid_l, rid_r"
    )
    engine.drop_table(_t("label_pairs"))
    merged = compared.merge(sample[["rid_l", "rid_r", "rule"]], on=["rid_l", "rid_r"], how="left")
    rule_column = {rule.name: rule.column for rule in config.deterministic_rules}
    return {
        spec.name: merged.loc[merged["rule"].map(rule_column) != spec.column, column].to_numpy()
        for spec, column in zip(config.comparisons, level_columns(config.comparisons), strict=True)
    }


def _random_match_probability(engine, rule_components, rule_edges, n_records, config):
    """identity.linkage.random_match_probability from the engine's rule components."""
    if rule_edges.empty or n_records < 2:
        return None
    sizes = engine.fetch_frame(f"select count(*) as n from {rule_components} group by cluster")[
        "n"
    ].to_numpy(dtype=float)
    linked_pairs = float((sizes * (sizes - 1) / 2).sum())
    all_pairs = n_records * (n_records - 1) / 2
    return float(np.clip(linked_pairs / config.deterministic_rule_recall / all_pairs, 1e-12, 0.5))


# --- scoring ----------------------------------------------------------------------------


def _number(value: float) -> str:
    """A double literal both engines read, NaN and infinities included (a comparison level
    never seen in a tiny zone can leave m or u at 0)."""
    value = float(value)
    if np.isnan(value):
        return "cast('NaN' as double)"
    if np.isinf(value):
        return "cast('Infinity' as double)" if value > 0 else "cast('-Infinity' as double)"
    return repr(value)


def _field_weight_sql(model: FellegiSunterModel, i: int, level: str, tf: str | None) -> str:
    """The log2 Bayes factor of comparison i for one pair (0 when a value is missing)."""
    bf = model.log2_bayes_factors[i]
    cases = [f"when {level} = {k} then {_number(w)}" for k, w in enumerate(bf)]
    if tf is not None:
        top = len(bf) - 1
        m_top = float(model.m[i][-1])
        cases.insert(
            0,
            f"when {level} = {top} and {tf} is not null "
            f"then log2({_number(m_top)} / greatest({tf}, 1e-9))",
        )
    return "(case " + " ".join(cases) + " else 0.0 end)"


def mailbox_names_sql(records_table: str, config: IdentityConfig, columns: set[str]) -> str | None:
    """The pairs with a missing first or last name (few), and what their mailboxes say:
    `last_spelt` / `first_spelt` (the nameless record's own mailbox spells the other's
    name: the level becomes exact, identity.linkage.fill_names_from_mailboxes), the value
    then agreed on, and `named_by_mailbox` (the first name is still missing but the mailbox
    spells the other's given name or initial before its surname: no household,
    identity.linkage.first_name_from_mailbox). None when the records lack the columns."""
    by_column = {spec.column: spec for spec in config.comparisons}
    first, last = by_column.get("first_name_key"), by_column.get("last_name")
    if first is None or last is None or "email_local" not in columns:
        return None
    own_mailbox = (
        "({t}.email_key is not null and coalesce(not contains({t}.shared_values, 'email:'), true))"
        if "shared_values" in columns
        else "{t}.email_key is not null"
    )

    def spelt(column: str, minimum: int, nameless: str, named: str) -> str:
        mailbox, name = _letters(f"{nameless}.email_local"), _letters(f"{named}.{column}")
        return (
            f"({nameless}.{column} is null and {named}.{column} is not null "
            f"and {own_mailbox.format(t=nameless)} "
            f"and length({name}) >= {minimum} and contains({mailbox}, {name}))"
        )

    def either(column: str, minimum: int) -> str:
        both = f"{spelt(column, minimum, 'l', 'r')} or {spelt(column, minimum, 'r', 'l')}"
        return f"coalesce({both}, false)"

    guard = config.household_guard_comparison
    guard_spec = next((s for s in config.comparisons if s.name == guard), None)
    levels = list(dict.fromkeys([first.name, last.name] + ([guard] if guard_spec else [])))
    named = "false"
    if guard_spec is not None:
        g = guard_spec.column

        def spelt_given(nameless: str, named_: str) -> str:
            mailbox = _letters(f"{nameless}.email_local")
            surname = _letters(f"{named_}.last_name")
            prefix = f"split_part({mailbox}, {surname}, 1)"
            given = _letters(f"{named_}.{g}")
            return (
                f"({nameless}.{g} is null and {named_}.{g} is not null "
                f"and length({surname}) >= 3 and contains({mailbox}, {surname}) "
                f"and ({prefix} = {given} or ({prefix} = left({given}, 1) and length({prefix}) = 1)))"
            )

        guard_level = (
            f"(case when first_spelt then {first.n_levels - 1} else level_{first.name} end)"
            if guard_spec is first
            else f"level_{guard}"
        )
        named = (
            f"{guard_level} = -1 and coalesce({spelt_given('l', 'r')} "
            f"or {spelt_given('r', 'l')}, false)"
        )
    return f"""
        with spelt as (
            select c.rid_l, c.rid_r, {", ".join(f"c.level_{name}" for name in levels)},
                   {either(last.column, MIN_SPELT_SURNAME)} as last_spelt,
                   coalesce(l.{last.column}, r.{last.column}) as last_value,
                   {either(first.column, MIN_SPELT_FIRST_NAME)} as first_spelt,
                   coalesce(l.{first.column}, r.{first.column}) as first_value
            from {_t("compared")} c
            join {records_table} l on l.rid = c.rid_l
            join {records_table} r on r.rid = c.rid_r
            where {" or ".join(f"c.level_{name} = -1" for name in levels)}
        )
        select s.rid_l, s.rid_r, s.last_spelt, s.last_value, s.first_spelt, s.first_value,
               {named.replace("level_", "s.level_").replace("first_spelt", "s.first_spelt")} as named_by_mailbox
        from spelt s
        join {records_table} l on l.rid = s.rid_l
        join {records_table} r on r.rid = s.rid_r"""


def scored_pairs_sql(
    config: IdentityConfig, model: FellegiSunterModel, with_mailbox_names: bool
) -> str:
    """Every candidate pair with its levels after the two fills, its match weight and
    whether it is accepted (threshold, agreeing comparisons, household guard)."""
    by_column = {spec.column: spec for spec in config.comparisons}
    first, last = by_column.get("first_name_key"), by_column.get("last_name")
    level_expr = {spec.name: f"c.level_{spec.name}" for spec in config.comparisons}
    tf_expr = {
        spec.name: f"c.{tf_column(spec)}" for spec in config.comparisons if spec.term_frequency
    }
    joins = []
    if with_mailbox_names:
        joins.append(
            f"left join {_t('mailbox_names')} mn on mn.rid_l = c.rid_l and mn.rid_r = c.rid_r"
        )
        for spec, flag in ((last, "last"), (first, "first")):
            hit = f"coalesce(mn.{flag}_spelt, false)"
            level_expr[spec.name] = (
                f"case when {hit} then {spec.n_levels - 1} else c.level_{spec.name} end"
            )
            if spec.term_frequency:
                alias = f"filled_tf_{spec.name}"
                joins.append(
                    f"left join {_t('tf_' + spec.name)} {alias} on {alias}.value = mn.{flag}_value"
                )
                tf_expr[spec.name] = f"case when {hit} then {alias}.tf else c.{tf_column(spec)} end"
    for spec in config.comparisons:
        if spec.name in config.component_evidence_comparisons:
            alias = f"contradicted_{spec.name}"
            joins.append(
                f"left join {_t('contradicted_' + spec.name)} {alias} "
                f"on {alias}.rid_l = c.rid_l and {alias}.rid_r = c.rid_r"
            )
            level_expr[spec.name] = (
                f"case when {alias}.rid_l is not null then 0 else {level_expr[spec.name]} end"
            )
    named = "coalesce(mn.named_by_mailbox, false)" if with_mailbox_names else "false"
    # the filled levels and term frequencies stay with the pair: the per-field evidence of
    # the accepted pairs (`cdp explain`, identity.match_evidence) is read from them
    kept_columns = [f"level_{name}" for name in level_expr] + [f"tf_{name}" for name in tf_expr]
    filled = ",\n               ".join(
        [f"{expr} as level_{name}" for name, expr in level_expr.items()]
        + [f"{expr} as tf_{name}" for name, expr in tf_expr.items()]
        + [f"{named} as named_by_mailbox"]
    )
    weights = [
        _field_weight_sql(
            model, i, f"f.level_{spec.name}", f"f.tf_{spec.name}" if spec.term_frequency else None
        )
        for i, spec in enumerate(config.comparisons)
    ]
    personal = [
        w
        for w, spec in zip(weights, config.comparisons, strict=True)
        if spec.name not in config.household_shared_comparisons
    ]
    agreeing = " + ".join(
        f"(case when f.level_{spec.name} >= 1 then 1 else 0 end)" for spec in config.comparisons
    )
    guard = config.household_guard_comparison
    household = (
        f"(f.level_{guard} <= 0 and not f.named_by_mailbox "
        f"and (0.0 + {' + '.join(personal) or '0.0'}) <= 0)"
        if guard is not None
        else "false"
    )
    return f"""
        with filled as (
            select c.rid_l, c.rid_r,
               {filled}
            from {_t("compared")} c
            {" ".join(joins)}
        ),
        weighed as (
            select f.*,
                   {_number(model.prior_weight)} + ({" + ".join(weights)}) as weight,
                   {agreeing} as agreeing,
                   {household} as household
            from filled f
        )
        select rid_l, rid_r, weight, household,
               not isnan(weight) and weight >= {float(config.match_weight_threshold)!r}
                   and agreeing >= {int(config.min_agreeing_comparisons)} as accepted,
               {", ".join(kept_columns)}
        from weighed"""


def contradicted_sql(records_table: str, rule_components: str, spec: ComparisonSpec) -> str:
    """Pairs whose missing `spec` level becomes "disagree": both records' deterministic
    components carry values of the column and share none (identity.linkage's
    fill_levels_from_components)."""
    return f"""
        with vals as (
            select distinct c.cluster as component, r.{spec.column} as v
            from {records_table} r join {rule_components} c on c.rid = r.rid
            where r.{spec.column} is not null
        ),
        carriers as (select distinct component from vals),
        missing as (
            select p.rid_l, p.rid_r, cl.cluster as cl, cr.cluster as cr
            from {_t("compared")} p
            join {rule_components} cl on cl.rid = p.rid_l
            join {rule_components} cr on cr.rid = p.rid_r
            where p.level_{spec.name} = -1
        ),
        sharing as (
            select distinct m.rid_l, m.rid_r from missing m
            join vals a on a.component = m.cl
            join vals b on b.component = m.cr and b.v = a.v
        )
        select m.rid_l, m.rid_r from missing m
        semi join carriers a on a.component = m.cl
        semi join carriers b on b.component = m.cr
        anti join sharing s on s.rid_l = m.rid_l and s.rid_r = m.rid_r"""


# --- the whole linkage --------------------------------------------------------------------


def link_records_on_engine(
    engine,
    records_table: str,
    config: IdentityConfig | None = None,
    training_sample_pairs: int = TRAINING_SAMPLE_PAIRS,
    overrides: StewardOverrides | None = None,
) -> EngineLinkage:
    """Cluster the records of `records_table` (rid = position in record_key order, the
    columns identity/records.py makes) into customers; the result is the engine table
    `_ie_clusters(rid, cluster)`.

    `overrides` (identity/overrides.py, in this run's rids): a steward's `link` is one more
    edge, taken before every other (as `cluster_records` takes it, past the cardinality
    guards); a component holding both records of an `unlink` goes to the driver with the
    components that break a cardinality limit, where `cluster_records` never lets the two
    meet. (A blocked value is already gone from the records: `apply_value_blocks`.)"""
    config = config or IdentityConfig()
    overrides = overrides if overrides is not None else StewardOverrides.none()
    seconds: dict[str, float] = {}
    rounds: dict[str, int] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now

    columns = _columns(engine, records_table)
    n_records = _count(engine, f"select rid from {records_table}")

    # deterministic rules, the shared-mailbox split (driver), their components
    engine.create_table(_t("rule_edges"), rule_edges_sql(records_table, config))
    refused_mailbox = pd.DataFrame({"rid_l": [], "rid_r": []}, dtype=np.int32)
    if "first_name_key" in columns:
        suspects = engine.fetch_frame(f"""
            select e.rid_l, e.rid_r, l.first_name_key as first_l, l.last_name as last_l,
                   r.first_name_key as first_r, r.last_name as last_r
            from {_t("rule_edges")} e
            join {records_table} l on l.rid = e.rid_l
            join {records_table} r on r.rid = e.rid_r
            where e.rule = 'email_key'
              and l.first_name_key is not null and r.first_name_key is not null
              and jaro_winkler_similarity(l.first_name_key, r.first_name_key)
                  < {SHARED_MAILBOX_NAME_SIMILARITY}""")
        shared = [
            not written_other_way_round(
                {"f": _value(row.first_l), "l": _value(row.last_l)},
                {"f": _value(row.first_r), "l": _value(row.last_r)},
            )
            for row in suspects.itertuples(index=False)
        ]
        refused_mailbox = suspects.loc[shared, ["rid_l", "rid_r"]].astype(np.int32)
    engine.register_frame(_t("mailbox_refused"), refused_mailbox.reset_index(drop=True))
    engine.create_table(
        _t("kept_rule_edges"),
        f"select e.* from {_t('rule_edges')} e anti join {_t('mailbox_refused')} x "
        f"on x.rid_l = e.rid_l and x.rid_r = e.rid_r and e.rule = 'email_key'",
        materialize=False,
    )
    rounds["rule_components"] = connected_components(
        engine, _t("kept_rule_edges"), _t("rule_components"), records_table
    )
    lap("deterministic_rules")

    engine.create_table(_t("pairs"), blocking_sql(records_table, config))
    candidate_pairs = _count(engine, f"select rid_l from {_t('pairs')}")
    lap("blocking")

    for spec in config.comparisons:
        if spec.term_frequency:
            engine.create_table(
                _t("tf_" + spec.name), term_frequency_sql(records_table, spec), materialize=False
            )
    engine.create_table(
        _t("compared"), compare_sql(records_table, _t("pairs"), config, with_rule_flags=True)
    )
    lap("comparison")

    model = _fit_model(
        engine,
        records_table,
        config,
        n_records,
        _t("kept_rule_edges"),
        _t("rule_components"),
        candidate_pairs,
        training_sample_pairs,
    )
    lap("training")

    for spec in config.comparisons:
        if spec.name in config.component_evidence_comparisons:
            engine.create_table(
                _t("contradicted_" + spec.name),
                contradicted_sql(records_table, _t("rule_components"), spec),
                materialize=False,
            )
    mailbox_names = mailbox_names_sql(records_table, config, columns)
    if mailbox_names is not None:
        engine.create_table(_t("mailbox_names"), mailbox_names, materialize=False)
    engine.create_table(_t("scored"), scored_pairs_sql(config, model, mailbox_names is not None))
    tally = engine.fetch_frame(f"""
        select coalesce(sum(case when accepted and not household then 1 else 0 end), 0) as linked,
               coalesce(sum(case when accepted and household then 1 else 0 end), 0) as household
        from {_t("scored")}""")
    lap("scoring")

    # all accepted edges, components in SQL; the guarded components on the driver
    engine.register_frame(
        _t("steward_links"),
        overrides.must_links[["rid_l", "rid_r"]].astype(np.int32).reset_index(drop=True),
    )
    engine.register_frame(
        _t("steward_unlinks"),
        overrides.cannot_links[["rid_a", "rid_b"]].astype(np.int32).reset_index(drop=True),
    )
    engine.create_table(
        _t("edges"),
        f"select rid_l, rid_r, '{STEWARD_LINK}' as rule, -1 as rule_order, "
        f"cast(null as double) as weight from {_t('steward_links')} union all "
        f"select rid_l, rid_r, rule, rule_order, cast(null as double) as weight "
        f"from {_t('kept_rule_edges')} union all "
        f"select rid_l, rid_r, '{PROBABILISTIC}' as rule, "
        f"{len(config.deterministic_rules)} as rule_order, weight "
        f"from {_t('scored')} where accepted and not household",
    )
    rounds["clusters"] = connected_components(engine, _t("edges"), _t("components"), records_table)
    guarded, refused, driver_tree = _apply_cardinality_guards(
        engine, records_table, config, overrides
    )
    lap("clustering")

    for table in ("rule_edges", "pairs", "compared"):
        engine.drop_table(_t(table))
    return EngineLinkage(
        engine=engine.name,
        clusters_table=_t("clusters"),
        model=model,
        n_records=n_records,
        candidate_pairs=candidate_pairs,
        accepted_probabilistic_pairs=int(tally["linked"].iloc[0]),
        household_refused_pairs=int(tally["household"].iloc[0]),
        shared_mailbox_refused_edges=len(refused_mailbox),
        guarded_components=guarded,
        refused=refused,
        component_iterations=rounds,
        seconds=seconds,
        driver_tree_edges=driver_tree,
        mailbox_refused=refused_mailbox.reset_index(drop=True),
    )


def _value(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else v


def _apply_cardinality_guards(
    engine, records_table: str, config: IdentityConfig, overrides: StewardOverrides
) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    """`_ie_clusters` from `_ie_components`: components within every cardinality limit
    and holding no steward unlink pair as they are; the others re-clustered on the driver
    by identity.clusters.cluster_records over their edges in the order of confidence
    identity/linkage.py uses, with the steward's links first and unlinks as a guard.
    Returns (components settled on the driver, refused merges, the tree edges kept)."""
    limits = cardinality_limits(config)
    breaking = " or ".join(
        f"count(distinct r.{limit.attribute}) > {int(limit.limit)}" for limit in limits
    )
    engine.create_table(
        _t("guarded_components"),
        f"select c.cluster from {_t('components')} c join {records_table} r on r.rid = c.rid "
        f"group by c.cluster having {breaking} "
        # a component holding both records of a steward's unlink: the driver keeps them apart
        f"union select a.cluster from {_t('steward_unlinks')} u "
        f"join {_t('components')} a on a.rid = u.rid_a "
        f"join {_t('components')} b on b.rid = u.rid_b where a.cluster = b.cluster",
    )
    n_guarded = _count(engine, f"select cluster from {_t('guarded_components')}")
    refused = pd.DataFrame(columns=["rid_l", "rid_r", "rule", "weight", "guard", "detail"])
    tree = pd.DataFrame({"rid_l": [], "rid_r": [], "rule": [], "weight": []}).astype(
        {"rid_l": np.int64, "rid_r": np.int64, "rule": object, "weight": float}
    )
    if n_guarded == 0:
        engine.create_table(_t("clusters"), f"select rid, cluster from {_t('components')}")
        return 0, refused, tree
    members = engine.fetch_frame(f"""
        select r.rid, {", ".join(f"r.{c}" for c in GUARDED_COLUMNS)}
        from {_t("components")} c join {records_table} r on r.rid = c.rid
        semi join {_t("guarded_components")} g on g.cluster = c.cluster
        order by r.rid""")
    edges = engine.fetch_frame(f"""
        select e.rid_l, e.rid_r, e.rule, e.rule_order, e.weight
        from {_t("edges")} e join {_t("components")} c on c.rid = e.rid_l
        semi join {_t("guarded_components")} g on g.cluster = c.cluster
        where e.rule <> '{STEWARD_LINK}'""")
    rules = edges[edges["rule"] != PROBABILISTIC].sort_values(
        ["rule_order", "rid_l", "rid_r"], kind="stable"
    )
    probabilistic = edges[edges["rule"] == PROBABILISTIC].sort_values(
        ["weight", "rid_l", "rid_r"], ascending=[False, True, True], kind="stable"
    )
    ordered = pd.concat([rules, probabilistic], ignore_index=True)
    rids = members["rid"].to_numpy(dtype=np.int64)
    local = pd.Series(np.arange(len(rids)), index=rids)
    local_edges = pd.DataFrame(
        {
            "rid_l": local.loc[ordered["rid_l"].to_numpy(dtype=np.int64)].to_numpy(),
            "rid_r": local.loc[ordered["rid_r"].to_numpy(dtype=np.int64)].to_numpy(),
            "rule": ordered["rule"].to_numpy(),
            "weight": ordered["weight"].to_numpy(dtype=float),
        }
    )
    attributes = ClusterAttributes(
        limits, {c: [_value(v) for v in members[c].tolist()] for c in GUARDED_COLUMNS}
    )
    clustering = cluster_records(
        len(rids), local_edges, attributes, _local_overrides(overrides, local)
    )
    engine.register_frame(
        _t("guarded_clusters"),
        pd.DataFrame(
            {"rid": rids.astype(np.int64), "cluster": rids[clustering.cluster_of].astype(np.int64)}
        ),
    )
    engine.create_table(
        _t("clusters"),
        f"select c.rid, coalesce(g.cluster, c.cluster) as cluster from {_t('components')} c "
        f"left join {_t('guarded_clusters')} g on g.rid = c.rid",
    )
    refused = clustering.refused.copy()
    if len(refused):
        refused["rid_l"] = rids[refused["rid_l"].to_numpy(dtype=np.int64)]
        refused["rid_r"] = rids[refused["rid_r"].to_numpy(dtype=np.int64)]
    tree = clustering.tree_edges[["rid_l", "rid_r", "rule", "weight"]].copy()
    tree["rid_l"] = rids[tree["rid_l"].to_numpy(dtype=np.int64)]
    tree["rid_r"] = rids[tree["rid_r"].to_numpy(dtype=np.int64)]
    return n_guarded, refused, tree


def _local_overrides(overrides: StewardOverrides, local: pd.Series) -> StewardOverrides:
    """The steward links and unlinks among the driver's records, in its local positions."""

    def inside(frame: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
        keep = frame[a].isin(local.index) & frame[b].isin(local.index)
        return pd.DataFrame(
            {
                a: local.loc[frame.loc[keep, a].to_numpy(dtype=np.int64)].to_numpy(),
                b: local.loc[frame.loc[keep, b].to_numpy(dtype=np.int64)].to_numpy(),
            }
        )

    return StewardOverrides(
        inside(overrides.must_links, "rid_l", "rid_r"),
        inside(overrides.cannot_links, "rid_a", "rid_b"),
        overrides.blocked,
    )


# --- stable ids and golden records ----------------------------------------------------------


def assign_customer_ids_on_engine(
    engine, records_table: str, clusters_table: str, out_table: str = _t("customers")
) -> int:
    """`out_table(rid, customer_id)` for a first run: each customer's id minted from its
    smallest record key (identity.stable_ids.mint_customer_id: `cust_` + 16 hex digits of
    SHA-1) in SQL. Two clusters minting the same id (never seen; the driver salts them as
    identity/stable_ids.py does) are settled on the driver. Returns the customers."""
    engine.create_table(
        _t("cluster_ids"),
        f"select c.cluster, 'cust_' || left(sha1(min(r.record_key)), 16) as customer_id, "
        f"min(r.record_key) as smallest_key "
        f"from {clusters_table} c join {records_table} r on r.rid = c.rid group by c.cluster",
    )
    totals = engine.fetch_frame(
        f"select count(*) as n, count(distinct customer_id) as ids from {_t('cluster_ids')}"
    )
    n, distinct = int(totals["n"].iloc[0]), int(totals["ids"].iloc[0])
    if distinct < n:
        clusters = engine.fetch_frame(
            f"select cluster, smallest_key from {_t('cluster_ids')} order by smallest_key"
        )
        taken: set[str] = set()
        minted = []
        for key in clusters["smallest_key"]:
            minted.append(mint_customer_id(key, taken))
            taken.add(minted[-1])
        engine.register_frame(
            _t("cluster_ids"),
            clusters.assign(customer_id=minted)[["cluster", "customer_id", "smallest_key"]],
        )
    engine.create_table(
        out_table,
        f"select c.rid, i.customer_id from {clusters_table} c "
        f"join {_t('cluster_ids')} i on i.cluster = c.cluster",
    )
    engine.drop_table(_t("cluster_ids"))
    return n


def golden_customers_on_engine(
    engine,
    full_records_table: str,
    customers_table: str,
    run_at: pd.Timestamp,
    out_table: str = _t("golden"),
) -> None:
    """`out_table`: identity/golden_customers.sql (survivorship) over the records and their
    customer ids, created_at = updated_at = the run (a first run)."""
    engine.create_table(
        ASSIGNED_TABLE,
        f"select r.*, c.customer_id from {full_records_table} r "
        f"join {customers_table} c on c.rid = r.rid",
        materialize=False,
    )
    run_literal = f"cast('{pd.Timestamp(run_at).isoformat(sep=' ')}' as timestamp)"
    engine.create_table(
        out_table,
        f"select g.*, {run_literal} as created_at, {run_literal} as updated_at "
        f"from ({GOLDEN_CUSTOMERS_SQL.read_text(encoding='utf-8')}) g",
    )
    engine.drop_table(ASSIGNED_TABLE)


@dataclass
class EngineResolution:
    linkage: EngineLinkage
    customers_table: str  # rid, customer_id
    golden_table: str | None
    n_customers: int
    seconds: dict[str, float]


def resolve_records_on_engine(
    engine,
    match_records_table: str,
    config: IdentityConfig | None = None,
    full_records_table: str | None = None,
    run_at: pd.Timestamp | None = None,
    training_sample_pairs: int = TRAINING_SAMPLE_PAIRS,
) -> EngineResolution:
    """The plain-Python entry point for a first (full) run on any engine: link, mint ids,
    and (given the full normalised records) build the golden customers. Tables stay in the
    engine: `_ie_clusters`, `_ie_customers`, `_ie_golden`."""
    linkage = link_records_on_engine(engine, match_records_table, config, training_sample_pairs)
    seconds = dict(linkage.seconds)
    clock = time.perf_counter()
    n_customers = assign_customer_ids_on_engine(engine, match_records_table, linkage.clusters_table)
    seconds["stable_ids"] = round(time.perf_counter() - clock, 3)
    golden = None
    if full_records_table is not None:
        clock = time.perf_counter()
        golden_customers_on_engine(
            engine, full_records_table, _t("customers"), run_at or pd.Timestamp.now()
        )
        golden = _t("golden")
        seconds["survivorship"] = round(time.perf_counter() - clock, 3)
    return EngineResolution(linkage, _t("customers"), golden, n_customers, seconds)


__all__ = [
    "EngineLinkage",
    "EngineResolution",
    "link_records_on_engine",
    "assign_customer_ids_on_engine",
    "golden_customers_on_engine",
    "resolve_records_on_engine",
    "connected_components",
]
