"""The package's shape: no import circles, no module reaching into another's private names, the
verbs in their own modules and taking specs."""

import ast
import inspect
from pathlib import Path

import wearprune

SRC = Path(wearprune.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(imported module, names) for every import in the file, lazy ones inside functions included."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return [(t, names) for t, names in found if t == "wearprune" or t.startswith("wearprune.")]


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py")}


def test_no_module_imports_another_modules_private_names():
    modules = _modules()
    offenders = []
    for name, path in modules.items():
        for target, names in _imports(path):
            for n in names:
                if n.startswith("_") and not n.startswith("__") and target != name:
                    offenders.append(f"{name} imports {target}.{n}")
    assert not offenders, offenders


def test_no_import_circles():
    """Module A importing B (at the top or inside a function) and B importing A, directly or through
    others. Importing a package's name counts as importing its __init__."""
    modules = _modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, names in _imports(path):
            for t in [f"{target}.{n}" for n in names if f"{target}.{n}" in modules] or [target]:
                if t in modules and t != name and not name.startswith(t + "."):  # a package's own children
                    edges[name].add(t)
    circles = []
    for start in modules:  # depth-first search for a path back to start
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in edges[node]:
                if nxt == start:
                    circles.append(" -> ".join(path + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    # a package __init__ re-exporting its children is not a circle of ideas: only report real modules
    real = sorted({c for c in circles if not any(part.endswith("__init__") for part in c.split(" -> "))})
    assert not real, real[:10]


def test_pipeline_is_a_thin_compatibility_module():
    assert len((SRC / "pipeline.py").read_text().splitlines()) < 200


def test_fit_takes_a_spec():
    params = inspect.signature(wearprune.fit).parameters
    assert len(params) <= 8, list(params)
    spec = wearprune.FitSpec(device="nrf52840", max_latency_ms=5)
    assert wearprune.FitSpec.from_dict(spec.to_dict()) == spec
