"""The package's shape (ARCHITECTURE.md): srgan/ by concern, arrows one way, no import circle.

Every ``import`` statement is read from the source (module level and inside functions alike), so a
lazy import cannot hide a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

SRGAN = REPO / "srgan"
TOP_LEVEL_LIMIT = 10  # modules beside the subpackages (issue 22: "no more than about 10")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Modules (dotted, absolute) that the file imports; ``from pkg import mod`` counts as pkg.mod when
    pkg/mod.py exists."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            for alias in node.names:
                candidate = REPO.joinpath(*f"{base}.{alias.name}".split("."))
                if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
                    found.add(f"{base}.{alias.name}")
    return found


def graph() -> dict[str, set[str]]:
    files = sorted(SRGAN.rglob("*.py")) + sorted((REPO / "flows").glob("*.py"))
    mods = {module_name(f): f for f in files}
    return {m: {i for i in imports_of(f) if i in mods and i != m} for m, f in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_in_srgan_or_flows():
    edges = graph()
    assert "srgan.pipeline.stages" in edges and "srgan.pipeline.documents" in edges
    assert cycles(edges) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_srgan_never_imports_prefect_and_only_the_cli_reaches_into_flows():
    for path in SRGAN.rglob("*.py"):
        found = imports_of(path)
        assert not any(m == "prefect" or m.startswith("prefect.") for m in found), path
        if path != SRGAN / "cli.py":
            assert not any(m == "flows" or m.startswith("flows.") for m in found), path


def test_arrows_run_one_way_between_concerns():
    """readers, imaging, inference and the shared top level never import the pipeline, the studies, the
    benchmark, training or the report; the pipeline never imports the studies, the benchmark, training or
    the report (which reads what the pipeline wrote)."""
    below_pipeline = ("srgan.readers", "srgan.pdf", "srgan.imaging", "srgan.inference", "srgan.encoding",
                      "srgan.config", "srgan.models", "srgan.weights", "srgan.atomic", "srgan.storage",
                      "srgan.runtimes")
    above = {"srgan.pipeline", "srgan.fidelity", "srgan.bench", "srgan.training", "srgan.report"}
    for mod, deps in graph().items():
        if mod.startswith(below_pipeline):
            assert not {d for d in deps if d.startswith(tuple(above))}, (mod, deps)
        if mod.startswith("srgan.pipeline"):
            assert not {d for d in deps if d.startswith(("srgan.fidelity", "srgan.bench", "srgan.training",
                                                          "srgan.report"))}, mod


def test_top_level_of_srgan_is_small():
    modules = [p.name for p in SRGAN.glob("*.py")]
    assert len(modules) <= TOP_LEVEL_LIMIT, modules


def test_paths_computed_from_module_files_point_where_they_did_before_the_move():
    from srgan.bench import scale
    from srgan.config import DEFAULT_CONFIG_PATH
    from srgan.fidelity import textsize_study
    from srgan.weights import PROJECT_ROOT

    assert scale.PROJECT == REPO and PROJECT_ROOT == REPO and DEFAULT_CONFIG_PATH == REPO / "pipeline.yaml"
    assert textsize_study.DEFAULT_PAGES == REPO.parent / "shared" / "data" / "scans"
