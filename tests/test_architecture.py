"""The package's structure: imports run one way, with no cycle, and no package takes another's
private names (docs/architecture.md draws the layers).

Read from the source with ``ast``, every import counts -- at module level or inside a function,
so a lazy import that runs upwards is caught too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "src" / "rnnkit"

#: the order of the rooms: a module may import from its own room and from any room below it
LAYERS = (
    ("foundation", {"_validation", "_io", "_extras", "config", "_native"}),
    ("cells", {"cells"}),
    ("scan", {"scan"}),
    ("layers", {"layers"}),
    ("models", {"models"}),
    ("training", {"training"}),
    ("data, metrics", {"data", "metrics"}),
    ("apps", {"apps"}),
    ("experiments, bench, deploy", {"experiments", "bench", "deploy"}),
    ("tasks (deprecated re-exports)", {"tasks"}),
    ("cli, the package", {"cli", "__init__", "__main__"}),
)
RANK = {room: rank for rank, (_, rooms) in enumerate(LAYERS) for room in rooms}
FOUNDATION = LAYERS[0][1]


SOURCES = sorted(ROOT.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p) for p in SOURCES}


def room(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:  # rnnkit itself: its __init__
        return "__init__"
    return parts[1]


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """``(module, names, line)`` for every import of an rnnkit module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    typing_only = {  # `if TYPE_CHECKING:` imports run for type checkers, never at run time
        id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for child in block.body for n in ast.walk(child)
    }  # fmt: skip
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "rnnkit"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "rnnkit":
                continue
            names = []
            for alias in node.names:  # `from rnnkit import scan` imports the module rnnkit.scan
                if f"{target}.{alias.name}" in MODULES:
                    found.append((f"{target}.{alias.name}", [], node.lineno))
                else:
                    names.append(alias.name)
            if names:
                found.append((target, names, node.lineno))
    return found




def edges() -> dict[str, set[str]]:
    """Module -> the rnnkit modules it imports."""
    graph: dict[str, set[str]] = {module_name(p): set() for p in SOURCES}
    for path in SOURCES:
        source = module_name(path)
        for target, _, _ in imports(path):
            graph[source].add(target)
    return graph


def test_imports_run_downwards():
    wrong = []
    for path in SOURCES:
        source = module_name(path)
        for target, _, line in imports(path):
            if RANK[room(target)] > RANK[room(source)]:
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line} {source} imports {target} (a higher room)")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    graph = edges()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def strongconnect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            strongconnect(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_package_imports_another_packages_private_names():
    wrong = []
    for path in SOURCES:
        source = module_name(path)
        for target, names, line in imports(path):
            if room(target) == room(source) or room(target) in FOUNDATION or room(target) == "__init__":
                continue
            inner = target.split(".")[2:]  # the parts below the room: rnnkit.layers._base -> ["_base"]
            private = [p for p in inner if p.startswith("_")] + [n for n in names if n.startswith("_")]
            if private:
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line} {source} takes {', '.join(private)} from {target}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("room_name", sorted({room(m) for m in MODULES}))
def test_every_room_has_a_place_in_the_order(room_name):
    assert room_name in RANK, f"rnnkit.{room_name} is not in tests/test_architecture.py's LAYERS"


def test_the_worked_example_in_docs_architecture_trains(tmp_path):
    """docs/architecture.md's application, run as written: one folder's code, trained by the runner."""
    from rnnkit.apps.runner import train_app

    text = (ROOT.parent.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    code = next(block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "class MeanApp" in block)
    namespace: dict = {}
    exec(compile(code, "docs/architecture.md", "exec"), namespace)
    outcome = train_app(namespace["MeanApp"](), run_dir=tmp_path / "run", quiet=True)
    results = outcome.results
    assert (tmp_path / "run" / "results.json").is_file() and "test MSE" in outcome.report
    assert results["test_mse"] < 0.5 * results["zero_mse"]  # it learned something
