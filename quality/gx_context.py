"""One Great Expectations context per process and per Data Docs directory.

The suites are defined in Python (quality/suites/), so GX's stores for suites,
validation definitions and checkpoints are kept in memory and rebuilt from code; only
what must outlive the process is on disk: validation results (JSON, for tools and for
history) and the HTML site (quality/docs_site.py). Building a context and registering a
suite costs tens of milliseconds, so both are cached: a Dagster step that runs ten checks
pays for them once, and a suite is registered once per process, never per validation.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from threading import RLock

# GX reports usage analytics over the network unless told otherwise; the pipeline must
# run offline and never phone home. Must be set before great_expectations is imported.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx  # noqa: E402
from great_expectations.core.batch_definition import BatchDefinition  # noqa: E402
from great_expectations.data_context import EphemeralDataContext  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    ProgressBarsConfig,
)

from quality.docs_site import DataDocsSite  # noqa: E402
from quality.spec import SuiteSpec  # noqa: E402

DATA_SOURCE_NAME = "cdp_warehouse_frames"
#: GX's persisted state lives inside the docs directory so one folder holds all of it.
STORE_DIRNAME = "_gx_store"

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
            "validation_results_store": {
                "class_name": "ValidationResultsStore",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(store_dir / "validations"),
                },
            },
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
        self.gx: EphemeralDataContext = gx.get_context(
            mode="ephemeral", project_config=_context_config(store_dir)
        )
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


def quality_context(docs_dir: Path) -> QualityContext:
    """The cached context for `docs_dir` (created on first use in this process)."""
    key = Path(docs_dir).resolve()
    with _contexts_lock:
        context = _contexts.get(key)
        if context is None:
            context = _contexts[key] = QualityContext(key)
        return context
