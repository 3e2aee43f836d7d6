"""`cdp`: the command line for people (and cron) who do not open the UI.

    cdp generate --out DIR --customers N --days D --seed S [--bad]
    cdp run [--landing DIR] [--warehouse PATH] [--date YYYY-MM-DD | --from D --to D] [--no-wait]
            [--allow-shrink] [--full-identity] [--full-refresh] [-v]
    cdp explain CUSTOMER_ID [--warehouse PATH]
    cdp explain --model [--warehouse PATH]
    cdp evaluate --truth FILE [--warehouse PATH]
    cdp identity link|unlink RECORD RECORD --reason TEXT [--author NAME]
    cdp identity block-value email|phone|user_id VALUE --reason TEXT [--author NAME]
    cdp identity revoke OVERRIDE_ID --reason TEXT
    cdp identity overrides [--all]

    cdp forget (--email X | --phone X | --customer ID) [--landing DIR] [--warehouse PATH]
    cdp spark-build [--warehouse PATH] [--select SELECTOR]

`CDP_ENGINE=spark` (docs/spark.md): `cdp run` builds every dbt step on Spark and hands the
Python steps' tables to it as Parquet; `cdp spark-build` builds the dbt models on Spark
from what an earlier DuckDB `cdp run` wrote.

`cdp run` executes the same Dagster job as the nightly schedule, in this process, on
the Dagster instance in $DAGSTER_HOME when it is set (so the run shows in the UI).
It takes the warehouse's run lock first (waiting for a run started elsewhere, or failing
at once with --no-wait) and alerts CDP_ALERT_WEBHOOK when it fails, like the UI's runs.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import getpass
import os
import shutil
import sys
import time
import uuid
from datetime import date
from pathlib import Path

from orchestration.settings import DEFAULTS, apply_environment_defaults


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit status 1."""


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; use YYYY-MM-DD") from None


def _set_paths(args: argparse.Namespace) -> None:
    if getattr(args, "landing", None):
        os.environ["CDP_LANDING_DIR"] = str(Path(args.landing).expanduser().resolve())
    if getattr(args, "warehouse", None):
        os.environ["CDP_WAREHOUSE"] = str(Path(args.warehouse).expanduser().resolve())
    apply_environment_defaults()


def _short_path(path: str | Path) -> str:
    """A path relative to the working directory when it is under it (shorter lines)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def landing_days(landing_root: Path) -> list[date]:
    days = set()
    for day_dir in landing_root.glob("*/*/dt=*"):
        try:
            days.add(date.fromisoformat(day_dir.name[3:]))
        except ValueError:
            continue
    return sorted(days)


def _run_window(args: argparse.Namespace) -> tuple[date, date]:
    from orchestration.partitions import daily_partitions

    landing_root = Path(os.environ["CDP_LANDING_DIR"])
    if not landing_root.is_dir():
        raise CliError(
            f"landing zone {landing_root} does not exist; generate demo data with "
            f"`cdp generate --out {landing_root}` or pass --landing DIR"
        )
    if args.date:
        first = last = args.date
    elif args.date_from or args.date_to:
        days = landing_days(landing_root)
        first = args.date_from or (days[0] if days else None)
        last = args.date_to or (days[-1] if days else None)
        if first is None or last is None:
            raise CliError(
                f"no dt=YYYY-MM-DD folders under {landing_root}; pass both --from and --to"
            )
        if first > last:
            raise CliError(f"--from {first} is after --to {last}")
    else:
        days = landing_days(landing_root)
        if not days:
            raise CliError(
                f"no dt=YYYY-MM-DD folders under {landing_root}; check CDP_LANDING_DIR or pass --date"
            )
        first, last = days[0], days[-1]
    start = daily_partitions.start.date()
    if first < start:
        raise CliError(
            f"landing day {first} is before the first partition {start}; "
            f"set CDP_PARTITIONS_START={first} (or earlier) and run again"
        )
    last_partition = date.fromisoformat(daily_partitions.get_last_partition_key())
    if last > last_partition:
        raise CliError(f"landing day {last} is in the future (last partition is {last_partition})")
    return first, last


def _without_exception_class(message: str) -> str:
    """`dagster._core.definitions.events.Failure: what happened` -> `what happened`."""
    head, sep, rest = message.partition(": ")
    return rest if sep and "." in head and " " not in head else message


def _first_failure(result) -> str:
    for event in result.all_events:
        if (
            event.event_type_value in ("STEP_FAILURE", "RUN_FAILURE", "PIPELINE_FAILURE")
            and event.event_specific_data
        ):
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                message = _without_exception_class(error.message).strip().splitlines()
                step = event.step_key or "run"
                text = next((ln for ln in message if ln.strip()), "unknown error")
                # A dg.Failure carries our own one-paragraph description; prefer it.
                desc = getattr(getattr(error, "cause", None), "message", None)
                desc = _without_exception_class(desc) if desc else desc
                reason = " ".join((desc or text).split())
                if len(reason) > 600:
                    reason = reason[:600] + " … (full log: make ui, run " + result.run_id[:8] + ")"
                return f"{step}: {reason}"
    for event in result.all_events:
        if event.event_type_value in ("RUN_FAILURE", "PIPELINE_FAILURE"):
            return event.message or "run failed"
    return "run failed (see the Dagster UI for the event log)"


def _alert_cli_failure(instance, run_id: str, tags: dict, message: str) -> None:
    """The same alert as the failure sensor's, for a `cdp run` (with or without DAGSTER_HOME)."""
    from orchestration.alerts import (
        ALERT_ATTEMPTS_TAG,
        ALERT_TAG,
        AlertDeliveryError,
        deliver_alert,
        failure_payload,
        webhook_from_env,
    )
    from orchestration.automation import run_partition
    from orchestration.resources import PIPELINE_JOB_NAME

    webhook = webhook_from_env()
    if not webhook:
        return
    payload = failure_payload(
        run_id=run_id,
        job=PIPELINE_JOB_NAME,
        partition=run_partition(tags),
        message=message,
        trigger=tags.get("cdp/trigger"),
    )
    try:
        deliver_alert(webhook, payload)
        outcome = "sent"
        print(f"cdp run: alert sent for run {run_id}", file=sys.stderr)
    except AlertDeliveryError as exc:
        outcome = "failed"
        print(f"cdp run: alert for failed run {run_id} not delivered: {exc}", file=sys.stderr)
    if instance is not None and instance.get_run_by_id(run_id) is not None:
        # The alert_retry sensor re-sends failed ones when the Dagster daemon is running.
        instance.add_run_tags(run_id, {ALERT_TAG: outcome, ALERT_ATTEMPTS_TAG: "1"})


def _engine_settings(args: argparse.Namespace):
    from orchestration.settings import engine_settings
    from warehouse_engine.settings import EngineSettingError

    try:
        return engine_settings()
    except EngineSettingError as exc:
        raise CliError(str(exc)) from None


def _check_environment() -> None:
    from orchestration.settings import environment_problems

    problems = environment_problems()
    if len(problems) == 1:
        raise CliError(f"{problems[0]}; nothing was run")
    if problems:
        raise CliError(
            f"{len(problems)} settings need fixing before a run (nothing was run):\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def cmd_run(args: argparse.Namespace) -> int:
    from orchestration.file_modes import apply_private_umask
    from orchestration.run_lock import RunLock, WarehouseBusy, lock_timeout_s

    apply_private_umask()
    _set_paths(args)
    _check_environment()
    engine = _engine_settings(args)
    if engine.is_spark and not engine.spark_remote and not shutil.which("java"):
        raise CliError(
            "CDP_ENGINE=spark runs a local Spark, which needs Java 17 "
            "(apt-get install -y openjdk-17-jre-headless), or set CDP_SPARK_REMOTE=sc://host:15002"
        )
    started = time.monotonic()
    first, last = _run_window(args)
    if first == last:
        tags = {"dagster/partition": first.isoformat()}
        kwargs = {"partition_key": first.isoformat()}
    else:
        tags = {
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        }
        kwargs = {}
    tags["cdp/trigger"] = "cli"
    run_id = str(uuid.uuid4())
    print(
        f"cdp run: {first}"
        + (f" .. {last}" if last != first else "")
        + f" -> {_short_path(os.environ['CDP_WAREHOUSE'])} (run {run_id[:8]})"
        + (f"; dbt on {engine.describe()}" if engine.is_spark else ""),
        flush=True,
    )
    # The run lock is taken here, before Dagster starts, under the id the run will have:
    # the run's own resource then re-enters it, and a busy warehouse is reported at once.
    run_lock = RunLock(Path(os.environ["CDP_WAREHOUSE"]))
    try:
        timeout_s = 0.0 if args.no_wait else lock_timeout_s()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        run_lock.acquire(
            run_id,
            timeout_s=timeout_s,
            on_wait=lambda message: print(f"cdp run: {message}", file=sys.stderr, flush=True),
        )
    except WarehouseBusy as exc:
        _alert_cli_failure(None, run_id, tags, f"not started: {exc}")
        raise CliError(str(exc)) from None
    try:
        return _execute_pipeline(args, run_id, tags, kwargs, started)
    finally:
        run_lock.release(run_id)


def _execute_pipeline(args, run_id: str, tags: dict, kwargs: dict, started: float) -> int:
    from orchestration.run_console import RunConsole, run_log_path, step_plan
    from orchestration.run_summary import print_summary

    console = RunConsole(run_log_path(Path(os.environ["CDP_WAREHOUSE"]), run_id), args.verbose)
    # Everything the run prints (Dagster's event log, dbt's output, library warnings) goes
    # to the log file; the terminal gets one line per stage (and everything with -v).
    with console:
        # Only in the `cdp` process itself: a caller's objects (a test session's) and its
        # collector are not ours to pin or pause.
        pinned = getattr(args, "console_script", False)
        if pinned:
            # Loading the code location creates a few million objects that live until the
            # process ends, and next to no garbage: the collections it would trigger (six
            # full ones in a demo run, each walking everything loaded so far, ~1.5 CPU s)
            # find nothing to free. The collector resumes once it is loaded and frozen.
            gc.disable()
        try:
            import dagster as dg

            # The code location declares its checks without GX; this run validates suites,
            # so GX is imported here, with the rest of what lives until the process ends
            # and is frozen below, not during the first quality step (+0.9 CPU s of
            # collections in a demo run when it was).
            import quality.runner  # noqa: F401
            from orchestration.definitions import defs

            job = defs.resolve_job_def("cdp_pipeline")
            console.set_plan(step_plan(defs))
            instance = (
                dg.DagsterInstance.get()
                if os.environ.get("DAGSTER_HOME")
                else dg.DagsterInstance.ephemeral()
            )
            instance.add_event_listener(run_id, console.on_event)
            slow_log = stock_event_log_note(instance)
            if slow_log:
                console.warnings.append(slow_log)
        finally:
            if pinned:
                # The code location just loaded (Dagster, dbt, GX, pandas: a few million
                # objects) lives until the process ends; without this, every full
                # collection during the run walks all of it again (~10 of them in a demo
                # run, several CPU seconds).
                gc.freeze()
                # A young generation of 10,000 objects rather than 700: most of what a
                # step allocates (events, dbt's and GX's per-node objects) dies before it
                # is collected then, instead of being promoted and walked again by the
                # older generations' collections (~2x fewer GC CPU seconds in a demo run).
                gc.set_threshold(10_000, 10, 10)
                gc.enable()
        run_config = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}
        if args.allow_shrink:
            from orchestration.assets.ingestion import allow_shrink_run_config

            run_config["ops"] = allow_shrink_run_config()
        if getattr(args, "full_identity", False):
            run_config.setdefault("ops", {})["resolve_identities"] = {
                "config": {"full_identity": True}
            }
        if getattr(args, "full_refresh", False):
            from orchestration.assets.dbt import full_refresh_run_config

            for op, op_config in full_refresh_run_config().items():
                run_config.setdefault("ops", {})[op] = op_config
        result = job.execute_in_process(
            run_config=run_config,
            instance=instance,
            tags=tags,
            run_id=run_id,
            raise_on_error=False,
            **kwargs,
        )
    elapsed = time.monotonic() - started
    try:
        print_summary(result, elapsed, notes=console.notes(), log_path=console.log_path)
        if not result.success:
            reason = _first_failure(result)
            print(f"cdp run failed: {reason}", file=sys.stderr)
            _alert_cli_failure(
                instance if os.environ.get("DAGSTER_HOME") else None, run_id, tags, reason
            )
            return 1
        return 0
    finally:
        # Closes the instance's databases (their SQLite write-ahead logs are folded in).
        instance.dispose()


def stock_event_log_note(instance) -> str | None:
    """A note when the instance stores events in Dagster's stock SQLite event log rather
    than the pooled one orchestration/dagster.yaml configures (a dagster.yaml of the
    user's own without that block): the run works, but every event costs a new database
    connection and commit."""
    from dagster._core.storage.event_log import SqliteEventLogStorage

    if type(instance.event_log_storage) is not SqliteEventLogStorage:
        return None
    return (
        "slow event log: $DAGSTER_HOME/dagster.yaml has no event_log_storage block; "
        "copy it from orchestration/dagster.yaml for faster runs"
    )


def _read_only_connection():
    import duckdb

    path = Path(os.environ["CDP_WAREHOUSE"])
    if not path.exists():
        raise CliError(
            f"warehouse {path} does not exist yet; run `cdp run` first or pass --warehouse"
        )
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        raise CliError(
            f"cannot open {path} while a run is writing it ({exc}); try again when it finishes"
        ) from None


def cmd_explain(args: argparse.Namespace) -> int:
    _set_paths(args)
    from identity.explain import explain_customer, explain_model

    if bool(args.model) == bool(args.customer_id):
        raise CliError("give either a CUSTOMER_ID or --model")
    with _read_only_connection() as con:
        print(explain_model(con) if args.model else explain_customer(con, args.customer_id))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    _set_paths(args)
    from identity.evaluate import evaluate_against_truth

    truth = Path(args.truth)
    if not truth.is_file():
        raise CliError(
            f"truth file {truth} not found; `cdp generate` writes one as <out>/truth.csv"
        )
    with _read_only_connection() as con:
        print(evaluate_against_truth(con, truth).format())
    return 0


def _login_name() -> str:
    """Who runs the command, for an override's audit trail: $LOGNAME, $USER or the OS's
    account name (a container's root has no $USER); "" when none is known."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # a uid without a passwd entry and no variable set
        return ""


def cmd_identity(args: argparse.Namespace) -> int:
    """Steward overrides: written to identity.overrides and the reviewable CSV together,
    under the warehouse's run lock (a run in progress would replace the table)."""
    import duckdb

    from identity.overrides import (
        LINK,
        REVOKE,
        UNLINK,
        OverrideError,
        default_overrides_file,
        format_overrides,
        new_override,
        record_override,
        synchronise,
    )
    from orchestration.run_lock import RunLock, WarehouseBusy, bump_generation

    _set_paths(args)
    warehouse = Path(os.environ["CDP_WAREHOUSE"])
    path = Path(args.overrides_file) if args.overrides_file else default_overrides_file(warehouse)
    if not warehouse.exists():
        raise CliError(
            f"warehouse {warehouse} does not exist yet; run `cdp run` first or pass --warehouse"
        )
    author = getattr(args, "author", None) or _login_name()
    try:
        if args.action == "overrides":
            row = None
        elif args.action in (LINK, UNLINK):
            row = new_override(args.action, author, args.reason, args.record_a, args.record_b)
        elif args.action == "block-value":
            row = new_override(
                "block", author, args.reason, value_kind=args.value_kind, value=args.value
            )
        else:
            row = new_override(REVOKE, author, args.reason, record_a=args.override_id)
    except OverrideError as exc:
        raise CliError(str(exc)) from None
    owner = f"cdp-identity-{uuid.uuid4()}"
    lock = RunLock(warehouse)
    try:
        lock.acquire(owner, timeout_s=0.0)
    except WarehouseBusy as exc:
        raise CliError(f"{exc}; try again when it finishes") from None
    try:
        with duckdb.connect(str(warehouse)) as con:
            try:
                rows = synchronise(con, path) if row is None else record_override(con, path, row)
            except OverrideError as exc:
                raise CliError(str(exc)) from None
        bump_generation(warehouse, owner)
    finally:
        lock.release(owner)
    if row is None:
        print(format_overrides(rows, include_revoked=args.all))
    else:
        print(
            f"cdp identity: {row['kind']} recorded as {row['override_id']} in identity.overrides "
            f"and {path}; the next run applies it"
        )
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    """File an erasure request the way a source would: a file in privacy/requests."""
    _set_paths(args)
    from privacy.requests import ForgetError, customer_identifiers, file_erasure_request

    email, phone = args.email, args.phone
    if args.customer:
        with _read_only_connection() as con:
            try:
                email, phone = customer_identifiers(con, args.customer)
            except ForgetError as exc:
                raise CliError(str(exc)) from None
    try:
        request_id, path = file_erasure_request(
            Path(os.environ["CDP_LANDING_DIR"]), email=email, phone=phone
        )
    except ForgetError as exc:
        raise CliError(str(exc)) from None
    print(
        f"cdp forget: filed erasure request {request_id} ({path.parent.name}); the next "
        "successful `cdp run` for that day erases the person and suppresses their identifiers"
    )
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from demo_data.generate import generate_from_args

    return generate_from_args(args)


def cmd_spark_build(args: argparse.Namespace) -> int:
    from orchestration.file_modes import apply_private_umask
    from warehouse_engine.spark_build import build_on_spark

    apply_private_umask()
    _set_paths(args)
    settings = _engine_settings(args)
    if not settings.is_spark:
        raise CliError(
            "set CDP_ENGINE=spark (and CDP_SPARK_REMOTE for a cluster); see docs/spark.md"
        )
    print(f"cdp spark-build: {_short_path(settings.duckdb_warehouse)} -> {settings.describe()}")
    dbt_args = ("build", "--exclude-resource-type", "unit_test")
    if args.select:
        dbt_args += ("--select", args.select)
    try:
        build = build_on_spark(settings, settings.spark_warehouse / "dbt", dbt_args)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    rows = sum(t.rows for t in build.handed_off)
    print(
        f"  handed off {len(build.handed_off)} tables, {rows:,} rows as Parquet "
        f"({build.handoff_seconds:.1f}s)"
    )
    # dbt's summary and failures (model and test names, counts and database messages;
    # dbt prints no row values), at most 40 lines.
    shown = [
        line.split(" ", 1)[-1].strip()
        for line in build.output.splitlines()
        if any(word in line for word in ("Done. PASS=", "ERROR", "Error", "FAIL ", "WARN "))
        or line.startswith("  ")
    ]
    for line in shown[:40]:
        print("  " + line)
    print(
        f"  dbt build on spark {'succeeded' if build.succeeded else 'FAILED'} ({build.dbt_seconds:.1f}s)"
    )
    if not build.succeeded:
        print(f"  full dbt log: {settings.spark_warehouse / 'dbt' / 'logs' / 'dbt.log'}")
    return 0 if build.succeeded else 1


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `cdp` parser; given the `command` about to be parsed, `generate`'s arguments are
    added only for it (they come from the demo-data generator, which a `cdp run` would
    otherwise import for nothing: ~0.3 CPU s of its start-up)."""
    parser = argparse.ArgumentParser(prog="cdp", description="Customer data platform pipeline")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="write a demo landing zone (and truth.csv)")
    if command in (None, "generate"):
        from demo_data.generate import add_generate_arguments

        add_generate_arguments(gen)
    gen.set_defaults(func=cmd_generate)

    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--warehouse", help=f"DuckDB file (default: $CDP_WAREHOUSE or {DEFAULTS['CDP_WAREHOUSE']})"
    )

    run = sub.add_parser(
        "run", parents=[where], help="run the pipeline job (every landing day, or one)"
    )
    run.add_argument(
        "--landing",
        help=f"landing root (default: $CDP_LANDING_DIR or {DEFAULTS['CDP_LANDING_DIR']})",
    )
    window = run.add_mutually_exclusive_group()
    window.add_argument(
        "--date", type=_date, help="run only this landing day and everything downstream"
    )
    run.add_argument("--from", dest="date_from", type=_date, help="first day of a backfill range")
    run.add_argument("--to", dest="date_to", type=_date, help="last day of a backfill range")
    run.add_argument(
        "--allow-shrink",
        action="store_true",
        help="let a re-load replace a loaded day with fewer records (refused by default: an "
        "empty or unmounted landing folder looks the same)",
    )
    run.add_argument(
        "--full-identity",
        action="store_true",
        help="retrain the identity model and re-resolve every record (a nightly run re-clusters "
        "only what the day touched, and retrains on its own every full_identity_every_days)",
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild dbt's incremental models and the scoring step's web state from all of "
        "raw (once after an upgrade that changes their columns; a nightly run processes only "
        "the changed days)",
    )
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="stream the full log (Dagster's event log and dbt's output) to the terminal; "
        "without it, one line per stage and the full log in a file",
    )
    run.add_argument(
        "--no-wait",
        action="store_true",
        help="fail at once, naming the run that holds it, if another run is writing the "
        "warehouse (default: wait up to $CDP_LOCK_TIMEOUT_S seconds, 6 hours)",
    )
    run.set_defaults(func=cmd_run)

    explain = sub.add_parser(
        "explain",
        parents=[where],
        help="show how a golden customer was assembled, or (--model) the learnt match weights",
    )
    explain.add_argument("customer_id", nargs="?")
    explain.add_argument(
        "--model",
        action="store_true",
        help="print the last run's m, u and match weight of every comparison level",
    )
    explain.set_defaults(func=cmd_explain)

    evaluate = sub.add_parser(
        "evaluate", parents=[where], help="precision/recall of identity resolution"
    )
    evaluate.add_argument("--truth", required=True, help="truth.csv written by `cdp generate`")
    evaluate.set_defaults(func=cmd_evaluate)

    steward = argparse.ArgumentParser(add_help=False, parents=[where])
    steward.add_argument(
        "--overrides-file",
        help="the reviewable CSV (default: $CDP_IDENTITY_OVERRIDES or identity_overrides.csv "
        "next to the warehouse)",
    )
    why = argparse.ArgumentParser(add_help=False)
    why.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    why.add_argument("--author", help="who (default: your login name, as $USER or the OS has it)")
    identity = sub.add_parser(
        "identity", help="steward overrides: link, unlink, block a value, list, revoke"
    )
    actions = identity.add_subparsers(dest="action", required=True, metavar="ACTION")
    for kind, text in (
        ("link", "these two records are one customer, whatever the rules say"),
        ("unlink", "these two records are never one customer"),
    ):
        pair = actions.add_parser(kind, parents=[steward, why], help=text)
        pair.add_argument("record_a", metavar="RECORD", help="source_system:source_record_id")
        pair.add_argument("record_b", metavar="RECORD")
    block = actions.add_parser(
        "block-value", parents=[steward, why], help="a value that must link nothing"
    )
    block.add_argument("value_kind", choices=["email", "phone", "user_id"])
    block.add_argument("value")
    revoke = actions.add_parser("revoke", parents=[steward, why], help="withdraw an override")
    revoke.add_argument("override_id")
    listing = actions.add_parser("overrides", parents=[steward], help="list overrides in force")
    listing.add_argument("--all", action="store_true", help="include revoked ones and revokes")
    identity.set_defaults(func=cmd_identity)

    forget = sub.add_parser(
        "forget",
        parents=[where],
        help="file a GDPR/CCPA erasure request (carried out by the next run)",
    )
    who = forget.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="the email address the person gave")
    who.add_argument("--phone", help="the phone number the person gave")
    who.add_argument("--customer", help="a golden customer id (its best email and phone)")
    forget.add_argument(
        "--landing",
        help=f"landing root (default: $CDP_LANDING_DIR or {DEFAULTS['CDP_LANDING_DIR']})",
    )
    forget.set_defaults(func=cmd_forget)

    spark = sub.add_parser(
        "spark-build",
        parents=[where],
        help="CDP_ENGINE=spark: build the dbt models on Spark from a DuckDB run's raw, "
        "identity and predictions tables (docs/spark.md)",
    )
    spark.add_argument("--select", help="a dbt selection (default: every model and test)")
    spark.set_defaults(func=cmd_spark_build)
    return parser


def main(argv: list[str] | None = None, *, console_script: bool = False) -> int:
    given = sys.argv[1:] if argv is None else argv
    args = build_parser(given[0] if given else None).parse_args(argv)
    args.console_script = console_script
    if getattr(args, "date", None) and (
        getattr(args, "date_from", None) or getattr(args, "date_to", None)
    ):
        print("cdp: use either --date or --from/--to, not both", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except CliError as exc:
        print(f"cdp {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cdp: interrupted", file=sys.stderr)
        return 130


def console_script() -> None:
    """The `cdp` command (pyproject's console script): `main`, then an exit that skips the
    interpreter's teardown.

    The exit handlers still run (log files flushed, thread pools joined, temporary folders
    removed, a local Spark stopped), and every file and database was closed by the command
    itself; what is skipped is freeing a few million objects one by one and the garbage
    collections of teardown, which cost a `cdp run` 2-5 seconds after its summary, and
    the reference-leak report nanobind (DuckDB's bindings) prints for objects still alive
    then. `python -m orchestration.cli` is the same command; callers of `main` (tests,
    scripts) keep their process as it was."""
    code = main(console_script=True)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code or 0)


if __name__ == "__main__":
    console_script()
