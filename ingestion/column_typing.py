"""Typing each column and checking the contract's domain rules, as SQL per column.

A value that cannot be typed or breaks a rule becomes a reject with a sentence naming the
column, the value and what was expected.
"""

from __future__ import annotations

from ingestion.contract import Column, RawTable
from ingestion.load_session import sql_literal

RAW_RECORD_MAX_CHARS = 10_000


VALUE_IN_REASON_MAX_CHARS = 200


_FIX_VALUE = "Fix the record at the source and re-deliver it."


_EXPECTED = {
    "TIMESTAMP": "an ISO-8601 timestamp such as 2026-10-01T09:30:00Z",
    "BOOLEAN": "a boolean (true/false, 1/0, yes/no)",
    "BIGINT": "a whole number that fits in 64 bits",
}


_TRUE_WORDS = ("true", "t", "1", "yes", "y")


_FALSE_WORDS = ("false", "f", "0", "no", "n")


def typed_select(spec: RawTable, source: str, carry: tuple[str, ...] = ()) -> str:
    """Typed values, the first offending column and every problem, from the s_<col> text.

    `carry` names columns of `source` passed through unchanged and put first (the Spark
    reader carries the file a row came from); none by default.

    A cheap boolean per column decides whether a row is bad; the reason sentences are only
    built for bad rows. `record` (the raw line) is kept only for rejected rows too: good
    rows never need it, and copying every line would double the bytes a load moves.
    DuckDB's loader runs the same rules in two statements (`flagged_select`, then
    `reject_reasons_update` only when a row needs a reason); Spark runs this one.
    """
    checks = _checks(spec)
    any_bad = " OR ".join(f"({condition})" for _, condition, _ in checks)
    column_names = ", ".join(c.name for c in spec.columns)
    raw_names = ", ".join(f"s_{c.name}" for c in spec.columns)
    kept = "".join(f"{name}, " for name in carry)
    return f"""
    {_typed_cte(spec, source, kept)},
    verdict AS (
        SELECT {kept}ln, record, odd_quotes, {column_names},
               structure_error IS NULL AND ({any_bad}) AS bad_value
        , structure_error, {raw_names}
        FROM typed
    ),
    judged AS (
        SELECT {kept}ln, record, odd_quotes, {column_names},
               {_reject_column_sql(checks, "bad_value")} AS reject_column,
               {_reject_reason_sql(checks, "bad_value")} AS reject_reason
        FROM verdict
    )
    SELECT {kept}ln, {column_names}, reject_column, reject_reason, odd_quotes,
           CASE WHEN reject_reason IS NOT NULL THEN left(record, {RAW_RECORD_MAX_CHARS}) END
               AS record
    FROM judged
    """


def flagged_select(spec: RawTable, source: str) -> str:
    """`typed_select`'s rows with the reasons left out: DuckDB's loader, first statement.

    Each row gets its typed values and `needs_reason` (a structure error or a bad value);
    reject_column and reject_reason are NULL, and the delivered text (`record`,
    `structure_error`, `s_<col>`) is kept only for the rows that need a reason.
    `reject_reasons_update` then fills in the reasons of those rows, which a clean file
    has none of. The reason sentences are half of the typing SQL and DuckDB plans a
    statement in time proportional to its expressions (~15 ms of ~30 ms per file on the
    demo machine, 126 files a demo run), so a clean file never pays for them.
    """
    checks = _checks(spec)
    any_bad = " OR ".join(f"({condition})" for _, condition, _ in checks)
    column_names = ", ".join(c.name for c in spec.columns)
    kept_text = ", ".join(
        f"CASE WHEN needs_reason THEN {name} END AS {name}"
        for name in ("structure_error", *(f"s_{c.name}" for c in spec.columns))
    )
    return f"""
    {_typed_cte(spec, source, "")},
    flagged AS (
        SELECT *, structure_error IS NOT NULL OR {any_bad} AS needs_reason FROM typed
    )
    SELECT ln, {column_names}, CAST(NULL AS VARCHAR) AS reject_column,
           CAST(NULL AS VARCHAR) AS reject_reason, odd_quotes,
           CASE WHEN needs_reason THEN left(record, {RAW_RECORD_MAX_CHARS}) END AS record,
           needs_reason, {kept_text}
    FROM flagged
    """


def reject_reasons_update(spec: RawTable, table: str) -> str:
    """Fill in reject_column and reject_reason of the rows `flagged_select` marked, as
    `typed_select` computes them (the same expressions)."""
    checks = _checks(spec)
    # Among the rows that need a reason, a bad value is one without a structure error.
    bad_value = "structure_error IS NULL"
    return (
        f"UPDATE {table} SET reject_column = {_reject_column_sql(checks, bad_value)}, "
        f"reject_reason = {_reject_reason_sql(checks, bad_value)} WHERE needs_reason"
    )


def _typed_cte(spec: RawTable, source: str, kept: str) -> str:
    typed = ",\n".join(f"{_typed_expr(c)} AS {c.name}" for c in spec.columns)
    raw_names = ", ".join(f"s_{c.name}" for c in spec.columns)
    return f"""
    , typed AS (
        SELECT {kept}ln, record, odd_quotes, structure_error, {raw_names},
               {typed}
        FROM {source}
    )"""


def _checks(spec: RawTable) -> list[tuple[str, str, str]]:
    """(column, SQL true when the value makes the row bad, SQL of its problem sentence)."""
    checks = [(c.name, _is_bad_expr(c), _problem_expr(spec, c)) for c in spec.columns]
    checks += [(name, condition, reason) for name, (condition, reason) in _row_rules(spec).items()]
    return checks


def _reject_column_sql(checks: list[tuple[str, str, str]], bad_value: str) -> str:
    first_column = " ".join(f"WHEN {condition} THEN '{name}'" for name, condition, _ in checks)
    return f"CASE WHEN {bad_value} THEN CASE {first_column} END END"


def _reject_reason_sql(checks: list[tuple[str, str, str]], bad_value: str) -> str:
    reasons = ", ".join(
        f"CASE WHEN {condition} THEN {reason} END" for _, condition, reason in checks
    )
    return (
        f"CASE WHEN structure_error IS NOT NULL THEN structure_error "
        f"WHEN {bad_value} THEN concat_ws('; ', {reasons}) || '. {_FIX_VALUE}' END"
    )


def _is_bad_expr(column: Column) -> str:
    """True when the column's value makes the row unloadable (cheap: no strings built).

    Never NULL: every comparison on a value is guarded by a presence test, so the OR of
    all columns' conditions is a plain boolean. Text kept as delivered is never trimmed
    here (trimming copies every long string): a blank test looks at the first character
    and a format pattern allows the surrounding spaces itself.
    """
    s = f"s_{column.name}"
    violation = _domain_violation(column)
    if _kept_as_delivered(column):
        blank = f"{s} IS NULL OR {s} = '' OR (starts_with({s}, ' ') AND trim({s}) = '')"
        if column.required:
            return f"({blank})" + (f" OR ({violation})" if violation else "")
        return f"NOT ({blank}) AND ({violation})" if violation else "false"
    conditions = []
    if column.required:
        conditions.append(f"{column.name} IS NULL")
    elif column.type != "VARCHAR":
        conditions.append(f"{column.name} IS NULL AND NULLIF(trim({s}), '') IS NOT NULL")
    if violation:
        conditions.append(f"{column.name} IS NOT NULL AND {violation}")
    return " OR ".join(f"({c})" for c in conditions) or "false"


def _kept_as_delivered(column: Column) -> bool:
    """Text stored exactly as delivered (not trimmed, not lower-cased): most VARCHARs, JSON."""
    return column.type == "JSON" or (column.type == "VARCHAR" and not column.stored_lower_case)


def _present_value(column: Column) -> str:
    """SQL that is NULL exactly when the column has no value (absent, empty or blank)."""
    if column.type == "VARCHAR" and column.stored_lower_case:
        return column.name  # lower(NULLIF(trim(value), '')): already NULL when blank
    return f"NULLIF(trim(s_{column.name}), '')"


def _typed_expr(column: Column) -> str:
    s = f"s_{column.name}"
    t = f"NULLIF(trim({s}), '')"
    if _kept_as_delivered(column):
        return s
    if column.type == "VARCHAR":
        return f"lower({t})"
    if column.type == "TIMESTAMP":
        return f"timezone('UTC', TRY_CAST({t} AS TIMESTAMPTZ))"
    if column.type == "BOOLEAN":
        true_words = ", ".join(f"'{w}'" for w in _TRUE_WORDS)
        false_words = ", ".join(f"'{w}'" for w in _FALSE_WORDS)
        return (
            f"CASE WHEN lower({t}) IN ({true_words}) THEN true "
            f"WHEN lower({t}) IN ({false_words}) THEN false END"
        )
    if column.type == "BIGINT":
        return (
            f"CASE WHEN regexp_full_match({t}, '[+-]?[0-9]+(\\.0+)?') "
            f"THEN TRY_CAST({t} AS BIGINT) END"
        )
    raise ValueError(f"no typing rule for {column.type}")


def _domain_violation(column: Column) -> str | None:
    """SQL true when a present, typed value breaks the contract's domain rule, else None.

    Meaningful only for a present, typed value; `_is_bad_expr` adds the presence guard.
    """
    if column.allowed is not None:
        return f"{column.name} NOT IN ({', '.join(sql_literal(v) for v in column.allowed)})"
    if column.min_value is not None or column.max_value is not None:
        bounds = []
        if column.min_value is not None:
            bounds.append(f"{column.name} < {int(column.min_value)}")
        if column.max_value is not None:
            bounds.append(f"{column.name} > {int(column.max_value)}")
        return "(" + " OR ".join(bounds) + ")"
    if check := column.format_check:
        if check.lower_case:
            return f"NOT regexp_full_match({column.name}, {sql_literal(check.pattern)})"
        # Matched as delivered, surrounding spaces allowed: the same verdict as on
        # trim(value) (DuckDB's trim removes spaces only) without copying the string.
        pattern = f" *(?:{check.pattern}) *"
        return f"NOT regexp_full_match(s_{column.name}, {sql_literal(pattern)})"
    return None


def _problem_expr(spec: RawTable, column: Column) -> str:
    """SQL for the problem sentence of one column (NULL when the value is fine)."""
    s = f"s_{column.name}"
    label = _column_label(spec, column)
    # The value as delivered, quoted, with inner quotes doubled (chr(39) is ').
    shown = f"replace(left({s}, {VALUE_IN_REASON_MAX_CHARS}), chr(39), chr(39) || chr(39))"
    has_value = f"{sql_literal(label + ' has value ' + chr(39))} || {shown} || chr(39)"
    missing = sql_literal(f"required {label} is missing or empty") if column.required else "NULL"
    cases = [f"WHEN {_present_value(column)} IS NULL THEN {missing}"]
    if column.type in ("TIMESTAMP", "BOOLEAN", "BIGINT"):
        expected = sql_literal(f", which is not {_EXPECTED[column.type]}")
        cases.append(f"WHEN {column.name} IS NULL THEN {has_value} || {expected}")
    if violation := _domain_violation(column):
        cases.append(f"WHEN {violation} THEN {has_value} || {sql_literal(_domain_rule(column))}")
    return f"CASE {' '.join(cases)} END"


def _domain_rule(column: Column) -> str:
    """The end of a domain reject's sentence: what the contract allows instead."""
    if column.allowed is not None:
        return f", expected one of {', '.join(column.allowed)} (in any letter case)"
    if column.min_value is not None and column.max_value is not None:
        subject = column.meaning or "the value"
        return (
            f", but {subject} must be a whole number from {column.min_value} to {column.max_value}"
        )
    if column.max_value is not None:
        return f", but {column.meaning or 'the value'} must be at most {column.max_value}"
    if column.min_value is not None:
        subject = column.meaning or "the value"
        if column.min_value == 0:
            return f", but {subject} cannot be negative"
        return f", but {subject} must be at least {column.min_value}"
    if check := column.format_check:
        return f", which is not {check.expected}"
    raise ValueError(f"{column.name} has no domain rule")


def _row_rules(spec: RawTable) -> dict[str, tuple[str, str]]:
    """Rules across columns (docs/data-model.md, web_events): column -> (condition, reason)."""
    if spec.name != "web_events":
        return {}
    return {
        "anonymous_id": (
            "s_anonymous_id IS NULL AND s_user_id IS NULL",
            "'neither ''anonymousId'' nor ''userId'' is present; every event needs at least "
            "one of them'",
        ),
    }


def _column_label(spec: RawTable, column: Column) -> str:
    """How a reason names the column: the CSV column, or the JSON field (and its column)."""
    if spec.file_format == "csv":
        return f"column '{column.name}'"
    if column.source_name == column.name:
        return f"field '{column.name}'"
    return f"field '{column.source_name}' (column {column.name})"


def spark_typed_select(spec: RawTable, staged_text: str, carry: tuple[str, ...] = ()) -> str:
    """The same typing and reject rules as `typed_select`, as one Spark SQL query over a
    relation of staged text (`ln, record, odd_quotes, structure_error, s_<col>...`).

    One definition: the DuckDB SQL above is generated, then transpiled with sqlglot; the
    two places where the dialects mean different things are rewritten in the tree (see
    `_spark_meaning`), so a rule changed above changes on both engines.
    """
    import sqlglot

    duckdb_sql = (
        f"WITH counted AS (SELECT * FROM {staged_text})\n{typed_select(spec, 'counted', carry)}"
    )
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    return tree.transform(_spark_meaning).sql(dialect="spark")


def _spark_meaning(node):
    """DuckDB constructs whose Spark spelling sqlglot leaves wrong.

    - `regexp_full_match(v, p)`: Spark's RLIKE finds a match anywhere, so the pattern is
      anchored at both ends (`\\z`: the very end, also before a trailing newline).
    - `timezone('UTC', try_cast(v AS TIMESTAMPTZ))`: an instant (offset applied) as naive
      UTC. Spark's `try_cast(v AS TIMESTAMP_LTZ)` applies the offset in the session time
      zone (UTC, set by the caller) and `TIMESTAMP_NTZ` drops the zone, keeping UTC's
      clock. (LTZ named: a session with `spark.sql.timestampType=TIMESTAMP_NTZ`, as the
      pipeline's, reads a plain TIMESTAMP as NTZ and would ignore the offset; found by
      tests/ingestion/test_spark_reading.py.)
    - `try_cast(v AS BIGINT)`: DuckDB reads '12.0' as 12 (the rule admits `.0`), Spark
      gives NULL; through DECIMAL(38, 1) first, Spark gives 12 too (found by
      bench/spark_typing.py).
    """
    from sqlglot import exp

    if (
        isinstance(node, exp.TryCast)
        and node.to.this == exp.DataType.Type.BIGINT
        and not (isinstance(node.this, exp.TryCast))
    ):
        as_decimal = node.copy()
        as_decimal.set("to", exp.DataType.build("DECIMAL(38, 1)"))
        as_bigint = node.copy()
        as_bigint.set("this", as_decimal)
        return as_bigint

    if isinstance(node, exp.RegexpFullMatch):
        pattern = node.expression
        if not isinstance(pattern, exp.Literal):
            raise ValueError("a full-match pattern must be a literal to render for Spark")
        return exp.RegexpLike(
            this=node.this, expression=exp.Literal.string(f"^(?:{pattern.this})\\z")
        )
    if (
        isinstance(node, exp.Anonymous)
        and node.name.lower() == "timezone"
        and len(node.expressions) == 2
        and node.expressions[0].name.upper() == "UTC"
    ):
        instant = node.expressions[1]
        if isinstance(instant, exp.TryCast | exp.Cast):
            # TIMESTAMP_LTZ, not TIMESTAMP: under spark.sql.timestampType=TIMESTAMP_NTZ
            # (the pipeline's session) a plain TIMESTAMP would drop the offset unapplied.
            instant = instant.copy()
            instant.set("to", exp.DataType.build("TIMESTAMPLTZ"))
        return exp.Cast(this=instant, to=exp.DataType.build("TIMESTAMP_NTZ"))
    return node
