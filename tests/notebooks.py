"""The book's notebook conventions (CONTRIBUTING.md), as code.

``python -m tests.notebooks`` lists every violation; ``--fix`` repairs what can
be repaired mechanically: it strips outputs and execution counts, rewrites
each chapter's Colab install cell from the repository URL in ``_config.yml``
(the one place that URL lives) and folds the check cells.

A *check cell* holds the asserts that verify a claim the prose just made.
Its first line states the claim, ``# Check: <what it verifies>``, and every
code cell with an ``assert`` is one. On the site a check cell is folded
(tag ``hide-input``, plus the tag ``check`` for its style) behind a toggle
that reads its statement (myst-nb's ``code_prompt_show``), so the page
reads as an argument and each piece of evidence is one click away; its
output, if any, stays visible. In Jupyter and on Colab the first line
says the same.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import uuid
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"

COLAB_TAGS = ["remove-cell"]
GPU_TAG = "gpu"
GPU_BUILD_TAG = "skip-execution"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
CHECK_PREFIX = "# Check: "
CHECK_TAGS = ["hide-input", "check"]
REQUIRE_CHECK_CELLS = True
ASSERTS = re.compile(r"^\s*assert\b", re.M)


def check_statement(cell: dict) -> str | None:
    """The claim a check cell states on its first line, else ``None``."""
    first = source(cell).split("\n", 1)[0]
    if first.startswith(CHECK_PREFIX) and first[len(CHECK_PREFIX):].strip():
        return first[len(CHECK_PREFIX):].strip()
    return None


def check_metadata(statement: str) -> dict:
    """The myst-nb prompts of a folded check cell stating ``statement``."""
    return {"code_prompt_show": f"Check: {statement}",
            "code_prompt_hide": f"Check: {statement}"}


def repository_url() -> str:
    """The repository URL, read from its single home: ``_config.yml``."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"].rstrip("/")


def colab_cell_source(url: str) -> str:
    """The first cell of every chapter: installs lstmlib on Colab, nowhere else."""
    return (
        "# On Google Colab only: install the book's companion library, lstmlib.\n"
        "import sys\n"
        "if \"google.colab\" in sys.modules:\n"
        f"    %pip install --quiet \"lstmlib @ git+{url}\"")


def notebooks() -> list[Path]:
    """Every notebook of the book (not build copies or checkpoints)."""
    return sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def has_code(nb: dict) -> bool:
    return any(c["cell_type"] == "code" for c in nb["cells"])


def source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def tags(cell: dict) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


# A seed written as a number in a chapter: it would not move with
# LSTMLIB_SEED, so the chapter's checks would hold for one stream only.
# Seeds come from lstmlib.seed(offset), lstmlib.seeds(K, offset),
# lstmlib.manual_seed(offset) or lstmlib.generator(offset).
FIXED_SEED = re.compile(r"((?<!lstmlib\.)manual_seed|default_rng|RandomState)"
                        r"\(\s*\d"
                        r"|\bseed\s*=\s*\d")


# A committed result read by a path relative to the working folder: on
# Colab (working folder /content) or from an installed lstmlib there is no
# such folder. Chapters read results with lstmlib.load_result/result_path,
# which find them inside the installed package (lstmlib/results/).
RESULT_BY_PATH = re.compile(r"""["'](?:\.{1,2}/)*(?:book/)?data/"""
                            r"""|Path\(\s*["'](?:book/)?data["']"""
                            r"""|benchmarks/results|["']benchmarks["']\s*/"""
                            r"|lstmlib/results|\bPath\.cwd\(\)|\bos\.getcwd\(\)")


# A cell tagged gpu skips itself where there is no CUDA, so that "Run all"
# completes on any kernel: its whole body is
#
#     if torch.cuda.is_available():
#         ...                                # the GPU work
#     else:
#         print("skipped: no CUDA here; on a GPU this cell ... (about ...)")
GPU_GUARD = "torch.cuda.is_available()"
GPU_SKIP_PREFIX = "skipped: no CUDA here"


def gpu_cell_problems(code: str) -> list[str]:
    """What keeps a gpu cell's code from skipping itself, as above: a
    ``raise`` or ``assert`` instead of the ``else``, another statement
    outside the ``if``, or an ``else`` that does not print one line
    starting with :data:`GPU_SKIP_PREFIX`."""
    try:
        body = ast.parse(code).body
    except SyntaxError as error:
        return [f"does not parse ({error.msg})"]
    guards = [node for node in body if isinstance(node, ast.If)
              and ast.unparse(node.test) == GPU_GUARD]
    unguarded = [node for node in body if node not in guards]
    unguarded += [node for guard in guards for node in guard.orelse]
    if any(isinstance(inner, (ast.Raise, ast.Assert))
           for node in unguarded for inner in ast.walk(node)):
        return ["raises without CUDA; it must skip itself: "
                f"if {GPU_GUARD}: ... else: print(\"{GPU_SKIP_PREFIX}; ...\")"]
    if len(body) != 1 or guards != body:
        return [f"is not one 'if {GPU_GUARD}: ... else: ...' statement"]
    guard = guards[0]
    skip = guard.orelse[0] if len(guard.orelse) == 1 else None
    message = None
    if (isinstance(skip, ast.Expr) and isinstance(skip.value, ast.Call)
            and ast.unparse(skip.value.func) == "print"
            and len(skip.value.args) == 1
            and isinstance(skip.value.args[0], ast.Constant)):
        message = skip.value.args[0].value
    if not (isinstance(message, str) and message.startswith(GPU_SKIP_PREFIX)
            and "\n" not in message):
        return [f"its else does not print one line '{GPU_SKIP_PREFIX}; on "
                "a GPU this cell ... (about ...)'"]
    return []


def problems(nb: dict, url: str) -> list[str]:
    """Everything in one notebook that breaks the conventions."""
    found = []
    if nb.get("metadata", {}).get("kernelspec") != KERNELSPEC:
        found.append(f"metadata: kernelspec must be {KERNELSPEC}")
    ids = [cell.get("id") for cell in nb["cells"]]
    if None in ids or len(set(ids)) != len(ids):
        found.append("cells: every cell needs an id of its own (nbformat "
                     "4.5); python -m tests.notebooks --fix adds them")
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {i}: committed with outputs")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i}: committed with an execution count")
        fixed = FIXED_SEED.search(source(cell))
        if fixed:
            found.append(f"cell {i}: a fixed seed ({fixed.group(0)}...); use "
                         "lstmlib.seed/seeds/manual_seed/generator, which "
                         "follow LSTMLIB_SEED")
        by_path = RESULT_BY_PATH.search(source(cell))
        if by_path:
            found.append(f"cell {i}: reads a committed result by a path "
                         f"({by_path.group(0)}...); use lstmlib.load_result "
                         "or lstmlib.result_path, which find it wherever "
                         "the chapter runs")
        statement = check_statement(cell)
        if (REQUIRE_CHECK_CELLS and ASSERTS.search(source(cell))
                and statement is None):
            found.append(f"cell {i}: asserts but does not start with "
                         f"'{CHECK_PREFIX}<the claim it verifies>'")
        if statement is not None:
            missing = [t for t in CHECK_TAGS if t not in tags(cell)]
            if missing or cell["metadata"].get("mystnb", {}).get(
                    "code_prompt_show") != f"Check: {statement}":
                found.append(f"cell {i}: a check cell not folded (tags "
                             f"{CHECK_TAGS} and its statement as the "
                             "toggle's text); --fix folds it")
            if not ASSERTS.search(source(cell)):
                found.append(f"cell {i}: '{CHECK_PREFIX}...' but no assert")
        if GPU_TAG in tags(cell):
            if GPU_BUILD_TAG not in tags(cell):
                found.append(f"cell {i}: tagged '{GPU_TAG}' but not '{GPU_BUILD_TAG}'")
            found += [f"cell {i}: tagged '{GPU_TAG}' but {problem}"
                      for problem in gpu_cell_problems(source(cell))]
    if has_code(nb):
        first = nb["cells"][0]
        if first["cell_type"] != "code" or source(first) != colab_cell_source(url):
            found.append("cell 0: not the Colab install cell for " + url +
                         " (python -m tests.notebooks --fix writes it)")
        elif tags(first) != COLAB_TAGS:
            found.append(f"cell 0: the Colab install cell must be tagged {COLAB_TAGS}, "
                         f"has {tags(first)}")
    return found


def fix(nb: dict, url: str) -> dict:
    """Strip outputs and execution counts; put the current Colab cell first;
    set the kernelspec."""
    nb.setdefault("metadata", {})["kernelspec"] = dict(KERNELSPEC)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
            statement = check_statement(cell)
            if statement is not None:
                metadata = cell.setdefault("metadata", {})
                metadata["tags"] = list(dict.fromkeys(
                    metadata.get("tags", []) + CHECK_TAGS))
                metadata.setdefault("mystnb", {}).update(
                    check_metadata(statement))
        cell.get("metadata", {}).pop("execution", None)
    if has_code(nb):
        colab = {"cell_type": "code", "execution_count": None, "outputs": [],
                 "metadata": {"tags": list(COLAB_TAGS)}, "source": colab_cell_source(url)}
        first = nb["cells"][0]
        if first["cell_type"] == "code" and "google.colab" in source(first):
            colab["id"] = first.get("id", "colab-install")
            nb["cells"][0] = colab
        else:
            colab["id"] = "colab-install"
            nb["cells"].insert(0, colab)
    seen = set()
    for cell in nb["cells"]:                    # an id of its own each
        while cell.get("id") in seen or not cell.get("id"):
            cell["id"] = uuid.uuid4().hex[:8]
        seen.add(cell["id"])
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fix", action="store_true", help="repair what can be repaired")
    args = parser.parse_args(argv)
    url = repository_url()
    status = 0
    for path in notebooks():
        nb = json.loads(path.read_text())
        if args.fix:
            nb = fix(nb, url)
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        for problem in problems(nb, url):
            print(f"{path.relative_to(ROOT)}: {problem}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
