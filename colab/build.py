"""The Colab edition: every chapter as a notebook that plain Jupyter renders.

The chapters (``book/*.ipynb``) are written in MyST Markdown: exercises and
solutions, theorems, admonitions, ``{doc}``/``{ref}``/``{eq}``/``{cite}``
roles, ``(label)=`` targets and labelled equations. Jupyter Book renders
them; Colab and Jupyter render Markdown cells as CommonMark, where all of
that shows up as raw markup. This module writes a copy of each chapter,
``colab/book/<chapter>.ipynb``, whose Markdown cells are plain Markdown:

- exercises become headings ("Exercise 8.1", numbered as on the site);
  solutions are folded in ``<details>``, and their code cells are collapsed
  (``cellView: form`` on Colab, ``source_hidden`` in JupyterLab);
- theorems, definitions and proofs become a bold lead-in ("Theorem 7.1
  (title)"), admonitions a quotation or a ``<details>`` (dropdowns);
- cross-references become links to the book's site, with the text the site
  shows: a chapter's title, "(8.1)", "Exercise 3.2", "Theorem 7.1";
- citations read "Hochreiter and Schmidhuber [1997]" / "[Bengio et al.,
  2013]", and each chapter's reference list is written out;
- ``(label)=`` targets are dropped, labelled equations keep their number as
  a ``\\tag``, and the site's MathJax macros (``_config.yml``) are expanded;
- a figure's caption (``mystnb.figure`` metadata) follows its code cell.

Code cells are copied unchanged (their sources and ids; cells the site hides,
``hide-input``/``remove-input``, are collapsed), the Colab install cell
included. Anything this module does not know how to convert stops it with an
error naming the chapter, so no MyST syntax reaches a reader unconverted
(``tests/test_colab_edition.py`` renders every cell with a CommonMark
renderer and checks).

The launch buttons open these files on GitHub, so they are committed:
regenerate them after editing a chapter with

    .venv/bin/python -m colab.build            # writes colab/book/*.ipynb
    .venv/bin/python -m colab.build --check    # exit 1 if they are stale
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import posixpath
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EDITION = "colab"               # the edition's folder, relative to the root

# -- syntax -------------------------------------------------------------------
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[^}\s]+)\}\s*(?P<arg>.*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):(?:\s+(?P<value>.*))?$")
TARGET = re.compile(r"^ {0,3}\((?P<label>[^()\s]+)\)=\s*$")
HEADING = re.compile(r"^ {0,3}(?P<hashes>#{1,6})\s+(?P<title>.*?)\s*#*\s*$")
MATH_OPEN = re.compile(r"^ {0,3}\$\$")
MATH_CLOSE = re.compile(r"\$\$\s*(?:\((?P<label>[^()\s]+)\))?\s*$")
ROLE_NAME = re.compile(r"\{(?P<name>[\w:.+-]+)\}$")
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)

PROOF_TYPES = {                 # sphinx-proof: prf:<type>, numbered per type
    "theorem": "Theorem", "lemma": "Lemma", "proposition": "Proposition",
    "corollary": "Corollary", "definition": "Definition", "conjecture": "Conjecture",
    "example": "Example", "remark": "Remark", "property": "Property",
    "observation": "Observation", "axiom": "Axiom", "criterion": "Criterion",
    "algorithm": "Algorithm", "assumption": "Assumption", "notation": "Notation",
}
ADMONITIONS = {
    "note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important",
    "warning": "Warning", "caution": "Caution", "attention": "Attention",
    "danger": "Danger", "error": "Error", "seealso": "See also", "admonition": None,
}
# Directive options that change nothing in the edition.
IGNORED_OPTIONS = {"label", "class", "name", "nonumber"}
HIDDEN_INPUT_TAGS = {"hide-input", "remove-input"}
REFERENCES = "\x00references\x00"   # where a chapter's reference list goes


class ConversionError(ValueError):
    """MyST markup the edition cannot convert (names the chapter and cell)."""


# -- configuration --------------------------------------------------------------
@dataclasses.dataclass
class Config:
    root: Path
    title: str                  # the book's title
    site: str                   # the site's base URL, ending with "/"
    macros: dict                # MathJax macros without arguments: name -> TeX
    bibfiles: list              # BibTeX files, relative to the root
    bibstyle: str               # pybtex formatting style of the reference lists
    extensions: dict            # Sphinx local extensions: module -> folder
    docs: list                  # (docname, chapter number or None), book order


def site_url(config: dict) -> str:
    """The site's base URL: ``html.baseurl`` in ``_config.yml``, else the
    GitHub Pages address of the repository named there."""
    base = (config.get("html") or {}).get("baseurl") or ""
    if not base:
        match = re.match(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?$",
                         config["repository"]["url"])
        if not match:
            raise ConversionError("_config.yml: set html.baseurl, the address of the "
                                  "book's site (the edition links to it)")
        base = f"https://{match.group(1).lower()}.github.io/{match.group(2)}/"
    return base.rstrip("/") + "/"


def toc_docs(toc: dict) -> list:
    """Every document of ``_toc.yml`` in book order, with its chapter number
    (numbered parts count on from each other, as the site numbers them)."""
    docs, number = [(toc["root"], None)], 0
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            if "file" not in chapter:
                continue
            if part.get("numbered"):
                number += 1
                docs.append((chapter["file"], number))
            else:
                docs.append((chapter["file"], None))
    for chapter in toc.get("chapters", []):
        if "file" in chapter:
            docs.append((chapter["file"], None))
    return docs


def read_config(root: Path = ROOT) -> Config:
    config = yaml.safe_load((root / "_config.yml").read_text())
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    sphinx = ((config.get("sphinx") or {}).get("config") or {})
    raw = (((sphinx.get("mathjax3_config") or {}).get("tex") or {}).get("macros") or {})
    macros = {}
    for name, value in raw.items():
        if not isinstance(value, str):
            raise ConversionError(f"_config.yml: MathJax macro \\{name} takes arguments; "
                                  "the edition expands only macros without")
        macros[name] = value
    return Config(root=root, title=config.get("title", ""), site=site_url(config),
                  macros=macros,
                  bibfiles=list(config.get("bibtex_bibfiles", [])),
                  bibstyle=sphinx.get("bibtex_default_style", "alpha"),
                  extensions=dict(((config.get("sphinx") or {}).get("local_extensions")
                                   or {})),
                  docs=toc_docs(toc))


class _QuietApp:
    """Enough of a Sphinx application for a local extension's ``setup`` to
    register what it registers with pybtex (its calls to Sphinx do nothing)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def load_extensions(config: Config) -> None:
    """Import the book's local Sphinx extensions, which may register the
    pybtex style the site's reference lists use."""
    import importlib

    for module, folder in config.extensions.items():
        path = str((config.root / folder).resolve())
        if path not in sys.path:
            sys.path.insert(0, path)
        importlib.import_module(module).setup(_QuietApp())


# -- reading documents ------------------------------------------------------------
def cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def doc_path(root: Path, docname: str) -> Path:
    for suffix in (".ipynb", ".md"):
        if (root / (docname + suffix)).exists():
            return root / (docname + suffix)
    raise ConversionError(f"_toc.yml names {docname}, which has no .ipynb or .md file")


def markdown_texts(root: Path, docname: str) -> list:
    """The Markdown of a document: its Markdown cells, or the whole page."""
    path = doc_path(root, docname)
    if path.suffix == ".md":
        text = path.read_text()
        if text.startswith("---\n"):                   # front matter
            end = text.find("\n---\n", 4)
            text = text[end + 5:] if end >= 0 else text
        return [text]
    nb = json.loads(path.read_text())
    return [cell_source(c) for c in nb["cells"] if c["cell_type"] == "markdown"]


# -- block structure ----------------------------------------------------------------
@dataclasses.dataclass
class Text:
    text: str


@dataclasses.dataclass
class Code:                     # a fenced code block, copied as it is
    text: str


@dataclasses.dataclass
class Target:
    label: str


@dataclasses.dataclass
class Math:
    body: str                   # the TeX between the $$ lines
    label: str | None


@dataclasses.dataclass
class Directive:
    name: str
    arg: str
    options: dict
    body: str


def parse_blocks(text: str) -> list:
    """Split MyST Markdown into text, code fences, targets, display maths and
    directives (the bodies of directives stay unparsed)."""
    lines = text.split("\n")
    blocks, buffer, i = [], [], 0

    def flush():
        if buffer:
            blocks.append(Text("\n".join(buffer)))
            buffer.clear()

    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence:
            char, size = fence.group("fence")[0], len(fence.group("fence"))
            info = fence.group("info").strip()
            close = re.compile(r"^ {0,3}" + re.escape(char) + "{" + str(size) + r",}\s*$")
            end = next((j for j in range(i + 1, len(lines)) if close.match(lines[j])),
                       len(lines))
            directive = DIRECTIVE.match(info)
            if directive:
                flush()
                body = lines[i + 1:end]
                options = {}
                if body and body[0].strip() == "---":          # YAML options
                    stop = next(k for k in range(1, len(body)) if body[k].strip() == "---")
                    options = yaml.safe_load("\n".join(body[1:stop])) or {}
                    body = body[stop + 1:]
                else:
                    while body and OPTION.match(body[0].strip()):
                        option = OPTION.match(body[0].strip())
                        options[option.group("key")] = (option.group("value") or "").strip()
                        body = body[1:]
                blocks.append(Directive(directive.group("name"), directive.group("arg").strip(),
                                        options, "\n".join(body).strip("\n")))
                i = end + 1
                continue
            if char != ":":                                    # a code block
                flush()
                blocks.append(Code("\n".join(lines[i:end + 1])))
                i = end + 1
                continue
        if TARGET.match(line):
            flush()
            blocks.append(Target(TARGET.match(line).group("label")))
            i += 1
            continue
        if MATH_OPEN.match(line):
            flush()
            first = line.split("$$", 1)[1]
            if "$$" in first:                                  # $$ ... $$ on one line
                body, rest = first.split("$$", 1)
                label = MATH_CLOSE.match("$$" + rest)
                if label:
                    blocks.append(Math(body.strip(), label.group("label")))
                    i += 1
                    continue
                buffer.append(line)                            # inline $$...$$ text
                i += 1
                continue
            end = next((j for j in range(i + 1, len(lines)) if MATH_CLOSE.search(lines[j])),
                       None)
            if end is None:
                raise ConversionError("a $$ block is not closed")
            closing = lines[end]
            before = closing[:closing.rfind("$$")]
            body = "\n".join([first] + lines[i + 1:end] + [before]).strip("\n")
            blocks.append(Math(body, MATH_CLOSE.search(closing).group("label")))
            i = end + 1
            continue
        buffer.append(line)
        i += 1
    flush()
    return blocks


def heading_after(blocks: list, index: int) -> str | None:
    """The title of the heading that a target at ``blocks[index]`` labels."""
    for block in blocks[index + 1:]:
        if isinstance(block, Target):
            continue
        if isinstance(block, Text):
            first = next((line for line in block.text.split("\n") if line.strip()), "")
            heading = HEADING.match(first)
            return heading.group("title") if heading else None
        return None
    return None


# -- the label table ------------------------------------------------------------------
@dataclasses.dataclass
class Label:
    doc: str
    kind: str                   # section, exercise, equation, figure, proof
    anchor: str                 # the element id on the site page
    number: str | None = None
    title: str | None = None    # a section's heading; a theorem's name ("Theorem")


def number_in(chapter: int | None, k: int) -> str:
    return f"{chapter}.{k}" if chapter is not None else str(k)


class Book:
    """The whole book as the site sees it: titles, labels and their numbers."""

    def __init__(self, config: Config):
        self.config = config
        self.chapter = dict(config.docs)
        self.titles, self.labels = {}, {}
        for docname, chapter in config.docs:
            self.scan(docname, chapter)

    def add(self, label: str, entry: Label):
        if label in self.labels:
            raise ConversionError(f"label {label!r} is defined twice "
                                  f"({self.labels[label].doc}, {entry.doc})")
        self.labels[label] = entry

    def scan(self, docname: str, chapter: int | None):
        counters = {}

        def count(kind: str) -> str:
            counters[kind] = counters.get(kind, 0) + 1
            return number_in(chapter, counters[kind])

        def walk(text: str):
            blocks = parse_blocks(text)
            for index, block in enumerate(blocks):
                if isinstance(block, Target):
                    self.add(block.label, Label(docname, "section", block.label,
                                                title=heading_after(blocks, index)))
                elif isinstance(block, Text) and docname not in self.titles:
                    for line in block.text.split("\n"):
                        heading = HEADING.match(line)
                        if heading and len(heading.group("hashes")) == 1:
                            self.titles[docname] = heading.group("title")
                            break
                elif isinstance(block, Math) and block.label:
                    self.add(block.label, Label(docname, "equation", "equation-" + block.label,
                                                count("equation")))
                elif isinstance(block, Directive):
                    label = block.options.get("label")
                    if block.name == "math" and label:
                        self.add(label, Label(docname, "equation", "equation-" + label,
                                              count("equation")))
                    elif block.name == "exercise":
                        number = count("exercise") if "nonumber" not in block.options else None
                        if label:
                            self.add(label, Label(docname, "exercise", label, number, "Exercise"))
                    elif block.name.startswith("prf:") and block.name[4:] in PROOF_TYPES:
                        kind = block.name[4:]
                        number = count(kind) if "nonumber" not in block.options else None
                        if label:
                            self.add(label, Label(docname, "proof", label, number,
                                                  PROOF_TYPES[kind]))
                    if block.body and block.name not in ("math", "bibliography"):
                        walk(block.body)

        path = doc_path(self.config.root, docname)
        if path.suffix == ".md":
            for text in markdown_texts(self.config.root, docname):
                walk(text)
            return
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                walk(cell_source(cell))
            figure = cell.get("metadata", {}).get("mystnb", {}).get("figure")
            if cell["cell_type"] == "code" and figure and figure.get("caption"):
                number = count("figure")
                if figure.get("name"):
                    self.add(figure["name"], Label(docname, "figure", figure["name"],
                                                   number, "Fig."))

    def url(self, docname: str, anchor: str | None = None) -> str:
        return (self.config.site + docname + ".html"
                + (f"#{anchor}" if anchor else ""))


# -- citations ---------------------------------------------------------------------------
class Bibliography:
    """Author-year citations and reference lists, as sphinxcontrib-bibtex
    writes them on the site (``bibtex_reference_style: author_year``)."""

    def __init__(self, root: Path, bibfiles: list, style: str = "alpha"):
        from pybtex.database import BibliographyData, parse_file

        self.style = style
        _remember_pybtex_plugins()
        self.data = BibliographyData()
        for name in bibfiles:
            for key, entry in parse_file(str(root / name)).entries.items():
                self.data.add_entry(key, entry)

    def entry(self, key: str):
        if key not in self.data.entries:
            raise ConversionError(f"{{cite}} names {key!r}, which is not in the bibliography")
        return self.data.entries[key]

    def authors(self, key: str, joiner: str = "and") -> str:
        from pybtex.richtext import Text as Rich

        entry = self.entry(key)
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [Rich.from_latex(" ".join(p.prelast_names + p.last_names)).render_as("text")
                 for p in people]
        if not names:
            return Rich.from_latex(entry.fields.get("key", key)).render_as("text")
        if len(names) == 1:
            return names[0]
        if len(names) == 2:
            return f"{names[0]} {joiner} {names[1]}"
        return f"{names[0]} et al."

    def year(self, key: str) -> str:
        return self.entry(key).fields.get("year", "n.d.")

    def textual(self, keys: list) -> str:                 # {cite:t}
        return ", ".join(f"{md_escape(self.authors(k))} \\[{self.year(k)}\\]" for k in keys)

    def parenthetical(self, keys: list) -> str:           # {cite}, {cite:p}
        return "\\[" + ", ".join(f"{md_escape(self.authors(k))}, {self.year(k)}"
                                 for k in keys) + "\\]"

    def reference_list(self, keys: list) -> str:
        """The works cited in a chapter, formatted as the site's list."""
        from pybtex.database import BibliographyData
        from pybtex.plugin import find_plugin

        cited = BibliographyData()
        placeholders = {}
        for key in dict.fromkeys(keys):
            entry = copy.deepcopy(self.entry(key))
            for field, value in list(entry.fields.items()):     # \url{...} -> a link
                def stash(match):
                    token = f"URLPLACEHOLDER{len(placeholders)}X"
                    placeholders[token] = match.group(1)
                    return token
                entry.fields[field] = re.sub(r"\\url\{([^{}]*)\}", stash, value)
            cited.add_entry(key, entry)
        style = find_plugin("pybtex.style.formatting", self.style)()
        backend = _markdown_backend()
        from pybtex.style.template import FieldIsMissing

        items = []
        try:
            formatted_entries = list(style.format_entries(cited.entries.values()))
        except FieldIsMissing as error:
            raise ConversionError(f"references.bib: {error}") from None
        for formatted in formatted_entries:
            text = formatted.text.render(backend)
            for token, url in placeholders.items():
                text = text.replace(token, f"<{url}>")
            items.append(f"- **\\[{md_escape(formatted.label)}\\]** {text}")
        return "\n".join(items)


def _remember_pybtex_plugins():
    """pybtex looks its plugins up among the installed packages' entry
    points at every use (the text backend at every name it renders); keep
    the ones a reference list uses as runtime plugins, the same classes,
    so that the edition builds in seconds rather than a minute."""
    from pybtex.plugin import find_plugin, register_plugin

    for group, name in [("pybtex.backends", "text"), ("pybtex.backends", "markdown"),
                        ("pybtex.style.names", "plain"), ("pybtex.style.labels", "number"),
                        ("pybtex.style.labels", "alpha"), ("pybtex.style.sorting", "none"),
                        ("pybtex.style.sorting", "author_year_title")]:
        register_plugin(group, name, find_plugin(group, name), force=True)


def _markdown_backend():
    from pybtex.backends.markdown import Backend

    class MarkdownBackend(Backend):
        """pybtex's Markdown, escaping only what CommonMark and Jupyter's
        maths need (its own escapes ``(`` and ``)``, and ``\\(`` starts
        inline maths in Jupyter)."""
        symbols = {"ndash": "\u2013", "newblock": " ", "nbsp": "\u00a0"}

        def format_str(self, text):
            return md_escape(text)

    return MarkdownBackend()


def md_escape(text: str) -> str:
    """Text that CommonMark and Jupyter show as it is."""
    text = text.replace("\\", "\\\\")
    for char in "`*_[]$":
        text = text.replace(char, "\\" + char)
    return text.replace("<", "&lt;")


# -- converting one chapter ---------------------------------------------------------------
def cell_id(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:8]


def split_lines(text: str) -> list:
    return text.splitlines(keepends=True)


def markdown_cell(text: str, ident: str) -> dict:
    return {"cell_type": "markdown", "id": ident, "metadata": {}, "source": split_lines(text)}


def hide_input(cell: dict) -> dict:
    """Collapse a code cell's source: Colab's form view, JupyterLab's
    ``source_hidden``; the cell still runs and shows its output."""
    metadata = cell.setdefault("metadata", {})
    metadata["cellView"] = "form"
    metadata.setdefault("jupyter", {})["source_hidden"] = True
    return cell


class Chapter:
    """Converts one chapter's cells; holds the state that spans cells (the
    solution being written, the current heading level, the citations)."""

    def __init__(self, book: Book, bibliography: Bibliography, docname: str):
        self.book, self.bib, self.docname = book, bibliography, docname
        self.chapter = book.chapter[docname]
        self.solution = None            # inside one: (summary, folded, started in this cell)
        self.level = 1                  # the level of the last heading seen
        self.cited = []
        self.exercises = 0
        self.figures = 0
        self.where = docname

    def fail(self, message: str):
        raise ConversionError(f"{self.where}: {message}")

    # -- inline ------------------------------------------------------------------
    def link(self, text: str, label: Label) -> str:
        return f"[{link_text(text)}]({self.book.url(label.doc, label.anchor)})"

    def lookup(self, label: str) -> Label:
        if label not in self.book.labels:
            self.fail(f"unknown label {label!r}")
        return self.book.labels[label]

    def role(self, name: str, content: str) -> str:
        content = " ".join(content.split())
        explicit = EXPLICIT.match(content)
        text, target = (explicit.group("text"), explicit.group("target")) if explicit \
            else (None, content)
        if name == "doc":
            docname = posixpath.normpath(posixpath.join(posixpath.dirname(self.docname),
                                                        target)) \
                if not target.startswith("/") else target.lstrip("/")
            if docname not in self.book.titles:
                self.fail(f"{{doc}} names {target!r}, which is not a page of the book")
            title = text or self.book.titles[docname]
            return f"[{link_text(title)}]({self.book.url(docname)})"
        if name in ("ref", "numref", "eq", "prf:ref"):
            label = self.lookup(target)
            if name == "eq" and label.kind != "equation":
                self.fail(f"{{eq}} names {target!r}, which is not an equation")
            if label.kind == "equation":
                return self.link(text or f"({label.number})", label)
            numbered = f"{label.title} {label.number}" if label.number else label.title
            if name == "numref":
                if not label.number:
                    self.fail(f"{{numref}} names {target!r}, which has no number")
                if text:
                    numbered = (text.replace("{number}", label.number)
                                .replace("%s", label.number)
                                .replace("{name}", label.title or ""))
                return self.link(numbered, label)
            if text:
                return self.link(text, label)
            if not numbered:
                self.fail(f"{{{name}}} names {target!r}, which has no title; "
                          "write {ref}`text <label>`")
            return self.link(numbered, label)
        if name in ("cite", "cite:p", "cite:ps", "cite:t", "cite:ts"):
            keys = [key.strip() for key in target.split(",") if key.strip()]
            for key in keys:
                if key not in self.bib.data.entries:
                    self.fail(f"{{cite}} names {key!r}, which is not in the bibliography")
            self.cited += keys
            return self.bib.textual(keys) if name in ("cite:t", "cite:ts") \
                else self.bib.parenthetical(keys)
        if name == "math":
            return f"${self.macros(content)}$"
        if name in ("sub", "sup"):
            return f"<{name}>{content}</{name}>"
        if name in ("abbr", "term"):
            return md_escape(text or target)
        self.fail(f"the role {{{name}}} has no conversion")

    def inline(self, text: str) -> str:
        """``text`` with its roles converted and the site's macros expanded,
        code spans left as they are."""
        out, i = [], 0
        plain_start = 0
        while i < len(text):
            if text[i] != "`":
                i += 1
                continue
            run = len(re.match(r"`+", text[i:]).group(0))
            close = re.compile(r"(?<!`)" + "`" * run + r"(?!`)").search(text, i + run)
            if not close:
                i += run
                continue
            before = text[plain_start:i]
            role = ROLE_NAME.search(before)
            content = text[i + run:close.start()]
            if role:
                out.append(self.macros(before[:role.start()]))
                out.append(self.role(role.group("name"), content))
            else:
                out.append(self.macros(before))
                out.append(text[i:close.end()])                 # a code span
            i = plain_start = close.end()
        out.append(self.macros(text[plain_start:]))
        return "".join(out)

    def macros(self, text: str) -> str:
        for name, value in self.book.config.macros.items():
            text = re.sub(r"\\" + re.escape(name) + r"(?![A-Za-z])",
                          lambda _: value, text)
        return text

    # -- blocks --------------------------------------------------------------------
    def text(self, text: str) -> str:
        lines = []
        for line in text.split("\n"):
            heading = HEADING.match(line)
            if heading:
                self.level = len(heading.group("hashes"))
            lines.append(line)
        return self.inline("\n".join(lines))

    def math(self, block: Math) -> str:
        body = self.macros(block.body)
        if block.label:
            body += f"\n\\tag{{{self.lookup(block.label).number}}}"
        return f"$$\n{body}\n$$"

    def blocks(self, text: str) -> list:
        """Converted Markdown pieces of ``text``: ("md", str) or the markers
        ("solution-start", Directive) / ("solution-end", None)."""
        pieces = []
        for block in parse_blocks(text):
            if isinstance(block, Text):
                pieces.append(("md", self.text(block.text)))
            elif isinstance(block, Code):
                pieces.append(("md", block.text))
            elif isinstance(block, Target):
                continue
            elif isinstance(block, Math):
                pieces.append(("md", self.math(block)))
            elif block.name == "solution-start":
                pieces.append(("solution-start", block))
            elif block.name == "solution-end":
                pieces.append(("solution-end", None))
            else:
                pieces.append(("md", self.directive(block)))
        return pieces

    def body(self, text: str) -> str:
        pieces = self.blocks(text)
        if any(kind != "md" for kind, _ in pieces):
            self.fail("a solution starts or ends inside another directive")
        return join(piece for _, piece in pieces)

    def options(self, block: Directive, allowed=()):
        unknown = set(block.options) - IGNORED_OPTIONS - set(allowed)
        if unknown:
            self.fail(f"{{{block.name}}}: options {sorted(unknown)} have no conversion")

    def directive(self, block: Directive) -> str:
        name = block.name
        if name == "exercise":
            self.options(block)
            label = block.options.get("label")
            number = None
            if "nonumber" not in block.options:
                self.exercises += 1
                number = number_in(self.chapter, self.exercises)
            if label and self.lookup(label).number != number:
                self.fail(f"exercise {label!r} is numbered {number} here but "
                          f"{self.lookup(label).number} in the label table")
            level = "#" * min(6, self.level + 1)
            title = f"Exercise {number}" if number else "Exercise"
            if block.arg:
                title += f" ({self.inline(block.arg)})"
            return join([f"{level} {title}", self.body(block.body)])
        if name == "solution":
            self.options(block)
            return self.details(self.solution_summary(block.arg),
                                self.body(block.body),
                                "dropdown" in block.options.get("class", ""))
        if name.startswith("prf:"):
            kind = name[4:]
            self.options(block)
            if kind == "proof":
                return join(["*Proof.*", self.body(block.body), "\u220e"])
            if kind not in PROOF_TYPES:
                self.fail(f"the directive {{{name}}} has no conversion")
            label = block.options.get("label")
            number = self.lookup(label).number if label else None
            lead = f"**{PROOF_TYPES[kind]}{' ' + number if number else ''}**"
            if block.arg:
                lead += f" ({self.inline(block.arg)})"
            return join([lead, self.body(block.body)])
        if name in ADMONITIONS:
            self.options(block)
            title = self.inline(block.arg) if name == "admonition" else ADMONITIONS[name]
            if not title:
                self.fail("{admonition} needs a title")
            body = self.body(block.body)
            if "dropdown" in block.options.get("class", ""):
                return self.details(title, body, True)
            if not quotable(body):
                return join([f"**{title}.**", body])
            return "\n".join("> " + line if line else ">"
                             for line in f"**{title}**\n\n{body}".split("\n"))
        if name == "math":
            self.options(block)
            return self.math(Math(block.body, block.options.get("label")))
        if name == "bibliography":
            self.options(block, ["filter", "labelprefix", "style"])
            if block.options.get("filter", "docname in docnames") != "docname in docnames":
                self.fail("{bibliography}: only ':filter: docname in docnames' has a conversion")
            return REFERENCES                              # filled in at the end
        if name == "nb-exec-table":
            return (f"The table is on [this page of the book's site]"
                    f"({self.book.url(self.docname)}), where the build writes it.")
        self.fail(f"the directive {{{name}}} has no conversion")

    def solution_summary(self, target: str) -> str:
        label = self.lookup(target.strip())
        if label.kind != "exercise":
            self.fail(f"a solution names {target!r}, which is not an exercise")
        return f"Solution to Exercise {label.number}" if label.number else "Solution"

    def details(self, summary: str, body: str, fold: bool) -> str:
        if not fold:
            return join([f"**{summary}**", body])
        return f"<details>\n<summary>{summary}</summary>\n\n{body}\n\n</details>"

    # -- cells ----------------------------------------------------------------------
    def markdown(self, cell: dict) -> str:
        """One Markdown cell; a solution may start or end in it."""
        parts, inside = [], []

        def close_part():
            summary, fold, started_here = self.solution
            content = join(inside)
            if content or started_here:
                title = summary if started_here else summary + " (continued)"
                parts.append(self.details(title, content or
                                          "The solution is the code below.", fold))
            inside.clear()

        if self.solution:
            self.solution = (self.solution[0], self.solution[1], False)
        for kind, piece in self.blocks(cell_source(cell)):
            if kind == "solution-start":
                if self.solution:
                    self.fail("a solution starts inside another")
                self.options(piece)
                self.solution = (self.solution_summary(piece.arg),
                                 "dropdown" in piece.options.get("class", ""), True)
            elif kind == "solution-end":
                if not self.solution:
                    self.fail("a solution ends that did not start")
                close_part()
                self.solution = None
            elif self.solution:
                inside.append(piece)
            else:
                parts.append(piece)
        if self.solution:
            close_part()
        return join(parts)

    def convert(self, nb: dict) -> dict:
        out = copy.deepcopy(nb)
        cells, first_heading = [], True
        for index, cell in enumerate(nb["cells"]):
            self.where = f"{self.docname}, cell {index} ({cell.get('id')})"
            if cell["cell_type"] == "markdown":
                text = self.markdown(cell)
                if first_heading:
                    text, first_heading = self.title(text)
                new = copy.deepcopy(cell)
                new["source"] = split_lines(text)
                cells.append(new)
                continue
            new = copy.deepcopy(cell)
            tags = set(cell.get("metadata", {}).get("tags", []))
            if cell["cell_type"] == "code" and (self.solution or tags & HIDDEN_INPUT_TAGS):
                hide_input(new)
            cells.append(new)
            figure = cell.get("metadata", {}).get("mystnb", {}).get("figure")
            if cell["cell_type"] == "code" and figure and figure.get("caption"):
                self.figures += 1
                number = number_in(self.chapter, self.figures)
                caption = " ".join(self.inline(figure["caption"]).split())
                cells.append(markdown_cell(f"**Fig. {number}.** {caption}",
                                           cell_id(self.docname, cell.get("id", ""), "caption")))
        if self.solution:
            self.fail("a solution does not end")
        self.where = self.docname
        try:
            references = self.bib.reference_list(self.cited) if self.cited else ""
        except ConversionError as error:
            self.fail(f"its reference list: {error}")
        for cell in cells:
            text = cell_source(cell)
            if REFERENCES in text:
                cell["source"] = split_lines(text.replace(
                    REFERENCES, references or "(This chapter cites no work.)"))
        out["cells"] = cells
        return out

    def title(self, text: str):
        """Number the chapter's title as the site does and say, under it,
        where this notebook comes from."""
        lines = text.split("\n")
        for k, line in enumerate(lines):
            heading = HEADING.match(line)
            if heading and len(heading.group("hashes")) == 1:
                title = heading.group("title")
                if self.chapter is not None:
                    title = f"{self.chapter}. {title}"
                note = (f"> *{self.book.config.title}*, Colab edition: a copy of this chapter in "
                        f"plain Markdown, generated from the book's source. Links to "
                        f"chapters, equations and exercises lead to "
                        f"[the chapter on the book's site]({self.book.url(self.docname)}).")
                lines[k:k + 1] = [f"# {title}", "", note]
                return "\n".join(lines), False
        return text, True


INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)(?P<tex>(?:\\.|[^$\\])+?)(?<!\\)\$", re.S)


def quotable(body: str) -> bool:
    """Whether ``body`` survives as a quotation: Jupyter takes the maths out
    before it parses the Markdown, so maths that spans lines would keep the
    quotation's ``>`` marks."""
    return ("$$" not in body and "<details>" not in body
            and not any("\n" in m.group("tex") for m in INLINE_MATH.finditer(body)))


def link_text(text: str) -> str:
    return text.replace("[", "\\[").replace("]", "\\]")


def join(pieces) -> str:
    """Markdown pieces as paragraphs, one blank line apart."""
    return "\n\n".join(p.strip("\n") for p in pieces if p and p.strip())


# -- the edition ---------------------------------------------------------------------------
def chapters(root: Path = ROOT) -> list:
    """The notebooks of the book (the files the launch buttons open)."""
    return sorted((root / "book").glob("*.ipynb"))


def render(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def build(root: Path = ROOT) -> dict:
    """Every chapter's edition: {path relative to the edition folder: text}."""
    config = read_config(root)
    book = Book(config)
    load_extensions(config)
    bibliography = Bibliography(root, config.bibfiles, config.bibstyle)
    edition = {}
    for path in chapters(root):
        docname = path.relative_to(root).with_suffix("").as_posix()
        if docname not in book.chapter:
            raise ConversionError(f"{docname} is not in _toc.yml")
        nb = json.loads(path.read_text())
        converted = Chapter(book, bibliography, docname).convert(nb)
        edition[path.relative_to(root).as_posix()] = render(converted)
    return edition


def write(edition: dict, folder: Path) -> None:
    """Write the edition into ``folder`` (``colab/`` by default), removing
    notebooks of chapters that no longer exist."""
    for stale in (folder / "book").glob("*.ipynb") if (folder / "book").exists() else []:
        if stale.relative_to(folder).as_posix() not in edition:
            stale.unlink()
    for name, text in edition.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)


def stale(edition: dict, folder: Path) -> list:
    """The files in ``folder`` that differ from ``edition`` (or are missing
    or left over)."""
    found = sorted(name for name, text in edition.items()
                   if not (folder / name).exists() or (folder / name).read_text() != text)
    if (folder / "book").exists():
        found += sorted(p.relative_to(folder).as_posix() for p in (folder / "book").glob("*.ipynb")
                        if p.relative_to(folder).as_posix() not in edition)
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the committed edition is stale")
    parser.add_argument("--out", type=Path, default=ROOT / EDITION,
                        help="the edition's folder (default: colab/)")
    args = parser.parse_args(argv)
    edition = build(ROOT)
    if args.check:
        found = stale(edition, args.out)
        for name in found:
            print(f"stale: {args.out / name}")
        if found:
            print("regenerate with: .venv/bin/python -m colab.build", file=sys.stderr)
        return 1 if found else 0
    write(edition, args.out)
    print(f"wrote {len(edition)} notebooks to {args.out / 'book'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
