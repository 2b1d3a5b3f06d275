"""The Colab edition (``colab/build.py``): every chapter, as plain Markdown
that a CommonMark renderer shows with no MyST syntax left, its equations and
code intact, and the committed copy up to date with the chapters."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import nbformat
import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from colab import build
from tests import notebooks

ROOT = build.ROOT
REGENERATE = ".venv/bin/python -m colab.build"

COMMONMARK = MarkdownIt("commonmark")          # what Jupyter and Colab parse
WITH_MATH = MarkdownIt("commonmark").use(dollarmath_plugin)

# MyST that CommonMark renders as text or code, found in its HTML.
LEFTOVERS = {
    "role": re.compile(r"\{[\w:.+-]+\}<code>"),
    "directive fence": re.compile(r"<code class=\"language-\{"),
    "colon fence": re.compile(r"(?:^|\n|>):{3,}"),
    "target": re.compile(r"(?:^|\n|>)\([^()\s]+\)="),
    "labelled equation": re.compile(r"\$\$\s*\([^()\s]+\)"),
    "directive option": re.compile(r"(?:^|\n|>):[\w-]+:(?:\s|<|$)"),
}
CODE = re.compile(r"<pre>.*?</pre>|<code>.*?</code>", re.S)


def leftovers(markdown: str) -> list[str]:
    """The MyST constructs left in ``markdown``, rendered as CommonMark."""
    html = COMMONMARK.render(markdown)
    found = [name for name in ("role", "directive fence") if LEFTOVERS[name].search(html)]
    text = CODE.sub("", html)
    found += [name for name, pattern in LEFTOVERS.items()
              if name not in ("role", "directive fence") and pattern.search(text)]
    if html.count("<details>") != html.count("</details>"):
        found.append("unbalanced <details>")
    return found


def source(cell: dict) -> str:
    return notebooks.source(cell)


FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}|:{3,})(.*)$")
CODE_SPAN = re.compile(r"(`+).+?(?<!`)\1(?!`)", re.S)
DISPLAY = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$", re.S)
INLINE = re.compile(r"(?<![\\$])\$(?!\$)((?:\\.|[^$\\])+?)(?<!\\)\$", re.S)


def prose(markdown: str) -> str:
    """``markdown`` without its code: code blocks go, directive fences are
    unwrapped (their bodies are Markdown), code spans go."""
    lines, out, closing = markdown.split("\n"), [], []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if closing and re.fullmatch(r" {0,3}" + re.escape(closing[-1]) + r"+\s*", lines[i]):
            closing.pop()                              # the end of a directive
        elif fence and fence.group(2).lstrip().startswith("{"):
            closing.append(fence.group(1))             # a directive: keep its body
        elif fence and fence.group(1)[0] != ":":       # a code block: drop it
            end = re.compile(r" {0,3}" + re.escape(fence.group(1)) + r"+\s*")
            i += 1
            while i < len(lines) and not end.fullmatch(lines[i]):
                i += 1
        else:
            out.append(lines[i])
        i += 1
    return CODE_SPAN.sub("", "\n".join(out))


def normal(tex: str, macros: dict) -> str:
    """TeX with the site's macros expanded and the edition's \\tag taken off."""
    tex = re.sub(r"\\tag\{[^{}]*\}", "", tex)
    for name, value in macros.items():
        tex = re.sub(r"\\" + name + r"(?![A-Za-z])", lambda _: value, tex)
    return " ".join(tex.split())


def maths(markdown: str, macros: dict) -> Counter:
    """The display ($$) and inline ($) maths of ``markdown``'s prose, as
    written."""
    text = prose(markdown)
    found = Counter(("display", normal(m.group(1), macros)) for m in DISPLAY.finditer(text))
    text = DISPLAY.sub(" ", text)
    found += Counter(("inline", normal(m.group(1), macros)) for m in INLINE.finditer(text))
    return found


def parsed_maths(markdown: str, macros: dict) -> Counter:
    """The maths a CommonMark parser with dollar maths (as Jupyter reads
    a cell) finds in ``markdown``."""
    found = Counter()

    def walk(tokens):
        for token in tokens:
            if token.type.startswith("math"):
                kind = "inline" if token.type == "math_inline" else "display"
                found[kind, normal(token.content, macros)] += 1
            walk(token.children or [])

    walk(WITH_MATH.parse(markdown))
    return found


@pytest.fixture(scope="module")
def edition() -> dict:
    return build.build(ROOT)


@pytest.fixture(scope="module")
def pairs(edition) -> list:
    """(name, chapter, its edition), for every chapter."""
    return [(name, json.loads((ROOT / name).read_text()), json.loads(text))
            for name, text in sorted(edition.items())]


def test_every_chapter_has_a_colab_notebook(edition):
    assert sorted(edition) == [p.relative_to(ROOT).as_posix() for p in build.chapters()]
    assert len(edition) >= 20


def test_the_notebooks_are_valid_and_start_with_the_colab_cell(pairs):
    url = notebooks.repository_url()
    for name, _, nb in pairs:
        nbformat.validate(nbformat.from_dict(nb))
        ids = [cell["id"] for cell in nb["cells"]]
        assert len(set(ids)) == len(ids), name
        if notebooks.has_code(nb):
            assert source(nb["cells"][0]) == notebooks.colab_cell_source(url), name


def test_code_cells_are_copied_unchanged(pairs):
    for name, chapter, nb in pairs:
        def code(book):
            return [(c["id"], source(c), c["outputs"], c["execution_count"])
                    for c in book["cells"] if c["cell_type"] == "code"]
        assert code(nb) == code(chapter), name


def test_no_myst_syntax_is_left(pairs):
    """Each Markdown cell rendered as CommonMark shows no role, directive,
    option, target or equation label."""
    problems = []
    for name, _, nb in pairs:
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown":
                problems += [f"{name}, cell {cell['id']}: {what}"
                             for what in leftovers(source(cell))]
    assert problems == []


def test_the_check_finds_myst_syntax(pairs):
    """The check above fails on the chapters themselves, on each kind of
    construct."""
    sample = "\n\n".join([
        "See {doc}`gates`.", "```{note}\nText\n```", ":::{exercise}\nText\n:::",
        "(a-label)=\n# Title", "$$\nx\n$$ (eq-label)", ":::{exercise}\n:label: ex-1\nText\n:::",
        "```{solution-start} ex-1\n:class: dropdown\n```\n\nText"])
    assert set(leftovers(sample)) == set(LEFTOVERS)
    assert leftovers("<details>\n<summary>S</summary>\n\nText") == ["unbalanced <details>"]
    chapters = [source(c) for _, chapter, _ in pairs for c in chapter["cells"]
                if c["cell_type"] == "markdown"]
    assert sum(bool(leftovers(text)) for text in chapters) > len(pairs)


def test_equations_survive(pairs):
    """The same maths as the chapter, figure captions' included, and a
    number on each labelled equation."""
    config = build.read_config(ROOT)
    total = 0
    for name, chapter, nb in pairs:
        expected, labelled = Counter(), 0
        for cell in chapter["cells"]:
            if cell["cell_type"] == "markdown":
                expected += maths(source(cell), config.macros)
                labelled += len(re.findall(r"^\$\$\s*\([^()\s]+\)\s*$", source(cell), re.M))
            caption = cell["metadata"].get("mystnb", {}).get("figure", {}).get("caption")
            if cell["cell_type"] == "code" and caption:
                expected += maths(caption, config.macros)
        converted = "\n\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
        total += sum(expected.values())
        # the maths of the edition's own text, not of the titles its links show
        # (the source has those as role text, which maths() leaves out)
        own = re.sub(r"\[(?:\\.|[^\[\]\\])*\]\(" + re.escape(config.site), "(", converted)
        assert maths(own, config.macros) == expected, name
        for cell in nb["cells"]:                 # and a Markdown parser sees them
            if cell["cell_type"] == "markdown":
                assert parsed_maths(source(cell), config.macros) == \
                    maths(source(cell), config.macros), f"{name}, cell {cell['id']}"
        tags = re.findall(r"\\tag\{([^{}]*)\}", converted)
        assert len(tags) == labelled and len(set(tags)) == len(tags), name
        assert all(re.fullmatch(r"(\d+\.)?\d+", tag) for tag in tags), name
    assert total > 1000                       # the book's maths was found at all


def test_links_lead_to_pages_of_the_site(pairs):
    config = build.read_config(ROOT)
    pages = {doc for doc, _ in config.docs}
    link = re.compile(r"\]\(" + re.escape(config.site) + r"([^)#]+)\.html(#[^)]*)?\)")
    for name, _, nb in pairs:
        text = "\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
        targets = link.findall(text)
        assert targets, name                   # at least the note under the title
        assert {page for page, _ in targets} <= pages, name


def test_the_edition_is_deterministic(edition):
    assert build.build(ROOT) == edition


def test_the_committed_edition_is_up_to_date(edition):
    """Colab opens the committed files; a chapter edited without
    regenerating them fails here."""
    stale = build.stale(edition, ROOT / build.EDITION)
    assert stale == [], f"the Colab edition is stale; run {REGENERATE}"


# -- the conversions, on a small book ------------------------------------------------
def write_book(root: Path, cells_a: list, cells_b: list | None = None) -> None:
    (root / "book").mkdir(parents=True)
    (root / "_config.yml").write_text(
        "title: A book\nrepository:\n  url: https://github.com/someone/a-book\n"
        "html:\n  baseurl: https://example.org/a-book\n"
        "bibtex_bibfiles: [book/refs.bib]\n"
        "sphinx:\n  config:\n    mathjax3_config:\n      tex:\n        macros:\n"
        "          R: \"\\\\mathbb{R}\"\n")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/index\nparts:\n"
        "  - caption: One\n    numbered: true\n    chapters:\n"
        "      - file: book/a\n      - file: book/b\n")
    (root / "book" / "index.md").write_text("# A book\n")
    (root / "book" / "refs.bib").write_text(
        "@article{smith2020,\n  author = {Smith, Ann and M{\\\"u}ller, Bo},\n"
        "  title = {A title},\n  journal = {J},\n  year = {2020}\n}\n"
        "@article{lee2019,\n  author = {Lee, C and Kim, D and Park, E},\n"
        "  title = {Another},\n  journal = {K},\n  year = {2019}\n}\n")
    for name, cells in (("a", cells_a), ("b", cells_b or [md("# B\n\nText.")])):
        nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        (root / "book" / f"{name}.ipynb").write_text(json.dumps(nb))


def md(text: str, ident: str = "") -> dict:
    return {"cell_type": "markdown", "id": ident or f"m{abs(hash(text)) % 10**7:07d}",
            "metadata": {}, "source": text}


def code(text: str, ident: str, **metadata) -> dict:
    return {"cell_type": "code", "id": ident, "metadata": metadata, "outputs": [],
            "execution_count": None, "source": text}


def convert(tmp_path: Path, cells_a: list, cells_b: list | None = None) -> list:
    write_book(tmp_path, cells_a, cells_b)
    return json.loads(build.build(tmp_path)["book/a.ipynb"])["cells"]


def test_conversions(tmp_path):
    cells = convert(tmp_path, [
        md("(a-top)=\n# Alpha\n\nSee {doc}`b`, {ref}`a-top`, {eq}`a-eq` and "
           "{numref}`a-ex`; {cite:t}`smith2020` and {cite}`smith2020,lee2019`; "
           "`{doc}` in code stays.\n\n$$\nx \\in \\R\n$$ (a-eq)\n\n"
           ":::{prf:theorem} Big\n:label: a-thm\nBody.\n:::\n\n"
           "```{note}\nA note with $y$.\n```\n\n## Exercises\n\n"
           ":::{exercise}\n:label: a-ex\nDo it.\n:::\n\n"
           "```{solution-start} a-ex\n:class: dropdown\n```\nFirst part."),
        code("x = 1", "c1"),
        md("More.\n```{solution-end}\n```\n\nAfter {prf:ref}`a-thm`.\n\n"
           "## References\n\n```{bibliography}\n:filter: docname in docnames\n```"),
        code("plot()", "c2", tags=["hide-input"],
             mystnb={"figure": {"caption": "A curve of $z$.", "name": "a-fig"}}),
    ])
    text = [source(c) for c in cells]
    site = "https://example.org/a-book/book/"
    assert text[0].startswith("# 1. Alpha\n\n> *A book*, Colab edition")
    assert f"See [B]({site}b.html), [Alpha]({site}a.html#a-top), " \
           f"[(1.1)]({site}a.html#equation-a-eq) and [Exercise 1.1]({site}a.html#a-ex)" in text[0]
    assert "Smith and Müller \\[2020\\] and \\[Smith and Müller, 2020, Lee et al., 2019\\]" \
        in text[0]
    assert "`{doc}` in code stays" in text[0]
    assert "$$\nx \\in \\mathbb{R}\n\\tag{1.1}\n$$" in text[0]
    assert "**Theorem 1.1** (Big)\n\nBody." in text[0]
    assert "> **Note**\n>\n> A note with $y$." in text[0]
    assert "### Exercise 1.1\n\nDo it." in text[0]
    assert text[0].endswith("<details>\n<summary>Solution to Exercise 1.1</summary>\n\n"
                            "First part.\n\n</details>")
    assert cells[1]["metadata"] == {"cellView": "form", "jupyter": {"source_hidden": True}}
    assert text[2].startswith("<details>\n<summary>Solution to Exercise 1.1 (continued)"
                              "</summary>\n\nMore.\n\n</details>\n\nAfter "
                              f"[Theorem 1.1]({site}a.html#a-thm).")
    nbsp = "\u00a0"                             # pybtex's, between name parts
    assert (f"## References\n\n- **\\[LKP19\\]** C{nbsp}Lee, D{nbsp}Kim, and E{nbsp}Park. "
            f"Another. *K*, 2019.\n- **\\[SMuller20\\]** Ann Smith and Bo{nbsp}Müller. "
            "A title. *J*, 2020.") in text[2]
    assert cells[3]["metadata"]["cellView"] == "form"
    assert text[4] == "**Fig. 1.1.** A curve of $z$."
    assert all(leftovers(t) == [] for t in text)


@pytest.mark.parametrize("markup, message", [
    ("{ref}`nowhere`", "unknown label 'nowhere'"),
    ("{doc}`missing`", "not a page of the book"),
    ("{cite}`nobody2000`", "not in the bibliography"),
    ("{kbd}`C-c`", "the role {kbd} has no conversion"),
    ("```{figure} x.png\n```", "the directive {figure} has no conversion"),
    (":::{exercise}\n:dropdown:\nText\n:::", "options ['dropdown'] have no conversion"),
    ("```{solution-start} a-ex\n```\nText", "a solution does not end"),
])
def test_unknown_markup_stops_the_build(tmp_path, markup, message):
    """What the edition cannot convert is an error that names the chapter,
    not MyST left in a reader's notebook."""
    with pytest.raises(build.ConversionError, match=re.escape(message)) as error:
        convert(tmp_path, [md("# Alpha\n\n:::{exercise}\n:label: a-ex\nX\n:::\n\n" + markup)])
    assert "book/a" in str(error.value)
