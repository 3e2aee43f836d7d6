"""One Great Expectations context per process and per Data Docs directory.

The suites are defined in Python (quality/suites/), so GX's stores for suites,
validation definitions and checkpoints are kept in memory and rebuilt from code; only
what must outlive the process is on disk: validation results (JSON, for tools and for
history), the HTML site (quality/docs_site.py) and, per suite validated by change, the
newest row time its last passing validation covered (`validated_versions.json`). Building a context and registering a
suite costs tens of milliseconds, so both are cached: a Dagster step that runs ten checks
pays for them once, and a suite is registered once per process, never per validation.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from threading import RLock
from typing import Any

import pandas as pd

from quality.gx_import import import_great_expectations
from quality.store_settings import results_kept_per_suite

# Offline (no usage analytics) and without GX's Spark engine (quality/gx_import.py).
import_great_expectations()

import great_expectations as gx  # noqa: E402
from great_expectations.constants import DATAFRAME_REPLACEMENT_STR  # noqa: E402
from great_expectations.core import ExpectationSuiteValidationResult  # noqa: E402
from great_expectations.core.batch_definition import BatchDefinition  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context import EphemeralDataContext  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    ProgressBarsConfig,
)
from great_expectations.validator.v1_validator import Validator  # noqa: E402

from quality.docs_site import DataDocsSite, read_json_object, write_atomically  # noqa: E402
from quality.spec import SuiteSpec  # noqa: E402

DATA_SOURCE_NAME = "cdp_warehouse_frames"
#: GX's persisted state lives inside the docs directory so one folder holds all of it.
STORE_DIRNAME = "_gx_store"
#: Per suite validated by change: the newest row time its last passing validation covered.
VALIDATED_VERSIONS_NAME = "validated_versions.json"

_contexts: dict[Path, QualityContext] = {}
_contexts_lock = RLock()


def _in_memory_store(class_name: str) -> dict:
    return {"class_name": class_name, "store_backend": {"class_name": "InMemoryStoreBackend"}}


def _context_config(store_dir: Path) -> DataContextConfig:
    return DataContextConfig(
        config_version=4.0,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        expectations_store_name="expectations_store",
        validation_results_store_name="validation_results_store",
        checkpoint_store_name="checkpoint_store",
        stores={
            "expectations_store": _in_memory_store("ExpectationsStore"),
            # Kept in memory: `QualityContext.store_result` writes the masked result to
            # disk itself and prunes the suite's history (GX's filesystem store can do
            # neither, and would persist the failing values as they are).
            "validation_results_store": _in_memory_store("ValidationResultsStore"),
            "checkpoint_store": _in_memory_store("CheckpointStore"),
            "validation_definition_store": _in_memory_store("ValidationDefinitionStore"),
        },
        # Data Docs are written by quality.docs_site, one page per validation.
        data_docs_sites={},
    )


@dataclass(frozen=True)
class RegisteredSuite:
    """A suite as registered in the context: what a validation run needs."""

    suite: gx.ExpectationSuite
    batch_definition: BatchDefinition
    validation: gx.ValidationDefinition


class QualityContext:
    """A GX context bound to one Data Docs directory, with every suite registered once."""

    def __init__(self, docs_dir: Path) -> None:
        self.docs_dir = docs_dir
        store_dir = docs_dir / STORE_DIRNAME
        store_dir.mkdir(parents=True, exist_ok=True)
        self.store_dir = store_dir
        self.gx: EphemeralDataContext = gx.get_context(
            mode="ephemeral", project_config=_context_config(store_dir)
        )
        # GX documents an ephemeral context's project config as "not saved", yet dumps it
        # to YAML (into an in-memory store nothing reads) after every asset and batch
        # definition added: 49 dumps of a growing config for the 33 suites, two thirds of
        # registering them. Our config lives in `_context_config`, so skip the dumps.
        self.gx._save_project_config = _config_lives_in_memory
        self._data_source = self.gx.data_sources.add_pandas(DATA_SOURCE_NAME)
        self._registered: dict[str, RegisteredSuite] = {}
        self._lock_path = docs_dir / ".quality.lock"
        self.site = DataDocsSite(docs_dir, store_dir)

    def registered(self, spec: SuiteSpec) -> RegisteredSuite:
        """Register suite, asset, batch definition and validation definition on first use."""
        found = self._registered.get(spec.name)
        if found is not None:
            return found
        suite = self.gx.suites.add(spec.build())
        try:
            asset = self._data_source.get_asset(spec.table)
        except LookupError:
            asset = self._data_source.add_dataframe_asset(name=spec.table)
        batch_definition = asset.add_batch_definition_whole_dataframe(spec.name)
        validation = self.gx.validation_definitions.add(
            gx.ValidationDefinition(name=spec.name, data=batch_definition, suite=suite)
        )
        found = self._registered[spec.name] = RegisteredSuite(suite, batch_definition, validation)
        return found

    def validate(
        self,
        registered: RegisteredSuite,
        frame: pd.DataFrame,
        result_format: dict[str, Any],
        run_id: RunIdentifier,
    ) -> ExpectationSuiteValidationResult:
        """What `registered.validation.run(...)` returns, without its per-run overhead.

        `ValidationDefinition.run` first compares the suite and the definition with the
        stores (serialising both) and afterwards adds the result to the in-memory results
        store (serialising it again, and keeping every result of the process alive). The
        suites are defined in code and registered once, and `store_result` writes the
        (masked) result itself, so both are skipped; the result's meta is the same."""
        validator = Validator(
            batch_definition=registered.batch_definition,
            batch_parameters={"dataframe": frame},
            result_format=result_format,
        )
        result = validator.validate_expectation_suite(registered.suite)
        result.meta["validation_id"] = registered.validation.id
        result.meta["checkpoint_id"] = None
        result.meta["run_id"] = run_id
        result.meta["validation_time"] = run_id.run_time
        result.meta["batch_parameters"] = {"dataframe": DATAFRAME_REPLACEMENT_STR}
        return result

    def validated_version(self, suite_name: str) -> datetime | None:
        """The newest row time the suite's last passing validation covered (None: none yet)."""
        value = read_json_object(self.store_dir / VALIDATED_VERSIONS_NAME).get(suite_name)
        try:
            return datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None  # unreadable: validate whole, which records a fresh one

    def record_validated_version(self, suite_name: str, version: datetime) -> None:
        """Remember `version` for `suite_name` (call inside `exclusive()`)."""
        path = self.store_dir / VALIDATED_VERSIONS_NAME
        versions = read_json_object(path)
        versions[suite_name] = version.isoformat()
        write_atomically(path, json.dumps(versions, indent=2, sort_keys=True))

    def store_result(self, suite_name: str, run_id, batch_id: str, validation_result) -> Path:
        """Write one (already masked) validation result as JSON, then prune the suite's history.

        The layout is GX's own (`validations/<suite>/<run_name>/<run_time>/<batch>.json`),
        so tools that read a GX filesystem store still find it. Only the newest
        `results_kept_per_suite()` results of the suite stay. Call inside `exclusive()`.
        """
        run_name, run_time = run_id.to_tuple()
        suite_dir = self.store_dir.joinpath("validations", *suite_name.split("."))
        path = suite_dir / run_name / run_time / f"{batch_id}.json"
        write_atomically(path, json.dumps(validation_result.to_json_dict(), indent=2, default=str))
        _prune_results(suite_dir, results_kept_per_suite())
        return path

    @contextmanager
    def in_process(self) -> Iterator[None]:
        """GX objects are not thread-safe: one validation at a time in this process."""
        with _contexts_lock:
            yield

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Serialise Data Docs writes across the processes of one run (Dagster steps)."""
        with _contexts_lock, open(self._lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


def _config_lives_in_memory() -> None:
    """Nothing to save: the context's config is rebuilt from code in every process."""


def quality_context(docs_dir: Path) -> QualityContext:
    """The cached context for `docs_dir` (created on first use in this process)."""
    key = Path(docs_dir).resolve()
    with _contexts_lock:
        context = _contexts.get(key)
        if context is None:
            context = _contexts[key] = QualityContext(key)
        return context


def _prune_results(suite_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` results under a suite's folder, and emptied folders.

    Newest by the run time in the path (`<run_name>/<run_time>/`, ISO-like and sortable),
    then by modification time: a suite validated twice in the same second keeps both.
    """
    results = sorted(
        suite_dir.glob("*/*/*.json"),
        key=lambda p: (p.parent.name, p.stat().st_mtime_ns, p.name),
    )
    for old in results[: max(0, len(results) - keep)]:
        old.unlink(missing_ok=True)
        for folder in (old.parent, old.parent.parent):
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty: other results of that run remain
