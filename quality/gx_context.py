"""One Great Expectations context per process and per Data Docs directory.

The suites are defined in Python (quality/suites/), so GX's own stores for suites,
validation definitions and checkpoints are kept in memory and rebuilt from code; only
what must outlive the process is on disk: validation results (so the Data Docs index of
one run lists every suite validated by every Dagster step process) and the HTML site.
Building a context and registering objects costs tens of milliseconds, so both are
cached: a Dagster step that runs ten checks pays for it once.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from threading import RLock

# GX reports usage analytics over the network unless told otherwise; the pipeline must
# run offline and never phone home. Must be set before great_expectations is imported.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx  # noqa: E402
from great_expectations.checkpoint import UpdateDataDocsAction  # noqa: E402
from great_expectations.core.batch_definition import BatchDefinition  # noqa: E402
from great_expectations.data_context import EphemeralDataContext  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    ProgressBarsConfig,
)

from quality.spec import SuiteSpec  # noqa: E402

DATA_SOURCE_NAME = "cdp_warehouse_frames"
DOCS_SITE_NAME = "quality_docs"
#: GX's persisted state lives inside the docs directory so one folder holds all of it.
STORE_DIRNAME = "_gx_store"
#: The index lists at most this many recent validation results.
INDEX_VALIDATION_LIMIT = 500

_contexts: dict[Path, QualityContext] = {}
_contexts_lock = RLock()


def _context_config(docs_dir: Path) -> DataContextConfig:
    store_dir = docs_dir / STORE_DIRNAME
    return DataContextConfig(
        config_version=4.0,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        expectations_store_name="expectations_store",
        validation_results_store_name="validation_results_store",
        checkpoint_store_name="checkpoint_store",
        stores={
            "expectations_store": {
                "class_name": "ExpectationsStore",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(store_dir / "expectations"),
                },
            },
            "validation_results_store": {
                "class_name": "ValidationResultsStore",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(store_dir / "validations"),
                },
            },
            "checkpoint_store": {
                "class_name": "CheckpointStore",
                "store_backend": {"class_name": "InMemoryStoreBackend"},
            },
            "validation_definition_store": {
                "class_name": "ValidationDefinitionStore",
                "store_backend": {"class_name": "InMemoryStoreBackend"},
            },
        },
        data_docs_sites={
            DOCS_SITE_NAME: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "validation_results_limit": INDEX_VALIDATION_LIMIT,
                    "view": {
                        "module_name": "quality.docs_site",
                        "class_name": "OfflineIndexPageView",
                    },
                },
                "site_section_builders": {
                    section: {
                        "view": {
                            "module_name": "quality.docs_site",
                            "class_name": "OfflinePageView",
                        }
                    }
                    for section in ("expectations", "validations", "profiling")
                },
            }
        },
    )


class QualityContext:
    """A GX context bound to one Data Docs directory, with per-suite checkpoints cached."""

    def __init__(self, docs_dir: Path) -> None:
        self.docs_dir = docs_dir
        docs_dir.mkdir(parents=True, exist_ok=True)
        self.gx: EphemeralDataContext = gx.get_context(
            mode="ephemeral", project_config=_context_config(docs_dir)
        )
        self._data_source = self.gx.data_sources.add_pandas(DATA_SOURCE_NAME)
        self._checkpoints: dict[str, gx.Checkpoint] = {}
        self._lock_path = docs_dir / ".quality.lock"

    def checkpoint_for(self, spec: SuiteSpec) -> gx.Checkpoint:
        """Register suite, asset, batch definition, validation definition and checkpoint once."""
        checkpoint = self._checkpoints.get(spec.name)
        if checkpoint is not None:
            return checkpoint
        suite = self.gx.suites.add_or_update(spec.build())
        try:
            asset = self._data_source.get_asset(spec.table)
        except LookupError:
            asset = self._data_source.add_dataframe_asset(name=spec.table)
        batch_definition: BatchDefinition = asset.add_batch_definition_whole_dataframe(spec.name)
        validation = self.gx.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=spec.name, data=batch_definition, suite=suite)
        )
        checkpoint = self.gx.checkpoints.add_or_update(
            gx.Checkpoint(
                name=spec.name,
                validation_definitions=[validation],
                actions=[
                    UpdateDataDocsAction(name="update_quality_docs", site_names=[DOCS_SITE_NAME])
                ],
                result_format={
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": 20,
                    "unexpected_index_column_names": list(spec.key_columns),
                    "return_unexpected_index_query": False,
                },
            )
        )
        self._checkpoints[spec.name] = checkpoint
        return checkpoint

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Serialise GX store and Data Docs writes across the processes of one run."""
        with _contexts_lock, open(self._lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


def quality_context(docs_dir: Path) -> QualityContext:
    """The cached context for `docs_dir` (created on first use in this process)."""
    key = docs_dir.resolve()
    with _contexts_lock:
        context = _contexts.get(key)
        if context is None:
            context = _contexts[key] = QualityContext(key)
        return context
