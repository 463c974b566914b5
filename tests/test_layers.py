"""crewtrace's layers: no module imports a higher one, and importing a lower part loads nothing above it (the
tracing core loads no exporter, the report readers neither the tracer nor CrewAI) (#27 item 3)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A module may import its own layer and the layers below it.
LAYERS = [
    ("crewtrace.errors", "crewtrace.masking", "crewtrace.attributes", "crewtrace.version", "crewtrace.package"),
    ("crewtrace.usage", "crewtrace.crewai_releases"),
    ("crewtrace.tracing", "crewtrace.run_context", "crewtrace.offline_llm"),
    ("crewtrace.instrumentor",),
    ("crewtrace.setup",),
    ("crewtrace.report",),
    ("crewtrace.demo", "crewtrace.cli", "crewtrace"),
]


def _layer(module: str) -> int:
    while module.count(".") > 1 and module not in MODULES:  # crewtrace.x.name: the module crewtrace.x
        module = module.rsplit(".", 1)[0]
    matches = [(len(prefix), rank) for rank, group in enumerate(LAYERS) for prefix in group
               if module == prefix or module.startswith(prefix + ".")]  # fmt: skip
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "crewtrace").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every crewtrace module ``path`` imports, at module level or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("crewtrace"):
            # "from crewtrace import attributes" imports the module crewtrace.attributes
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("crewtrace"))
    return names


MODULES: dict[str, Path] = {}


def test_no_module_imports_a_higher_layer():
    MODULES.update(_modules())
    crossings = [
        f"{module} imports {imported}"
        for module, path in _modules().items()
        for imported in _imports(path)
        if _layer(imported) > _layer(module)
    ]
    assert crossings == []


def _loaded_after(statement: str) -> list[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("statement", "absent"),
    [
        ("import crewtrace.tracing.tracker", ("crewtrace.setup", "crewtrace.report", "opentelemetry.exporter")),
        ("import crewtrace.instrumentor", ("crewtrace.setup", "crewtrace.report", "opentelemetry.exporter")),
        (
            "import crewtrace.cli, crewtrace.report.summary, crewtrace.report.runs, crewtrace.report.jaeger",
            ("crewtrace.setup", "crewtrace.tracing", "crewai", "opentelemetry.exporter", "opentelemetry.sdk"),
        ),
        ("import crewtrace", ("crewtrace.setup", "crewtrace.tracing", "crewai", "opentelemetry")),
    ],
)
def test_importing_a_lower_part_loads_nothing_above_it(statement, absent):
    loaded = _loaded_after(statement)
    assert [m for m in loaded if any(m == a or m.startswith(a + ".") for a in absent)] == []


def test_the_public_names_are_there_when_used():
    loaded = _loaded_after("import crewtrace; crewtrace.instrument; crewtrace.context; crewtrace.CrewAIInstrumentor")
    assert "crewtrace.setup.configure" in loaded and "crewtrace.instrumentor" in loaded
