"""Check the built book in a real browser: equations, figures and links.

Usage (from the repository root, after ``make book``)::

    .venv/bin/python -m tests.browser_check _build/html [--screenshots DIR]

The site is served on a free loopback port and every page of the book is
opened in headless Chromium. For each page the check asserts that

* every equation was typeset by MathJax: the rendered DOM holds at least one
  ``mjx-container`` per math element of the page (Sphinx writes each equation
  as an element of class ``math``), no ``mjx-merror`` (bad TeX), no undefined
  macro (which MathJax shows in red instead of raising an error) and no raw
  ``\\(``, ``\\[`` or ``$$`` left in the visible text;
* MathJax itself is loaded from the site, not from a CDN;
* every local image exists, is non-empty, is served with HTTP 200 and is the
  kind of image its name says (PNG, JPEG, GIF, SVG, WebP);
* every relative link points at a file of the site and, where it names a
  fragment, at an element with that id;
* at a desktop width (1280 px) and a phone width (390 px), nothing is cut
  off and nothing makes the page scroll sideways: a script injected into the
  served page (:data:`LAYOUT_PROBE`) reports every element of the article
  whose content is clipped by ``overflow: hidden`` and every element that
  reaches past the right edge of the window outside a box that scrolls.

One line per page is printed; the exit status is 1 if any page has a problem,
2 if the check cannot run. Without Chromium the check fails and says how to
install it, unless ``LSTMLIB_BROWSER_CHECK_OPTIONAL=1`` (then it is skipped).
The checks are plain functions of HTML text, so the unit tests call them on
synthetic pages without a browser.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import html as html_module
import http.server
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit

CHROMIUM_ENV = "CHROMIUM"
OPTIONAL_ENV = "LSTMLIB_BROWSER_CHECK_OPTIONAL"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = (
    "install it with `apt-get update && apt-get install -y chromium` "
    "(or run .ci/install-chromium), or point the CHROMIUM environment variable "
    "at a Chromium/Chrome binary"
)

PAGE_TIMEOUT_S = 60
PARALLEL_PAGES = 3
VIRTUAL_TIME_BUDGET_MS = 15000
SCREENSHOT_HEIGHT = 1600
SCREENSHOT_WINDOW = f"1280,{SCREENSHOT_HEIGHT}"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # needed as root, e.g. in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
)

# The window widths the layout is checked at: a desktop and a phone.
LAYOUT_WIDTHS = ((1280, 900), (390, 844))
LAYOUT_QUERY = "layout-probe"
# A page of the site shown in a frame of the given width (a phone's width
# cannot be had from a headless window, which is at least about 500 px wide):
# /__layout__/<width>/<page>. The frame's probe posts its findings here.
LAYOUT_FRAME_PREFIX = "/__layout__/"
LAYOUT_FRAME = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="/{page}?{query}" style="width:{width}px;height:900px;border:0"></iframe>
<script>
window.addEventListener("message", event => {{
  const report = document.createElement("pre");
  report.id = "layout-report";
  report.textContent = event.data;
  document.body.appendChild(report);
}});
</script></body></html>"""
# Injected at the end of a served page (?layout-probe): once MathJax has
# typeset the page, it lists what is cut off (a child reaching past the
# right edge of a box with overflow hidden) or reaches past the window's
# right edge outside a box that scrolls,
# as JSON, posted to the frame around it (LAYOUT_FRAME), which writes it into
# <pre id="layout-report"> for --dump-dom to carry out.
LAYOUT_PROBE = r"""<script>
const layoutReport = found => {                    // to LAYOUT_FRAME
  window.parent.postMessage(JSON.stringify(found), "*");
};
(async () => {
  await new Promise(done => setTimeout(done, 200));      // MathJax starts
  try { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }
  catch (error) {}
  await new Promise(done => setTimeout(done, 300));      // layout settles
  try { layoutReport(layoutProblems()); }
  catch (error) { layoutReport(["the layout probe failed: " + error]); }
})();
function layoutProblems() {
  const width = document.documentElement.clientWidth, found = [];
  const name = el => "<" + el.tagName.toLowerCase() +
    (el.className && typeof el.className === "string"
       ? " class='" + el.className.trim().split(/\s+/).slice(0, 2).join(" ") + "'" : "") +
    "> " + (el.textContent || el.getAttribute("src") || "").trim()
       .replace(/\s+/g, " ").slice(0, 50);
  const scrolls = el => { for (let a = el.parentElement; a; a = a.parentElement) {
      const x = getComputedStyle(a).overflowX;
      if (x === "auto" || x === "scroll") return true; } return false; };
  const reported = [];
  const inside = el => reported.some(r => r.contains(el));
  const article = document.querySelector("article") || document.querySelector("main")
    || document.body;
  for (const el of article.querySelectorAll("*")) {
    const math = el.closest("mjx-container");
    if (inside(el) || (math && math !== el)) continue;   // MathJax's insides
    const style = getComputedStyle(el), box = el.getBoundingClientRect();
    if (style.display === "none" || style.visibility === "hidden" || box.width === 0) continue;
    const hidden = style.overflowX === "hidden" || style.overflowX === "clip";
    const beyond = hidden ? Math.max(0, ...Array.from(el.children, child =>
        child.tagName === "MJX-ASSISTIVE-MML" ? 0
          : child.getBoundingClientRect().right - box.right)) : 0;
    if (beyond > 2) {
      found.push("cut off by its box (" + Math.round(beyond) + " px): " + name(el));
      reported.push(el);
    } else if (box.right > width + 2 && !scrolls(el)) {
      found.push("past the window's right edge (" + Math.round(box.right - width) +
                 " px): " + name(el)); reported.push(el);
    }
  }
  const sideways = document.documentElement.scrollWidth - width;
  if (sideways > 2) found.push("the page scrolls sideways by " + sideways + " px");
  return found;
}
</script>"""
LAYOUT_REPORT = re.compile(r'<pre id="layout-report">(.*?)</pre>', re.S)

# Pages Sphinx writes that are not chapters of the book.
NON_PAGE_FILES = {"search.html", "genindex.html", "py-modindex.html"}
# Folders of assets (Sphinx's start with "_"; MathJax is copied to "mathjax").
NON_PAGE_DIRS = {"mathjax", "jupyter_execute"}

# Text that is still raw TeX after MathJax ran: display and inline delimiters,
# and single-dollar math that looks like TeX ($a^2$, $x$; not "$5 and $6"),
# which is what a Markdown output of a notebook shows with myst-nb's defaults.
RAW_MATH_DELIMITERS = ("\\[", "\\(", "$$")
RAW_DOLLAR_MATH = re.compile(r"(?<!\$)\$(?=[^\s$])([^$\n]{1,200}?)(?<=[^\s$])\$(?!\$)")
TEX_LOOKING = re.compile(r"[\\^_{}=]|^[A-Za-z]$")
# The delimiter row of a Markdown table ("|---|---|"), which appears in the
# page's text when a table was rendered as a paragraph (CommonMark has no
# tables; Sphinx's smart quotes may have turned "---" into an em dash).
UNRENDERED_TABLE = re.compile(r"\|\s*:?(?:-{3,}|\u2014):?\s*\|")
# Elements whose text is not prose: raw delimiters inside them are legitimate
# (an mjx-container is an equation MathJax has already typeset).
NON_PROSE_TAGS = {"script", "style", "pre", "code", "mjx-container"}
# Where the site keeps the images that chapters' code cells drew.
DRAWN_IMAGE = re.compile(r"(^|/)_images/")
# MathJax renders an undefined macro as red text in an <mtext>, not as an error.
UNDEFINED_MACRO_COLOR = "red"

IMAGE_SIGNATURES = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
}
IMAGE_KIND_OF_SUFFIX = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".gif": "gif",
    ".svg": "svg",
    ".webp": "webp",
}


# -- reading HTML ------------------------------------------------------------------
@dataclass
class PageOutline:
    """What the checks need to know about one HTML document."""

    math_elements: int = 0
    mjx_containers: int = 0
    mathjax_errors: list[str] = field(default_factory=list)
    undefined_macros: list[str] = field(default_factory=list)
    image_sources: list[str] = field(default_factory=list)
    # images that a chapter's code drew (in the site's _images/) without a
    # <figure> whose <figcaption> numbers and explains them
    uncaptioned_images: list[str] = field(default_factory=list)
    link_targets: list[str] = field(default_factory=list)
    script_sources: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    prose_text: str = ""


class _OutlineParser(HTMLParser):
    """Collects a :class:`PageOutline` while reading a document once.

    MathJax's output comes twice: as CHTML (``mjx-*`` elements, whose glyphs
    are CSS, not text) and as hidden "assistive" MathML, whose red ``<mtext>``
    holds the name of an undefined macro.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.outline = PageOutline()
        self._prose: list[str] = []
        self._in_body = False
        self._non_prose_depth = 0
        self._undefined_macro: list[str] | None = None  # text so far, inside a red <mtext>
        self._figures: list[dict] = []  # open <figure>s: their images, a caption yet

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        outline = self.outline
        if "id" in attributes:
            outline.ids.add(attributes["id"])
        if "math" in attributes.get("class", "").split():
            outline.math_elements += 1
        if tag in NON_PROSE_TAGS:
            self._non_prose_depth += 1
        if tag == "body":
            self._in_body = True
        elif tag == "mjx-container":
            outline.mjx_containers += 1
        elif tag == "mjx-merror":
            outline.mathjax_errors.append(attributes.get("data-mjx-error") or "no message")
        elif tag == "mtext" and attributes.get("mathcolor") == UNDEFINED_MACRO_COLOR:
            self._undefined_macro = []
        elif tag == "img" and attributes.get("src"):
            outline.image_sources.append(attributes["src"])
            if DRAWN_IMAGE.search(attributes["src"]):
                if self._figures:
                    self._figures[-1]["images"].append(attributes["src"])
                else:
                    outline.uncaptioned_images.append(attributes["src"])
        elif tag == "figure":
            self._figures.append({"images": [], "caption": False})
        elif tag == "figcaption" and self._figures:
            self._figures[-1]["caption"] = True
        elif tag == "a" and "href" in attributes:
            outline.link_targets.append(attributes["href"])
        elif tag == "script" and attributes.get("src"):
            outline.script_sources.append(attributes["src"])
        elif tag == "meta" and attributes.get("http-equiv", "").lower() == "refresh":
            outline.link_targets += refresh_target(attributes.get("content", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure" and self._figures:
            figure = self._figures.pop()
            if not figure["caption"]:
                self.outline.uncaptioned_images += figure["images"]
        if tag in NON_PROSE_TAGS:
            self._non_prose_depth = max(0, self._non_prose_depth - 1)
        if tag == "mtext" and self._undefined_macro is not None:
            text = "".join(self._undefined_macro).strip()
            if text.startswith("\\"):
                self.outline.undefined_macros.append(text)
            self._undefined_macro = None

    def handle_data(self, data: str) -> None:
        if self._undefined_macro is not None:
            self._undefined_macro.append(data)
        if self._in_body and not self._non_prose_depth:
            self._prose.append(data)

    def close(self) -> None:
        super().close()
        self.outline.prose_text = "".join(self._prose)


def refresh_target(content: str) -> list[str]:
    """The URL of a ``<meta http-equiv="refresh" content="0; url=...">`` (the site's root page)."""
    _, _, url = content.partition("url=")
    return [url.strip().strip("'\"")] if url.strip() else []


def outline_of(html: str) -> PageOutline:
    """Read an HTML document into the facts the checks look at."""
    parser = _OutlineParser()
    parser.feed(html)
    parser.close()
    return parser.outline


# -- resolving references inside the site --------------------------------------------
def is_external(reference: str) -> bool:
    """True for URLs with a scheme (http:, mailto:, data:, ...) or a host (//cdn...)."""
    parts = urlsplit(reference)
    return bool(parts.scheme or parts.netloc)


def resolve(page: str, reference: str) -> str | None:
    """The site path a relative reference on ``page`` points at (no query, no fragment).

    ``page`` and the result are POSIX paths relative to the site root; a path
    ending in "/" means its index.html. None if the reference leaves the site.
    """
    path = unquote(urlsplit(reference).path)
    if not path:
        return page
    if path.startswith("/"):
        joined = path.lstrip("/")
    else:
        joined = posixpath.join(posixpath.dirname(page), path)
    if path.endswith("/") or joined == "":
        joined = posixpath.join(joined, "index.html")
    normalised = posixpath.normpath(joined)
    if normalised == ".." or normalised.startswith("../"):
        return None
    return normalised


def site_file(site: Path, site_path: str) -> Path:
    """The file behind a site path; a folder stands for its index.html."""
    file = site / site_path
    return file / "index.html" if file.is_dir() else file


# -- checks on the static files ------------------------------------------------------
def check_static_page(site: Path, page: str) -> list[str]:
    """Problems with the images, links and MathJax script of one built page."""
    html = (site / page).read_text(encoding="utf-8")
    outline = outline_of(html)
    return (
        check_images_exist(site, page, outline)
        + [f"figure without a caption: {source!r} (give its cell mystnb figure "
           "metadata: caption and name)" for source in outline.uncaptioned_images]
        + check_links(site, page, outline)
        + check_mathjax_script(site, page, outline)
    )


def check_images_exist(site: Path, page: str, outline: PageOutline) -> list[str]:
    """Every local <img> names a non-empty file of the site."""
    problems = []
    for source in local_image_sources(outline):
        target = resolve(page, source)
        if target is None:
            problems.append(f"image {source!r} points outside the site")
        elif not site_file(site, target).is_file():
            problems.append(f"image {source!r} is missing ({target})")
        elif site_file(site, target).stat().st_size == 0:
            problems.append(f"image {source!r} is an empty file ({target})")
    return problems


def local_image_sources(outline: PageOutline) -> list[str]:
    """The <img> sources that the site itself must provide."""
    return [source for source in outline.image_sources if not is_external(source)]


def check_links(site: Path, page: str, outline: PageOutline) -> list[str]:
    """Every relative <a href> names a file of the site, and an existing id if it has a fragment."""
    problems = []
    for href in outline.link_targets:
        if is_external(href) or href in ("", "#"):
            continue
        target = resolve(page, href)
        fragment = unquote(urlsplit(href).fragment)
        if target is None:
            problems.append(f"link {href!r} points outside the site")
        elif not site_file(site, target).is_file():
            problems.append(f"broken link {href!r}: no file {target}")
        elif fragment and target.endswith(".html") and not has_id(site, target, fragment):
            problems.append(f"broken link {href!r}: no id {fragment!r} in {target}")
    return problems


@functools.lru_cache(maxsize=256)
def _ids_in_cached(path: str, mtime_ns: int) -> frozenset[str]:
    return frozenset(outline_of(Path(path).read_text(encoding="utf-8")).ids)


def ids_in(html_file: Path) -> frozenset[str]:
    """The element ids of an HTML file (read once per version of the file)."""
    return _ids_in_cached(str(html_file), html_file.stat().st_mtime_ns)


def has_id(site: Path, page: str, element_id: str) -> bool:
    """Whether the page at site path ``page`` has an element with this id."""
    return element_id in ids_in(site_file(site, page))


def check_mathjax_script(site: Path, page: str, outline: PageOutline) -> list[str]:
    """MathJax, where the page needs or loads it, comes from the site itself."""
    mathjax = [src for src in outline.script_sources if "mathjax" in src.lower()]
    if outline.math_elements and not mathjax:
        return [f"{outline.math_elements} math element(s) but no MathJax script"]
    problems = []
    for source in mathjax:
        if is_external(source):
            problems.append(f"MathJax is loaded from outside the site: {source}")
            continue
        target = resolve(page, source)
        if target is None or not site_file(site, target).is_file():
            problems.append(f"MathJax script {source!r} is missing ({target}); run `make mathjax`")
    return problems


# -- checks on what the server sends -------------------------------------------------
def check_served_images(site: Path, base_url: str, page: str, html: str) -> list[str]:
    """Every local image file of a page is served with HTTP 200 and is the image its name says.

    Images with no file behind them are left to :func:`check_images_exist`.
    """
    problems = []
    for source in local_image_sources(outline_of(html)):
        target = resolve(page, source)
        if target is None or not site_file(site, target).is_file():
            continue
        url = f"{base_url}/{quote(target)}"
        try:
            with urllib.request.urlopen(url, timeout=PAGE_TIMEOUT_S) as response:
                status, head = response.status, response.read(2048)
        except urllib.error.URLError as error:  # HTTPError (404, ...) included
            problems.append(f"image {source!r} is not served: {error}")
            continue
        if status != 200:
            problems.append(f"image {source!r} is served with HTTP {status}")
            continue
        expected = IMAGE_KIND_OF_SUFFIX.get(PurePosixPath(target).suffix.lower())
        found = image_kind(head)
        if found is None or (expected and found != expected):
            wanted = expected or "known"
            problems.append(f"image {source!r} is not a {wanted} image (found {found})")
    return problems


def image_kind(head: bytes) -> str | None:
    """The kind of image the first bytes of a file announce, or None."""
    for kind, signatures in IMAGE_SIGNATURES.items():
        if head.startswith(signatures):
            return kind
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if b"<svg" in head.lstrip()[:2048]:
        return "svg"
    return None


# -- checks on the DOM after the browser ran the page's scripts ---------------------
def check_rendered_dom(static_html: str, dom: str) -> list[str]:
    """Problems with the typeset equations of a page, given its source and its rendered DOM."""
    source, rendered = outline_of(static_html), outline_of(dom)
    problems = []
    if rendered.mjx_containers < source.math_elements:
        problems.append(
            f"MathJax typeset {rendered.mjx_containers} of {source.math_elements} equation(s)"
        )
    problems += [f"MathJax error: {message}" for message in rendered.mathjax_errors]
    problems += [f"undefined TeX macro {macro}" for macro in rendered.undefined_macros]
    prose = rendered.prose_text
    for delimiter in RAW_MATH_DELIMITERS:
        if delimiter in prose:
            context = excerpt(prose, delimiter)
            problems.append(f"raw TeX delimiter {delimiter} left in the text: {context!r}")
    problems += [f"raw TeX left in the text: {raw!r}" for raw in raw_dollar_math(prose)]
    table_row = UNRENDERED_TABLE.search(prose)
    if table_row:
        problems.append("a Markdown table left as text: "
                        f"{excerpt(prose, table_row.group(0))!r}")
    return problems


def layout_problems(dom: str) -> list[str]:
    """What :data:`LAYOUT_PROBE` found cut off or past the window's edge in a
    rendered page; a page without its report is a problem too."""
    report = LAYOUT_REPORT.search(dom)
    if report is None:
        return ["the layout probe did not report (MathJax or the page did not finish)"]
    return json.loads(html_module.unescape(report.group(1)))


def raw_dollar_math(text: str) -> list[str]:
    """The ``$...$`` spans of ``text`` that look like TeX MathJax did not typeset."""
    return [found.group(0) for found in RAW_DOLLAR_MATH.finditer(text)
            if TEX_LOOKING.search(found.group(1))]


def excerpt(text: str, needle: str, width: int = 40) -> str:
    """A short single-line piece of ``text`` around the first ``needle``."""
    at = text.index(needle)
    return " ".join(text[max(0, at - width) : at + len(needle) + width].split())


# -- the browser ---------------------------------------------------------------------
def find_chromium() -> str | None:
    """The Chromium to use: $CHROMIUM if set, else the first one installed."""
    if os.environ.get(CHROMIUM_ENV):
        return shutil.which(os.environ[CHROMIUM_ENV])
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


class BrowserError(Exception):
    """Chromium did not deliver a page."""


def render(chromium: str, url: str, screenshot: Path | None = None,
           window: str | None = None) -> str:
    """The DOM of ``url`` after its scripts ran, from a fresh headless Chromium profile,
    in a window of ``window`` ("width,height") pixels if given."""
    with tempfile.TemporaryDirectory(prefix="browser-check-profile-") as profile:
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom"]
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            command += [f"--screenshot={screenshot}",
                        f"--window-size={window or SCREENSHOT_WINDOW}"]
        elif window is not None:
            command.append(f"--window-size={window}")
        try:
            finished = subprocess.run(
                [*command, url], capture_output=True, text=True, timeout=PAGE_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise BrowserError(f"Chromium did not finish within {PAGE_TIMEOUT_S} s") from None
    if finished.returncode != 0 or "<html" not in finished.stdout:
        status, last_lines = finished.returncode, " | ".join(finished.stderr.splitlines()[-3:])
        raise BrowserError(f"Chromium gave no page (exit status {status}): {last_lines}")
    return finished.stdout


# -- serving the site ----------------------------------------------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging every request; a page asked for with
    ``?layout-probe`` comes with :data:`LAYOUT_PROBE` injected."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith(LAYOUT_FRAME_PREFIX):
            width, page = url.path[len(LAYOUT_FRAME_PREFIX):].split("/", 1)
            body = LAYOUT_FRAME.format(page=page, query=LAYOUT_QUERY,
                                       width=int(width)).encode("utf-8")
        elif url.query == LAYOUT_QUERY and url.path.endswith(".html"):
            file = Path(self.translate_path(url.path))
            if not file.is_file():
                return self.send_error(404)
            body = file.read_text(encoding="utf-8").replace(
                "</body>", LAYOUT_PROBE + "</body>", 1).encode("utf-8")
        else:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _SiteServer(http.server.ThreadingHTTPServer):
    """A threaded server that stays silent when the browser hangs up early (e.g. on favicon.ico)."""

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve ``site`` on a free loopback port for the duration; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = _SiteServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- the whole check -----------------------------------------------------------------
def book_pages(site: Path) -> list[str]:
    """The site paths of the book's pages: every .html but indexes, search and asset folders."""
    pages = []
    for file in sorted(site.rglob("*.html")):
        relative = file.relative_to(site)
        folders = relative.parts[:-1]
        if relative.name in NON_PAGE_FILES:
            continue
        if any(folder.startswith(("_", ".")) or folder in NON_PAGE_DIRS for folder in folders):
            continue
        pages.append(relative.as_posix())
    return pages


def check_page(site: Path, page: str, base_url: str, chromium: str,
               screenshots: Path | None = None) -> list[str]:
    """Every problem of one page: static files, served images, rendered equations."""
    html = (site / page).read_text(encoding="utf-8")
    problems = check_static_page(site, page) + check_served_images(site, base_url, page, html)
    screenshot = screenshots / PurePosixPath(page).with_suffix(".png") if screenshots else None
    try:
        dom = render(chromium, f"{base_url}/{quote(page)}", screenshot)
        problems += check_rendered_dom(html, dom)
        for width, height in LAYOUT_WIDTHS if not refresh_target(html) else ():
            # in a frame of that width: a headless window is wider than a phone
            probed = render(chromium, f"{base_url}{LAYOUT_FRAME_PREFIX}{width}/{quote(page)}",
                            window=f"{width + 100},{height}")
            problems += [f"at {width} px: {problem}" for problem in layout_problems(probed)]
    except BrowserError as error:
        return problems + [str(error)]
    return problems


def check_site(site: Path, chromium: str, screenshots: Path | None = None) -> dict[str, list[str]]:
    """The problems of every page of the site, page by page, printing one line per page."""
    pages = book_pages(site)
    results = {}
    with serve(site) as base_url, ThreadPoolExecutor(PARALLEL_PAGES) as pool:
        def check(page: str) -> list[str]:
            return check_page(site, page, base_url, chromium, screenshots)

        for page, problems in zip(pages, pool.map(check, pages), strict=True):
            results[page] = problems
            print(f"{'OK  ' if not problems else 'FAIL'} {page}", flush=True)
            for problem in problems:
                print(f"     - {problem}", flush=True)
    return results


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.browser_check",
        description="Open every page of the built book in headless Chromium and check "
        "equations, figures and links.",
    )
    parser.add_argument("site", type=Path, help="the built site, e.g. _build/html")
    parser.add_argument("--screenshots", type=Path, metavar="DIR",
                        help="also save a PNG screenshot of every page under DIR")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the check; 0 if every page is fine, 1 if one is not, 2 if the check cannot run."""
    arguments = parse_arguments(argv)
    site = arguments.site.resolve()
    if not (site / "index.html").is_file():
        print(f"browser check: no index.html in {arguments.site}; build the book first (make book)",
              file=sys.stderr)
        return 2
    chromium = find_chromium()
    if chromium is None:
        missing = (f"${CHROMIUM_ENV}={os.environ[CHROMIUM_ENV]} is not an executable"
                   if os.environ.get(CHROMIUM_ENV) else "Chromium is not installed")
        if os.environ.get(OPTIONAL_ENV) == "1":
            print(f"SKIP browser check: {missing} ({OPTIONAL_ENV}=1)")
            return 0
        print(f"browser check: {missing}; {INSTALL_HINT}", file=sys.stderr)
        return 2
    pages = book_pages(site)
    print(f"browser check: {len(pages)} page(s) of {arguments.site} in {chromium}", flush=True)
    results = check_site(site, chromium, arguments.screenshots)
    failed = [page for page, problems in results.items() if problems]
    if failed:
        print(f"browser check FAILED on {len(failed)} of {len(results)} page(s): "
              + ", ".join(failed))
        return 1
    print(f"browser check passed: {len(results)} page(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
