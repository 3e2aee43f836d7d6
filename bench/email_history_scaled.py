"""A longer email history for bench/incremental_model_night.py: copies of two warehouses
(a night and the one before) whose email events are repeated back in time.

    nice .venv/bin/python bench/email_history_scaled.py NIGHT.duckdb PREVIOUS.duckdb OUT_DIR --copies 26

Each copy k of every email event delivered before PREVIOUS's newest delivery gets the id
`<event_id>~h<k>` and a delivery (and occurrence) 14 x k days earlier, in both warehouses'
stg_email__events and fct_email_events (joined with each warehouse's own email mapping, as
the model joins): a zone of the same customers with 14 x (copies + 1) days of email history,
whose night changes exactly what the real night changed. The per-customer email metrics of
both are then rebuilt with dbt (`--full-refresh` of int_customer__email_metrics alone), so
NIGHT's is the rebuild the incremental run must equal. Writes OUT_DIR/night/warehouse.duckdb
and OUT_DIR/previous/warehouse.duckdb.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
DBT = Path(sys.executable).with_name("dbt")


def _lengthen(warehouse: Path, newest_held: str, copies: int) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(
            "create temp table older as select * from staging.stg_email__events "
            f"where delivered_dt < date '{newest_held}'"
        )
        con.execute(
            "create temp table copies as select * replace ("
            "event_id || '~h' || k as event_id, occurred_at - k * interval 14 day as occurred_at, "
            "delivered_dt - k * interval 14 day as delivered_dt) "
            f"from older, range(1, {copies + 1}) as r(k)"
        )
        con.execute("alter table copies drop column k")
        con.execute("insert into staging.stg_email__events by name select * from copies")
        con.execute(
            "insert into marts.fct_email_events by name "
            "select copies.event_id, copies.contact_id, identities.customer_id, copies.campaign_id, "
            "copies.campaign_name, copies.event_type, copies.occurred_at, "
            "cast(copies.occurred_at as date) as occurred_date, copies.url, copies.delivered_dt "
            "from copies left join staging.stg_identity__customer_map as identities "
            "on identities.source_system = 'email' and identities.source_record_id = copies.contact_id"
        )
        con.execute("checkpoint")
    finally:
        con.close()
    subprocess.run(
        [
            str(DBT),
            "run",
            "--select",
            "int_customer__email_metrics",
            "--full-refresh",
            "--target-path",
            str(warehouse.parent / "target"),
        ],
        cwd=REPO / "dbt_project",
        env={**os.environ, "CDP_WAREHOUSE": str(warehouse)},
        check=True,
        capture_output=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("night", type=Path)
    parser.add_argument("previous", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--copies", type=int, default=26)
    args = parser.parse_args()
    con = duckdb.connect(str(args.previous), read_only=True)
    (newest_held,) = con.execute(
        "select max(delivered_dt) from staging.stg_email__events"
    ).fetchone()
    con.close()
    for name, source in (("night", args.night), ("previous", args.previous)):
        target = args.out / name / "warehouse.duckdb"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        _lengthen(target, newest_held.isoformat(), args.copies)
        con = duckdb.connect(str(target), read_only=True)
        print(
            name,
            con.execute("select count(*) from marts.fct_email_events").fetchone()[0],
            "email events",
        )
        con.close()


if __name__ == "__main__":
    main()
