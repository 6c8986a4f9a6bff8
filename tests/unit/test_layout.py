"""The package's shape, read from the source: no import circles, no import from a layer above,
and every framework implementing the whole Backend protocol.

The import graph is parsed (ast), not imported, and counts every import statement, also those
inside functions. Importing `a.b.c` runs the packages `a` and `a.b` first; those implicit edges
to a module's own parent packages are not counted, only the imports the code spells out. The
package root (`alexnet_lab`, the public face) is the exception: a module below that spells out
`import alexnet_lab` imports the top layer, and that edge counts.

Dispatch by name (`importlib.import_module(TABLE[name])`: frameworks.get_backend,
train.trainer_registry.get_trainer, the public face's lazy names, bench.worker) is an import the
statements do not show: in a module that calls `import_module`, every string literal naming a
package module is an edge too (`dispatch_edges`). Those edges count for circles; for layers they
do not, since a registry below naming its implementations above is what dispatch is for.
"""

from __future__ import annotations

import ast
import inspect
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "alexnet_lab"

# Lowest first. A module may import from its own layer and the layers below it, never above.
# Each layer lists module-name prefixes; the longest matching prefix decides a module's layer.
LAYERS: list[tuple[str, ...]] = [
    ("alexnet_lab.core", "alexnet_lab.resources"),  # numpy-only truths
    ("alexnet_lab.frameworks",),  # the Backend protocol and get_backend (no implementation)
    ("alexnet_lab.data", "alexnet_lab.weights"),  # images and weight files, framework-neutral
    ("alexnet_lab.frameworks.torch", "alexnet_lab.frameworks.keras"),  # the implementations
    ("alexnet_lab.inference",),  # predict (fp32/bf16/int8) and exports
    ("alexnet_lab.evaluate", "alexnet_lab.verify", "alexnet_lab.explain"),
    ("alexnet_lab.train",),  # the loop, its framework parts, the run folder, the demo
    ("alexnet_lab.bench", "alexnet_lab.serve"),
    ("alexnet_lab.cli", "alexnet_lab.__main__"),
    ("alexnet_lab",),  # the public face
]


def _modules(package: Path = PACKAGE) -> dict[str, tuple[Path, bool]]:
    """module name -> (file, is a package __init__)."""
    found = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _resolve(name: str, modules: dict) -> str:
    """The module that `name` (a module or a name inside one) lives in."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


ROOT = "alexnet_lab"


def _calls_import_module(tree: ast.AST) -> bool:
    return any(isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module")
               for node in ast.walk(tree))


def dispatch_edges(modules: dict | None = None) -> dict[str, set[str]]:
    """module -> the package modules it imports by name through importlib.import_module."""
    modules = _modules() if modules is None else modules
    graph: dict[str, set[str]] = defaultdict(set)
    for module, (path, _) in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        if _calls_import_module(tree):
            graph[module] |= {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                              and isinstance(node.value, str) and node.value in modules and node.value != module}
    return graph


def import_graph(dispatch: bool = False, modules: dict | None = None) -> dict[str, set[str]]:
    """module -> the package modules it imports (module level and inside functions alike; with
    `dispatch`, also those it imports by name, see dispatch_edges)."""
    modules = _modules() if modules is None else modules
    graph: dict[str, set[str]] = defaultdict(set)
    for module, (path, is_package) in modules.items():
        package = module if is_package else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from . import x / from ..y import z
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                found = _resolve(target, modules) if target.startswith(ROOT) else ""
                if found and found != module and (found == ROOT or not module.startswith(found + ".")):
                    graph[module].add(found)
    if dispatch:
        for module, targets in dispatch_edges(modules).items():
            graph[module] |= targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(root: str) -> None:
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def layer_of(module: str) -> int:
    best, depth = -1, -1
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = level, prefix.count(".")
    return best


def upward_edges(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{src} (layer {layer_of(src)}) imports {dst} (layer {layer_of(dst)})"
                  for src, targets in graph.items() for dst in targets if layer_of(dst) > layer_of(src))


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # weights.files reaches the frameworks' weight files through weight_io, imported at module level
    assert "alexnet_lab.frameworks.weight_io" in graph["alexnet_lab.weights.files"]
    # cli.train imports the training job only inside the command function
    assert "alexnet_lab.train.job" in graph["alexnet_lab.cli.train"]


# Edges that close a circle through dispatch, known and not yet removed (none now: weights/ reaches
# a framework only through frameworks.weight_io, whose modules import nothing from weights/). A
# new circle fails; should one have to be listed here, a removed one must leave the list.
KNOWN_DISPATCH_CIRCLE_EDGES: set[tuple[str, str]] = set()


def test_weights_reach_only_framework_parts_that_do_not_reach_back():
    """The one route (frameworks.<name>.model.build_model) sits above weights/; what weights/
    dispatches to (each framework's io and convert) never imports weights/ again."""
    graph = import_graph(dispatch=True)
    seen, todo = set(), ["alexnet_lab.frameworks.weight_io"]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    assert {"alexnet_lab.frameworks.torch.io", "alexnet_lab.frameworks.keras.convert"} <= seen
    # the tables (weights.catalog: model_cfg) may be read; the modules that load weights may not
    assert not sorted(m for m in seen if m.startswith("alexnet_lab.weights") and m != "alexnet_lab.weights.catalog"
                      and "alexnet_lab.weights.registry" != m)


def test_every_dispatch_table_lists_the_registry_names():
    from alexnet_lab.frameworks import FRAMEWORKS
    from alexnet_lab.frameworks.registry import ENTRIES
    from alexnet_lab.frameworks.weight_io import CONVERT_MODULES, IO_MODULES
    from alexnet_lab.train.trainer_registry import TRAINERS

    for table in (FRAMEWORKS, IO_MODULES, CONVERT_MODULES, TRAINERS):
        assert list(table) == list(ENTRIES)


def _without(graph: dict[str, set[str]], edges: set[tuple[str, str]]) -> dict[str, set[str]]:
    return {src: {dst for dst in targets if (src, dst) not in edges} for src, targets in graph.items()}


def circle_report(graph: dict[str, set[str]], allowed: set[tuple[str, str]] = frozenset()) -> list[str]:
    """One line per circle left once the `allowed` edges are taken out, each with its edges."""
    kept = _without(graph, set(allowed))
    lines = []
    for component in cycles(kept):
        members = set(component)
        edges = [f"{a} -> {b}" for a in component for b in sorted(kept.get(a, set()) & members)]
        lines.append(" <-> ".join(component) + "\n    " + "\n    ".join(edges))
    return lines


def test_no_import_cycles():
    found = circle_report(import_graph(dispatch=True), KNOWN_DISPATCH_CIRCLE_EDGES)
    assert not found, "import cycles (dispatch edges included):\n" + "\n".join(found)


def test_known_circle_edges_still_exist():
    """An allow-listed edge that is gone must leave the list, so the list stays the truth."""
    graph = import_graph(dispatch=True)
    gone = [edge for edge in sorted(KNOWN_DISPATCH_CIRCLE_EDGES) if edge[1] not in graph.get(edge[0], set())]
    assert not gone, f"remove from KNOWN_DISPATCH_CIRCLE_EDGES, no longer imported: {gone}"


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_graph_sees_the_dispatch_tables():
    edges = dispatch_edges()
    assert {"alexnet_lab.frameworks.torch", "alexnet_lab.frameworks.keras"} <= edges["alexnet_lab.frameworks"]
    assert {"alexnet_lab.train.torch", "alexnet_lab.train.keras"} <= edges["alexnet_lab.train.trainer_registry"]
    assert "alexnet_lab.frameworks" not in import_graph()["alexnet_lab.frameworks"]  # not a plain import


def _planted(tmp_path, files: dict[str, str]) -> dict:
    """A throwaway package `alexnet_lab` in tmp_path with `files` (path -> source), as _modules() reads it."""
    for name, source in files.items():
        path = tmp_path / ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return _modules(tmp_path / ROOT)


PLANTED = {
    "root import": {
        "__init__.py": "from alexnet_lab.low import helper\n",
        "low.py": "def helper():\n    import alexnet_lab\n    return alexnet_lab.__file__\n",
    },
    "dispatch": {
        "__init__.py": "",
        "registry.py": "import importlib\nTABLE = {'a': 'alexnet_lab.impl'}\n"
                       "def get(name):\n    return importlib.import_module(TABLE[name])\n",
        "impl.py": "from alexnet_lab.user import use\n",
        "user.py": "from alexnet_lab.registry import get\ndef use():\n    return get('a')\n",
    },
    "plain": {
        "__init__.py": "",
        "a.py": "from alexnet_lab import b\n",
        "b.py": "def f():\n    from alexnet_lab.a import g\n",
    },
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_a_planted_circle_of_each_kind_fails(tmp_path, kind):
    graph = import_graph(dispatch=True, modules=_planted(tmp_path, PLANTED[kind]))
    assert circle_report(graph), f"a planted {kind} circle went unseen: {dict(graph)}"
    assert circle_report(graph, KNOWN_DISPATCH_CIRCLE_EDGES)  # the allow-list does not excuse it


def test_a_dispatch_circle_is_invisible_without_dispatch_edges(tmp_path):
    assert not cycles(import_graph(modules=_planted(tmp_path, PLANTED["dispatch"])))


def test_the_package_root_is_an_edge_like_any_other():
    """verify.parity once imported `alexnet_lab` for its path: the top layer, from below."""
    graph = import_graph()
    assert not [m for m, targets in graph.items() if ROOT in targets and m != ROOT]


def test_every_module_has_a_layer():
    missing = [m for m in _modules() if layer_of(m) < 0]
    assert not missing, f"modules outside every layer (add them to LAYERS): {missing}"


def test_no_module_imports_from_a_layer_above():
    found = upward_edges(import_graph())  # plain imports only: dispatch names its implementations above
    assert not found, "imports from a layer above:\n" + "\n".join(found)


def test_framework_branches_stay_inside_the_frameworks():
    """No `framework == 'keras'`-style branching outside frameworks/, train/<framework>/ and
    the command line's argument checks: callers go through get_backend / get_trainer."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(("frameworks/", "train/torch/", "train/keras/", "cli/")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
                sides = [node.left, *node.comparators]
                named = any(isinstance(s, (ast.Name, ast.Attribute)) and "framework" in ast.unparse(s) for s in sides)
                literal = any(isinstance(s, ast.Constant) and s.value in ("torch", "keras") for s in sides)
                if named and literal:
                    offenders.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, "framework branches outside frameworks/:\n" + "\n".join(offenders)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_each_framework_implements_the_whole_protocol(framework):
    from alexnet_lab.frameworks import WEIGHT_SUFFIXES, get_backend
    from alexnet_lab.frameworks.protocol import Backend

    backend = get_backend(framework)
    assert isinstance(backend, Backend)
    assert backend.FRAMEWORK == framework
    assert backend.WEIGHT_SUFFIXES == WEIGHT_SUFFIXES[framework]  # the registry's entry, not a copy
    for name, member in vars(Backend).items():
        if name.startswith("_") or not callable(member):
            continue
        expected = list(inspect.signature(member).parameters)[1:]  # without self
        got = list(inspect.signature(getattr(backend, name)).parameters)
        assert got == expected, f"{framework}.{name}{got} differs from Backend.{name}{expected}"


def _mentioned_modules(module: str, is_package: bool, text: str) -> list[str]:
    """The modules a docstring names with :mod:`...` / :func:`...`, made absolute."""
    import re

    package = module if is_package else module.rpartition(".")[0]
    found = []
    for role, name in re.findall(r":(mod|func|class):`~?([\w.]+)`", text):
        if name.startswith("."):
            name = package + name
        elif not name.startswith(ROOT):
            continue
        found.append(name if role == "mod" else _resolve(name, _modules()))  # a function's own module
    return found


def test_docstrings_name_modules_that_exist():
    """A package's docstring once cited train/torch/loop.py and train/keras/loop.py, long gone."""
    modules = _modules()
    stale = [f"{module}: {name}" for module, (path, is_package) in modules.items()
             for name in _mentioned_modules(module, is_package, ast.get_docstring(ast.parse(path.read_text())) or "")
             if name not in modules]
    assert not stale, "docstrings citing modules that do not exist:\n" + "\n".join(stale)


# Where a framework's name may be written as a string: the registry and the implementations.
FRAMEWORK_HOMES = ("frameworks/", "train/torch/", "train/keras/",
                   "train/trainer_registry.py")  # the trainer registry: its module names are read as dispatch edges
# Files that still spell a framework's name, each with its reason: none now (issue #30; the CLI's
# defaults and help, the public signatures' default and benchmark's early device check ask the
# registry). A new file asks the registry instead (frameworks.registry NAMES, DEFAULT_FRAMEWORK,
# ENTRIES, WEIGHT_SUFFIXES); should one have to be listed here, give its reason.
FRAMEWORK_NAME_ALLOWED: dict[str, str] = {}
FRAMEWORK_NAMES = ("torch", "keras")  # what the check looks for (the test may spell them)


def framework_name_literals(package: Path = PACKAGE) -> dict[str, list[str]]:
    """file -> 'line: literal' for every string constant that is exactly a framework's name,
    docstrings left out (they may describe)."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel.startswith(FRAMEWORK_HOMES):
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in FRAMEWORK_NAMES and id(node) not in docstrings:
                found[rel].append(f"{node.lineno}: {node.value!r}")
    return found


def test_framework_names_live_in_the_registry():
    found = {rel: hits for rel, hits in framework_name_literals().items() if rel not in FRAMEWORK_NAME_ALLOWED}
    assert not found, ("framework names written outside frameworks/ (ask frameworks.FRAMEWORKS / DEFAULT_FRAMEWORK, "
                       "or add the file to FRAMEWORK_NAME_ALLOWED with its reason):\n"
                       + "\n".join(f"{rel}:{hit}" for rel, hits in found.items() for hit in hits))


def test_the_framework_name_allow_list_is_not_stale():
    found = framework_name_literals()
    stale = sorted(rel for rel in FRAMEWORK_NAME_ALLOWED if rel not in found)
    assert not stale, f"remove from FRAMEWORK_NAME_ALLOWED, no framework name left there: {stale}"


def test_a_planted_framework_name_fails(tmp_path):
    _planted(tmp_path, {"__init__.py": "", "evaluate/new.py": "def f(framework='keras'):\n    return framework\n",
                        "evaluate/described.py": '"""Runs in \'torch\' or \'keras\'."""\n'})
    assert framework_name_literals(tmp_path / ROOT) == {"evaluate/new.py": ["1: 'keras'"]}


def test_weight_files_read_the_registry():
    from alexnet_lab.frameworks import FRAMEWORKS, WEIGHT_SUFFIXES
    from alexnet_lab.weights.files import FORMAT_SUFFIXES

    assert set(WEIGHT_SUFFIXES) == set(FRAMEWORKS)
    assert all(FORMAT_SUFFIXES[name] == suffixes for name, suffixes in WEIGHT_SUFFIXES.items())
