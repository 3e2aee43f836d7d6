"""The domain packages are plain Python: none imports Dagster, or the orchestration layer
(which would bring Dagster in with it). Dagster code only says when and in what order."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOMAIN_PACKAGES = (
    "demo_data",
    "ingestion",
    "identity",
    "quality",
    "predictions",
    "privacy",
    "overview",
    "warehouse_engine",
)
FORBIDDEN = ("dagster", "dagster_dbt", "dagster_webserver", "dagster_graphql", "orchestration")


@cache
def _imported_modules(path: Path) -> tuple[str, ...]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
    return tuple(modules)


def test_no_domain_package_imports_dagster_or_orchestration():
    offenders = []
    files = [f for package in DOMAIN_PACKAGES for f in sorted((REPO / package).rglob("*.py"))]
    assert len(files) > 40, "expected to scan every domain module"
    for path in files:
        for module in _imported_modules(path):
            if module.split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.relative_to(REPO)} imports {module}")
    assert not offenders, "domain packages must not import Dagster:\n" + "\n".join(offenders)


def test_only_the_cli_tests_and_benches_import_the_demo_data_generator():
    offenders = []
    for package in ("ingestion", "identity", "quality", "predictions", "orchestration"):
        for path in sorted((REPO / package).rglob("*.py")):
            if path.relative_to(REPO).as_posix() == "orchestration/cli.py":
                continue
            for module in _imported_modules(path):
                if module.split(".")[0] == "demo_data":
                    offenders.append(f"{path.relative_to(REPO)} imports {module}")
    assert not offenders, "\n".join(offenders)
