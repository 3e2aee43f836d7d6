"""One night of one incremental model alone: its incremental SELECT against a whole rebuild.

    nice .venv/bin/python bench/incremental_model_night.py MODEL NIGHT.duckdb PREVIOUS.duckdb [--repeat 3]

MODEL is `int_billing__customer_mrr_monthly`, `dim_customers`, `fct_email_events`,
`int_customer__email_metrics`, `int_billing__invoices` or `fct_invoices`. NIGHT is a warehouse after a night that rebuilt the model
whole (e.g. main's `bench/nightly.py --workdir`), PREVIOUS the warehouse of the night
before, with the model's snapshots if it keeps any (`dbt_incremental.mrr_monthly_*`,
`email_events_identities`, `invoices_*`, which this branch's build leaves). On a copy of NIGHT whose
model table and snapshots are PREVIOUS's (so: the state the night's model step started
from), and whose replaced-keys record holds what the model upstream replaced that night
(for the email and invoice models, derived from the two warehouses: `RECORDS`), this compiles the model both ways with dbt, times each SELECT (CPU seconds of the
process, so DuckDB's threads too) and writing its result into the file (the rebuild as a
new table, the incremental one as `replace_keys` applies it; each with a checkpoint), and
checks the table equals NIGHT's rebuilt one, every column. Writes
bench/results/incremental_model_night.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
DBT = Path(sys.executable).with_name("dbt")
# model -> (schema, its key, the removal marker, its snapshots in dbt_incremental)
MODELS = {
    "int_billing__customer_mrr_monthly": (
        "intermediate",
        "customer_id",
        "month_start",
        ("mrr_monthly_versions", "mrr_monthly_billing_identities", "mrr_monthly_as_of"),
    ),
    "dim_customers": ("marts", "customer_id", "n_source_records", ()),
    "fct_email_events": ("marts", "event_id", "delivered_dt", ("email_events_identities",)),
    "int_customer__email_metrics": ("intermediate", "customer_id", "n_email_contacts", ()),
    "int_billing__invoices": (
        "intermediate",
        "invoice_id",
        "status",
        ("invoices_billing_identities", "invoices_fx_rates"),
    ),
    "fct_invoices": ("marts", "invoice_id", "status", ()),
}


# The events stg_email__events replaced in the night (a bench night reloads nothing: the
# newest partition PREVIOUS holds and the night's new one, macros/incremental_delivery.sql)
def _replaced_by_staging(model: str, key: str) -> str:
    """The keys the incremental staging `model` replaced in the night: those of the newest
    partition PREVIOUS holds and after, before and after the night."""
    newest = f"(select max(delivered_dt) from previous.staging.{model})"
    return f"""
    select {key} from staging.{model} where delivered_dt >= {newest}
    union
    select {key} from previous.staging.{model} where delivered_dt >= {newest}
"""


def _identity_map(source_system: str, key: str) -> str:
    """NIGHT's identity map of one source system, the record id named `key` (the models'
    `identity_map_of`)."""
    return (
        f"(select source_record_id as {key}, customer_id from staging.stg_identity__customer_map "
        f"where source_system = '{source_system}')"
    )


def _changed_since_previous(today: str, snapshot: str, key: str, columns: list[str]) -> str:
    """The keys of `today` added, removed or with another value in `columns` since PREVIOUS's
    run-state `snapshot` (the models' `keys_changed_since`)."""
    differ = " or ".join(f"today.{c} is distinct from held.{c}" for c in columns)
    return f"""select coalesce(today.{key}, held.{key}) as {key}
        from {today} as today
        full outer join previous.dbt_incremental.{snapshot} as held
            on held.{key} = today.{key}
        where today.{key} is null or held.{key} is null or {differ}"""


_EMAIL_REMAPPED = _changed_since_previous(
    _identity_map("email", "contact_id"), "email_events_identities", "contact_id", ["customer_id"]
)
_BILLING_REMAPPED = _changed_since_previous(
    _identity_map("billing", "source_record_id"),
    "invoices_billing_identities",
    "source_record_id",
    ["customer_id"],
)
_FX_RERATED = _changed_since_previous(
    "staging.fx_rates_to_usd", "invoices_fx_rates", "currency", ["usd_per_unit"]
)
_EMAIL_EVENTS_REJOINED = _replaced_by_staging("stg_email__events", "event_id")
# ... and the customers of the fct_email_events rows the night replaced: those events and
# the events of every contact remapped since PREVIOUS (macros/email_events.sql), old and new
_EMAIL_CUSTOMERS_REPLACED = f"""
    with remapped as (
        {_EMAIL_REMAPPED}
    ),
    replaced as (
        {_EMAIL_EVENTS_REJOINED}
        union
        select event_id from previous.marts.fct_email_events
        where contact_id in (select contact_id from remapped)
    )
    select customer_id from previous.marts.fct_email_events
    where event_id in (select event_id from replaced) and customer_id is not null
    union
    select customer_id from marts.fct_email_events
    where event_id in (select event_id from replaced) and customer_id is not null
"""
# The invoices stg_billing__invoices replaced in the night, and those int_billing__invoices
# replaced: those and the invoices of billing customers remapped or currencies re-rated
# since PREVIOUS (macros/billing_invoices.sql)
_INVOICES_REJOINED = _replaced_by_staging("stg_billing__invoices", "invoice_id")
_INVOICES_REPLACED = f"""
    {_INVOICES_REJOINED}
    union
    select invoice_id from previous.intermediate.int_billing__invoices
    where billing_customer_id in (
        {_BILLING_REMAPPED}
    )
        or currency in (
            {_FX_RERATED}
        )
"""
# model -> the replaced-keys records (dbt_incremental.<name>, key) its run reads, and the
# keys they hold at the start of its step (SQL over NIGHT, PREVIOUS attached as `previous`)
RECORDS = {
    "fct_email_events": (
        ("email_events_to_rejoin", "event_id", _EMAIL_EVENTS_REJOINED),
        (
            "email_metrics_customers_to_regroup",
            "customer_id",
            "select null as customer_id where false",
        ),
    ),
    "int_customer__email_metrics": (
        ("email_metrics_customers_to_regroup", "customer_id", _EMAIL_CUSTOMERS_REPLACED),
    ),
    "int_billing__invoices": (
        ("invoices_to_rejoin", "invoice_id", _INVOICES_REJOINED),
        ("fct_invoices_to_regroup", "invoice_id", "select null as invoice_id where false"),
    ),
    "fct_invoices": (("fct_invoices_to_regroup", "invoice_id", _INVOICES_REPLACED),),
}


def _compiled(model: str, warehouse: Path, target: Path, *flags: str) -> str:
    env = {**os.environ, "CDP_WAREHOUSE": str(warehouse)}
    schema = MODELS[model][0]
    subprocess.run(
        [str(DBT), "compile", "--select", model, "--target-path", str(target), *flags],
        cwd=REPO / "dbt_project",
        env=env,
        check=True,
        capture_output=True,
    )
    return (target / "compiled" / "cdp" / "models" / schema / f"{model}.sql").read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("night", type=Path)
    parser.add_argument("previous", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    schema, key, marker, snapshots = MODELS[args.model]
    table = f"{schema}.{args.model}"
    scratch = Path(tempfile.mkdtemp(prefix="mrr-night-", dir=args.night.parent))
    try:
        warehouse = scratch / "warehouse.duckdb"  # the stem names the dbt database
        shutil.copyfile(args.night, warehouse)
        con = duckdb.connect(str(warehouse))
        con.execute(f"attach '{args.previous}' as previous (read_only)")
        con.execute(f"create table main.rebuilt as select * from {table}")
        con.execute(f"create or replace table {table} as select * from previous.{table}")
        con.execute("create schema if not exists dbt_incremental")
        for name in snapshots:
            con.execute(
                f"create or replace table dbt_incremental.{name} as "
                f"select * from previous.dbt_incremental.{name}"
            )
        for name, record_key, keys in RECORDS.get(args.model, ()):
            con.execute(
                f"create or replace table dbt_incremental.{name} as "
                f"select cast({record_key} as varchar) as {record_key} from ({keys}) as k"
            )
        con.execute("detach previous")
        con.close()
        queries = {
            "incremental": _compiled(args.model, warehouse, scratch / "incremental"),
            "rebuild": _compiled(args.model, warehouse, scratch / "rebuild", "--full-refresh"),
        }
        con = duckdb.connect(str(warehouse))
        seconds: dict[str, list[list[float]]] = {name: [] for name in queries}
        for _ in range(args.repeat):
            for name, sql in queries.items():
                wall, cpu = time.perf_counter(), time.process_time()
                con.execute(f"create or replace temp table out_{name} as {sql}")
                seconds[name].append(
                    [round(time.perf_counter() - wall, 3), round(time.process_time() - cpu, 3)]
                )
        found = con.execute(
            f"select count(distinct {key}), count(*) from out_incremental"
        ).fetchone()
        customers = con.execute(f"select count(distinct {key}) from out_rebuild").fetchone()
        # writing each into the file: the rebuild's table, the incremental's swap of keys
        wall, cpu = time.perf_counter(), time.process_time()
        con.execute("create table main.written as select * from out_rebuild")
        con.execute("checkpoint")
        seconds["rebuild_write"] = [
            [round(time.perf_counter() - wall, 3), round(time.process_time() - cpu, 3)]
        ]
        wall, cpu = time.perf_counter(), time.process_time()
        con.execute(f"delete from {table} where {key} in (select {key} from out_incremental)")
        con.execute(f"insert into {table} select * from out_incremental where {marker} is not null")
        con.execute("checkpoint")
        seconds["incremental_write"] = [
            [round(time.perf_counter() - wall, 3), round(time.process_time() - cpu, 3)]
        ]
        differences = [
            con.execute(f"select count(*) from ({left} except all {right})").fetchone()[0]
            for left, right in (
                (f"select * from {table}", "select * from main.rebuilt"),
                ("select * from main.rebuilt", f"select * from {table}"),
            )
        ]
        rows = con.execute("select count(*) from main.rebuilt").fetchone()[0]
        con.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = {
        "model": args.model,
        "night": str(args.night),
        "previous": str(args.previous),
        "rows": rows,
        "keys": customers[0],
        "keys_recomputed": found[0],
        "rows_returned": found[1],
        "select_wall_cpu_seconds": seconds,
        "rows_differing_from_rebuild": differences,
        "load_average": list(os.getloadavg()),
    }
    print(json.dumps(result, indent=2))
    (REPO / "bench" / "results" / "incremental_model_night.json").write_text(
        json.dumps(result, indent=2) + "\n"
    )
    if differences != [0, 0]:
        raise SystemExit(f"incremental != rebuild: {differences} rows differ")


if __name__ == "__main__":
    main()
