"""Great Expectations imported without its optional Spark support.

GX imports pyspark (and pyspark.ml, Spark Connect) when it is installed, ~0.5 CPU s of
every process that validates a suite, for its Spark execution engine. The suites here
are always validated on pandas frames, also on `CDP_ENGINE=spark` (quality.spark_frames
computes them in Spark and hands GX pandas), so GX is imported as on a machine without
pyspark: pyspark is hidden while GX loads, and importable as usual afterwards.

The modules of this package that use GX import it through here first. The suites' catalogue
(`quality.suites`) names GX classes through `lazy_gx_module`, so declaring the checks (the
Dagster code location, `cdp run`'s start) does not import GX; validating the first suite does.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

_HIDDEN = "pyspark"


def import_great_expectations() -> ModuleType:
    """`great_expectations`, imported once per process with pyspark hidden from it (unless
    pyspark was imported before, e.g. by a Spark session: then GX sees it as usual)."""
    # GX reports usage analytics over the network unless told otherwise; the pipeline must
    # run offline. Read when great_expectations is imported.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    if "great_expectations" in sys.modules or _HIDDEN in sys.modules:
        return importlib.import_module("great_expectations")
    sys.modules[_HIDDEN] = None  # type: ignore[assignment]  # `import pyspark` raises ImportError
    try:
        return importlib.import_module("great_expectations")
    finally:
        if sys.modules.get(_HIDDEN, False) is None:
            del sys.modules[_HIDDEN]


class _LazyModule(ModuleType):
    """A stand-in for a GX module whose first attribute access imports it (as above)."""

    def __getattr__(self, attribute: str):
        import_great_expectations()
        return getattr(importlib.import_module(self.__name__), attribute)


def lazy_gx_module(name: str) -> ModuleType:
    """`name` (a `great_expectations` module), imported when an attribute is first read."""
    return sys.modules.get(name) or _LazyModule(name)
