"""dbt run inside the Dagster step's process, with one parsed project reused by every step.

`DbtCliResource` starts a dbt process per command. Each such process imports dbt and
loads the parsed project again (about 4.5 CPU seconds before the first model, on the
2-core demo machine), three times per pipeline run, while this process has dbt imported
already (dagster-dbt imports it). Here a command runs through dbt's programmatic API
(`dbtRunner`) in a worker thread, and its structured events, the ones
`--log-format json` would print, feed dagster-dbt's own event translation, so the
materializations and asset checks are exactly those of the subprocess. The project is
parsed once per process (partial parsing from the target folder, as before) and the
parsed manifest is handed to every later command.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliInvocation, DbtCliResource
from dagster_dbt.asset_utils import (
    DBT_INDIRECT_SELECTION_ENV,
    extract_runtime_selection_from_args,
    get_updated_cli_invocation_params_for_context,
)
from dagster_dbt.dagster_dbt_translator import DagsterDbtTranslator, validate_opt_translator
from dagster_dbt.dbt_manifest import validate_manifest

from warehouse_engine.dbt_cli import PARTIAL_PARSE_FILE

_DONE = object()
# One dbt command at a time per process: dbt keeps its flags and adapters in globals.
_DBT_LOCK = threading.Lock()
# (project folder, target folder, profile's warehouse, newest source mtime) -> Manifest
_PARSED: dict[tuple, Any] = {}


@dataclass
class FinishedCommand:
    """What DbtCliInvocation reads from its `process`: the command line and exit code."""

    args: list[str]
    returncode: int | None = None
    stdout: None = None

    def wait(self, timeout: float | None = None) -> int:  # noqa: ARG002 - Popen's signature
        return self.returncode if self.returncode is not None else 1


@dataclass
class InProcessDbtInvocation(DbtCliInvocation):
    """A dbt command running in a thread of this process; events arrive through a queue."""

    events: queue.Queue = field(default_factory=queue.Queue)
    thread: threading.Thread | None = None

    def _stream_stdout(self) -> Iterator[str | dict[str, Any]]:
        if self.thread is None:
            return
        while True:
            event = self.events.get()
            if event is _DONE:
                break
            if event["info"]["level"] == "error":
                self._error_messages.append(event["info"]["msg"])
            yield event
        self.thread.join()
        self.thread = None


def _newest_source_mtime(project_dir: Path) -> float:
    candidates = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in ("models", "macros", "tests", "seeds", "snapshots"):
        candidates.extend(p for p in (project_dir / folder).rglob("*") if p.is_file())
    return max((p.stat().st_mtime for p in candidates if p.exists()), default=0.0)


def parse_profile_warehouse(project_dir: Path, warehouse_name: str) -> Path:
    """The warehouse path dbt parses the project with, whichever file it will build.

    dbt re-parses in full (~8 CPU s) when the profile differs from the one its partial
    parse state was written with, and the profile holds the warehouse path. A parsed
    project depends on the file's name only (DuckDB's catalog, `target.database`), and
    parsing opens no database, so every warehouse of one name shares one parse state.
    """
    return project_dir / "target" / warehouse_name


def _parsed_manifest(runner_cls, project_dir: Path, target_path: Path, flags: list[str]):
    """The project parsed once per process, target folder and warehouse name (partial parsing)."""
    configured = os.environ.get("CDP_WAREHOUSE")
    name = Path(configured or "warehouse.duckdb").name
    key = (str(project_dir), str(target_path), name, _newest_source_mtime(project_dir))
    if key not in _PARSED:
        os.environ["CDP_WAREHOUSE"] = str(parse_profile_warehouse(project_dir, name))
        try:
            # partial_parse.msgpack is still written; manifest.json is not needed here.
            result = runner_cls().invoke(["parse", *flags, "--no-write-json"])
        finally:
            if configured is None:
                os.environ.pop("CDP_WAREHOUSE", None)
            else:
                os.environ["CDP_WAREHOUSE"] = configured
        if not result.success:
            raise RuntimeError(f"dbt parse failed in {project_dir}: {result.exception}")
        _PARSED.clear()
        _PARSED[key] = result.result
    return _PARSED[key]


def _close_duckdb() -> None:
    """Close dbt-duckdb's database, so the next step may open, link or rename the file.

    dbt-duckdb's `close_all_connections()` only forgets its environment; the DuckDB database
    closes when that object is garbage collected. While anything still refers to it (a
    traceback of a failed test, a cycle the collector has not reached), the database stays
    open with its WAL beside `.dbt/<name>`, and DuckDB's instance cache hands that stale
    database to the next step's dbt command that opens the same path: the marts step then
    reads the tables as they were before the identity step wrote them, and its writes land
    over the identity step's (the cause of a flaky CI run). Closing the connection here
    checkpoints the WAL into the file and closes every cursor dbt opened from it, whatever
    still refers to the environment.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        DuckDBConnectionManager.close_all_connections()
    close = getattr(environment, "close", None)
    if close is not None:
        close()


class InProcessDbtCliResource(DbtCliResource):
    """`DbtCliResource` whose `cli()` runs dbt in this process (see the module docstring)."""

    def cli(
        self,
        args: Sequence[str],
        *,
        raise_on_error: bool = True,
        manifest=None,
        dagster_dbt_translator: DagsterDbtTranslator | None = None,
        context=None,
        target_path: Path | None = None,
    ) -> DbtCliInvocation:
        from dbt.cli.main import dbtRunner
        from dbt_common.events.functions import msg_to_dict

        translator = validate_opt_translator(dagster_dbt_translator) or DagsterDbtTranslator()
        manifest = validate_manifest(manifest) if manifest else {}
        cleaned_args, selects, excludes = extract_runtime_selection_from_args(args)
        params = get_updated_cli_invocation_params_for_context(
            context=context,
            manifest=manifest,
            dagster_dbt_translator=translator,
            runtime_selects=selects,
            runtime_excludes=excludes,
        )
        project_dir = Path(
            params.dbt_project.project_dir if params.dbt_project else self.project_dir
        )
        target_path = Path(target_path or self._get_unique_target_path(context=context))
        if not target_path.is_absolute():
            target_path = project_dir / target_path
        # What dagster-dbt passes its dbt process as environment, here as flags and a
        # temporary environment (the profile reads CDP_WAREHOUSE from it).
        flags = [
            "--project-dir",
            str(project_dir),
            "--target-path",
            str(target_path),
            "--log-path",
            str(target_path),
            "--log-level",
            "none",
            "--no-send-anonymous-usage-stats",
            *(["--profiles-dir", str(self.profiles_dir)] if self.profiles_dir else []),
            *(["--profile", self.profile] if self.profile else []),
            *(["--target", self.target] if self.target else []),
        ]
        # No manifest.json per command (~0.4 CPU s each: the project's own is in
        # dbt_project/target); run_results.json is written below from the result in memory.
        command = [
            *self.global_config_flags,
            *cleaned_args,
            *flags,
            *params.selection_args,
            "--no-write-json",
        ]
        env = (
            {DBT_INDIRECT_SELECTION_ENV: params.indirect_selection}
            if params.indirect_selection
            else {}
        )

        seeded = project_dir / "target" / PARTIAL_PARSE_FILE
        if seeded.exists() and not (target_path / PARTIAL_PARSE_FILE).exists():
            target_path.mkdir(parents=True, exist_ok=True)
            # The content only: the warehouse's folder is private, the project's is not.
            shutil.copyfile(seeded, target_path / PARTIAL_PARSE_FILE)
            os.chmod(target_path / PARTIAL_PARSE_FILE, 0o600)

        process = FinishedCommand(args=["dbt", *command])
        invocation = InProcessDbtInvocation(
            process=process,  # type: ignore[arg-type]
            manifest=params.manifest,
            dagster_dbt_translator=params.dagster_dbt_translator,
            project_dir=project_dir,
            target_path=target_path,
            raise_on_error=raise_on_error,
            context=context,
            adapter=None,
            cli_version=self._cli_version,
            project=params.dbt_project,
        )

        def forward(msg) -> None:
            # The events a `--log-format json` process prints at its default level.
            if msg.info.level != "debug":
                invocation.events.put(msg_to_dict(msg))

        def run() -> None:
            with _DBT_LOCK:
                previous = {k: os.environ.get(k) for k in env}
                os.environ.update(env)
                try:
                    parsed = _parsed_manifest(dbtRunner, project_dir, target_path, flags)
                    result = dbtRunner(manifest=parsed, callbacks=[forward]).invoke(command)
                    process.returncode = 0 if result.success else 1
                    if hasattr(result.result, "write"):  # a run's results (not a parse)
                        target_path.mkdir(parents=True, exist_ok=True)
                        result.result.write(str(target_path / "run_results.json"))
                    if result.exception is not None:
                        invocation.events.put(
                            {
                                "info": {
                                    "level": "error",
                                    "msg": f"dbt failed: {result.exception}",
                                    "name": "MainEncounteredError",
                                },
                                "data": {},
                            }
                        )
                except BaseException as exc:  # noqa: BLE001 - reported as the command's error
                    process.returncode = 2
                    invocation.events.put(
                        {
                            "info": {
                                "level": "error",
                                "msg": f"dbt failed: {exc}",
                                "name": "MainEncounteredError",
                            },
                            "data": {},
                        }
                    )
                finally:
                    _close_duckdb()
                    for k, v in previous.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v
                    invocation.events.put(_DONE)

        invocation.thread = threading.Thread(target=run, name="dbt", daemon=True)
        invocation.thread.start()
        return invocation
