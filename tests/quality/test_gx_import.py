"""Great Expectations is imported without its Spark support (quality/gx_import.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_runner_loads_gx_without_pyspark_and_pyspark_still_imports_after():
    out = _run(
        """
        import os, sys
        import quality.runner
        from great_expectations.compatibility import pyspark as gx_spark
        from great_expectations.compatibility.not_imported import NotImported
        print("pyspark" in sys.modules, isinstance(gx_spark.pyspark, NotImported))
        print(os.environ["GX_ANALYTICS_ENABLED"])
        import pyspark.sql  # a Spark run's own import is unaffected
        print(pyspark.sql.SparkSession.__name__)
        """
    )
    assert out.splitlines() == ["False True", "False", "SparkSession"]


def test_pyspark_imported_first_is_left_to_gx():
    out = _run(
        """
        import pyspark
        import quality.runner
        from great_expectations.compatibility import pyspark as gx_spark
        print(gx_spark.pyspark is pyspark)
        """
    )
    assert out == "True"


def test_the_code_location_declares_its_checks_without_importing_gx():
    # ~2.3 of the ~5 CPU s a code location load took (`make ui`, a reload in the UI)
    out = _run(
        """
        import sys
        import orchestration.definitions
        print("great_expectations" in sys.modules)
        from quality.suites import SUITES
        suites = [spec.build() for spec in SUITES]  # the first use imports GX, pyspark hidden
        print("great_expectations" in sys.modules, "pyspark" in sys.modules)
        print(all(len(suite.expectations) > 0 for suite in suites))
        """
    )
    assert out.splitlines() == ["False", "True False", "True"]
