"""explain_customer: why a golden customer holds the records it holds (for `cdp explain`)."""

from __future__ import annotations

import duckdb

from warehouse_engine.catalog import table_exists


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[tuple]:
    return con.execute(sql, params).fetchall()


LEVEL_NAMES = {-1: "missing", 0: "disagree"}


def _field_weights(con: duckdb.DuckDBPyConnection, record: str, via: str) -> list[str]:
    """The per-field agreement levels and log2 Bayes factors behind one probabilistic link."""
    if not table_exists(con, "identity.match_evidence"):
        return []
    rows = _rows(
        con,
        "select comparison, level, log2_bayes_factor, prior_weight from identity.match_evidence "
        "where (record_a = ? and record_b = ?) or (record_a = ? and record_b = ?)",
        [record, via, via, record],
    )
    if not rows:
        return []
    prior = rows[0][3]
    parts = [
        f"{name} {LEVEL_NAMES.get(level, f'agrees (level {level})')} {weight:+.1f}"
        for name, level, weight, _ in rows
    ]
    return [f"      weights: prior {prior:+.1f}; " + "; ".join(parts)]


def explain_customer(con: duckdb.DuckDBPyConnection, customer_id: str) -> str:
    """Source records, the rule or match weight that joined each, refused merges and merge history."""
    golden = _rows(
        con,
        "select full_name, email, phone, address_line1, address_city, address_postal_code, address_country, "
        "n_source_records, name_source_record, email_source_record, phone_source_record, address_source_record, "
        "created_at from identity.golden_customers where customer_id = ?",
        [customer_id],
    )
    retired = _rows(
        con,
        "select surviving_customer_id, merged_at from identity.merge_log where retired_customer_id = ?",
        [customer_id],
    )
    if not golden:
        if retired:
            survivor, merged_at = retired[0]
            return f"{customer_id} was merged into {survivor} at {merged_at}; run `cdp explain {survivor}`."
        return f"{customer_id}: no such customer in identity.golden_customers (check the id, or run the pipeline)."
    (
        name,
        email,
        phone,
        line1,
        city,
        postcode,
        country,
        n_records,
        name_src,
        email_src,
        phone_src,
        address_src,
        created,
    ) = golden[0]
    lines = [
        f"Customer {customer_id} (since {created}): {n_records} source record(s)",
        f"  name     {name or '-'}  <- {name_src or '-'}",
        f"  email    {email or '-'}  <- {email_src or '-'}",
        f"  phone    {phone or '-'}  <- {phone_src or '-'}",
        f"  address  {', '.join(v for v in (line1, city, postcode, country) if v) or '-'}  <- {address_src or '-'}",
        "",
        "Source records and how each joined:",
    ]
    records = _rows(
        con,
        "select m.source_system || ':' || m.source_record_id, m.match_rule, m.match_weight, m.matched_record, "
        "r.email, r.phone_e164, r.first_name, r.last_name, r.user_id, r.blocked_values "
        "from identity.customer_map m left join identity.identity_records r "
        "using (source_system, source_record_id) where m.customer_id = ? order by m.first_assigned_at, 1",
        [customer_id],
    )
    for key, rule, weight, via, email_value, phone_value, first, last, user_id, blocked in records:
        how = (
            "the customer's first record"
            if via is None and rule != "singleton"
            else "on its own (no link)"
            if rule == "singleton"
            else f"linked to {via} by rule {rule}"
            + (f" (match weight {weight:.1f})" if weight is not None else "")
        )
        facts = ", ".join(
            f"{label}={value}"
            for label, value in (
                ("email", email_value),
                ("phone", phone_value),
                ("name", " ".join(v for v in (first, last) if v)),
                ("user_id", user_id),
            )
            if value
        )
        lines.append(
            f"  {key}: {how}. [{facts}]" + (f" Ignored junk values: {blocked}." if blocked else "")
        )
        if rule == "probabilistic" and via is not None:
            lines += _field_weights(con, key, via)
    refused = _rows(
        con,
        "select customer_a, customer_b, record_a, record_b, guard, detail, match_weight from identity.refused_merges "
        "where customer_a = ? or customer_b = ? order by refused_at, record_a",
        [customer_id, customer_id],
    )
    lines += shared_value_lines(con, customer_id)
    lines += ["", f"Refused merges ({len(refused)}):"]
    for a, b, record_a, record_b, guard, detail, _weight in refused:
        other = b if a == customer_id else a
        lines.append(f"  with {other}: {record_a} ~ {record_b} refused by {guard}: {detail}")
    history = _rows(
        con,
        "select merged_at, retired_customer_id, record_a, record_b, match_rule, match_weight from identity.merge_log "
        "where surviving_customer_id = ? order by merged_at",
        [customer_id],
    )
    lines += ["", f"Merge history ({len(history)}):"]
    for merged_at, retired_id, record_a, record_b, rule, weight in history:
        lines.append(
            f"  {merged_at}: absorbed {retired_id} via {record_a} ~ {record_b} ({rule}"
            + (f", weight {weight:.1f})" if weight is not None else ")")
        )
    return "\n".join(lines)


def explain_model(con: duckdb.DuckDBPyConnection) -> str:
    """The last run's Fellegi-Sunter model: per comparison level, m = P(level | same person),
    u = P(level | different people) and the match weight log2(m/u) it adds to a pair."""
    if not table_exists(con, "identity.model_parameters"):
        return "identity.model_parameters does not exist yet: run identity resolution first (`cdp run`)."
    rows = _rows(
        con,
        "select comparison, level, level_label, m, u, log2_bayes_factor, m_source, prior_weight, "
        "match_weight_threshold from identity.model_parameters order by position, level desc",
        [],
    )
    if not rows:
        return "identity.model_parameters is empty: the last run had no comparisons."
    prior, threshold = rows[0][7], rows[0][8]
    lines = [
        "Match weight of a pair = prior + the weight of each comparison's level "
        "(a missing value adds 0); pairs at or above the threshold are linked.",
        f"  prior (log2 odds two random records are one person) {prior:+.2f}",
        f"  threshold {threshold:+.2f}",
        "",
        f"  {'comparison':<12} {'level':<40} {'m':>8} {'u':>10} {'weight':>8}",
    ]
    current = None
    for comparison, _level, label, m, u, weight, source, *_ in rows:
        if comparison != current:
            if current is not None:
                lines.append("")
            current = comparison
            lines.append(f"  {comparison}  (m from {source})")
        lines.append(f"  {'':<12} {label:<40} {m:>8.4f} {u:>10.6f} {weight:>+8.2f}")
    return "\n".join(lines)


def shared_value_lines(con: duckdb.DuckDBPyConnection, customer_id: str) -> list[str]:
    """The customer's values that were judged shared by several people, with why."""
    if not table_exists(con, "identity.shared_values") or not table_exists(
        con, "identity.identity_records"
    ):
        return []
    rows = _rows(
        con,
        "select r.source_system || ':' || r.source_record_id, r.shared_values "
        "from identity.identity_records r where r.customer_id = ? and r.shared_values is not null "
        "order by 1",
        [customer_id],
    )
    if not rows:
        return []
    lines = ["", f"Shared values, not used as keys ({len(rows)} record(s) carry one):"]
    for key, shared in rows:
        lines.append(f"  {key}: {shared}")
    reasons = _rows(
        con,
        "select distinct s.identifier, s.value_masked, s.n_records, s.reason "
        "from identity.shared_values s join identity.identity_records r on s.value_hash in ("
        "md5(r.email_key), md5(r.phone_e164), md5(r.user_id), "
        "md5(r.address_line1 || ' ' || r.address_postal_code)) "
        "where r.customer_id = ? order by 1, 2",
        [customer_id],
    )
    for identifier, masked, n_records, reason in reasons:
        lines.append(f"  {identifier} {masked}: on {n_records} records; {reason}")
    return lines
