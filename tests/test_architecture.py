"""lstmlib's architecture, checked from its source: folders by role, no
import circle (imports inside functions included), no private name used
outside the module that defines it, and kernels that import no cell."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lstmlib"
FOLDERS = ("cells", "analysis", "networks", "experiments", "commands",
           "display")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict:
    """Every module of lstmlib: dotted name → parsed source."""
    return {module_name(p): ast.parse(p.read_text(), str(p))
            for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module name of a ``from ... import`` in ``importer``."""
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(found: dict) -> dict:
    """importer → {(imported module, names)} for every import statement,
    at any depth (imports inside functions count)."""
    graph = {}
    for name, tree in found.items():
        is_package = (PACKAGE / Path(*name.split(".")[1:]) / "__init__.py"
                      ).exists() or name == "lstmlib"
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = resolve(name, is_package, node)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    edges.add((sub if sub in found else target, alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    edges.add((alias.name, None))
        graph[name] = {(t, n) for t, n in edges if t.startswith("lstmlib")}
    return graph


FOUND = modules()
GRAPH = imports(FOUND)


def test_the_folders_are_the_roles():
    for folder in FOLDERS:
        assert (PACKAGE / folder / "__init__.py").is_file(), folder
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == {"__init__.py", "_checks.py", "seeds.py", "records.py"}


def test_no_import_circle():
    """Depth-first search for a cycle among lstmlib's modules, the package
    ``__init__`` files excluded (importing a package's ``__init__`` from
    below is how Python works, and they only re-export)."""
    def is_package(t):
        return t == "lstmlib" or (PACKAGE / Path(*t.split(".")[1:]) /
                                  "__init__.py").exists()

    edges = {m: {t for t, _ in GRAPH[m]
                 if t in FOUND and t != m and not is_package(t)}
             for m in GRAPH}
    state, path = {}, []

    def visit(m):
        state[m] = "open"
        path.append(m)
        for t in edges[m]:
            if state.get(t) == "open":
                cycle = path[path.index(t):] + [t]
                pytest.fail("import circle: " + " → ".join(cycle))
            if t not in state:
                visit(t)
        path.pop()
        state[m] = "done"

    for m in edges:
        if m not in state:
            visit(m)


def test_the_package_init_files_import_nothing_but_the_top_level_one():
    for name, tree in FOUND.items():
        if name.endswith(FOLDERS) and name != "lstmlib":
            assert GRAPH[name] == set(), name


def test_no_private_name_is_imported_across_modules():
    for name, edges in GRAPH.items():
        private = [(t, n) for t, n in edges
                   if n and n.startswith("_") and n != "__version__"]
        assert private == [], f"{name} imports {private}"


def test_no_private_attribute_of_another_module_is_used():
    """``module._name`` in lstmlib: only on a module it imported under
    its own name, e.g. ``kernels._project`` (torch's ``torch._C`` and
    the like are outside lstmlib and not counted)."""
    for name, tree in FOUND.items():
        local_modules = {alias.asname or alias.name
                         for node in ast.walk(tree)
                         if isinstance(node, ast.ImportFrom)
                         for alias in node.names
                         if f"{resolve(name, False, node)}.{alias.name}"
                         in FOUND}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in local_modules):
                assert not node.attr.startswith("_"), (name, node.attr)


def test_kernels_import_no_cell():
    targets = {t for t, _ in GRAPH["lstmlib.cells.kernels"]}
    assert targets <= {"lstmlib.cells.activations"}, targets


def test_the_library_does_not_import_its_command_lines():
    for name, edges in GRAPH.items():
        if not name.startswith("lstmlib.commands"):
            assert not any(t.startswith("lstmlib.commands")
                           for t, _ in edges), name
