"""The headless-browser check of the built site (tests/browser_check.py).

The checks are functions of HTML text, tested here on small synthetic pages
without a browser. Two end-to-end tests run the whole check through Chromium
on a tiny site that loads the book's local MathJax.
"""
import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from tests.browser_check import (
    CHROMIUM_ENV,
    OPTIONAL_ENV,
    book_pages,
    check_rendered_dom,
    check_served_images,
    check_static_page,
    find_chromium,
    image_kind,
    main,
    resolve,
    serve,
)

REPOSITORY = Path(__file__).resolve().parents[1]
LOCAL_MATHJAX = REPOSITORY / "_extra" / "mathjax"

INLINE_MATH = '<span class="math notranslate nohighlight">\\(x^2\\)</span>'
DISPLAY_MATH = '<div class="math notranslate nohighlight">\\[\\frac{a}{b}\\]</div>'
TYPESET = '<mjx-container class="MathJax" jax="CHTML"><mjx-math></mjx-math></mjx-container>'
LOCAL_MATHJAX_SCRIPT = '<script defer src="mathjax/tex-mml-chtml.js"></script>'
CDN_MATHJAX_SCRIPT = (
    '<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
)
# What Sphinx 7 writes before the MathJax script: only elements of class
# "math" are typeset, so a stray $$ in the prose stays raw.
SPHINX_MATHJAX_CONFIG = (
    '<script>window.MathJax = {"options": {"processHtmlClass": '
    '"tex2jax_process|mathjax_process|math|output_area"}}</script>'
)


def html_page(body: str, head: str = "") -> str:
    """A complete HTML document."""
    return f"<!DOCTYPE html><html><head><title>t</title>{head}</head><body>{body}</body></html>"


def png_bytes(width: int = 1, height: int = 1) -> bytes:
    """A valid, white, 8-bit greyscale PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    rows = b"".join(b"\x00" + b"\xff" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def write(site: Path, path: str, content: str | bytes) -> Path:
    """Write one file of a synthetic site."""
    file = site / path
    file.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content, encoding="utf-8")
    return file


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site with a local MathJax, a figure and a chapter with a section."""
    site = tmp_path / "html"
    write(site, "mathjax/tex-mml-chtml.js", "/* MathJax */")
    write(site, "_images/figure.png", png_bytes())
    write(site, "book/other.html", html_page('<section id="part"><h2>Part</h2></section>'))
    write(site, "book/index.html", html_page("<p>Contents</p>"))
    return site


# -- the equations, after the browser ran MathJax ----------------------------------
def test_raw_dollars_and_nothing_typeset_fail():
    static = html_page(f"<p>An equation {INLINE_MATH}</p>")
    dom = html_page("<p>An equation $$x$$</p>")
    problems = check_rendered_dom(static, dom)
    assert problems == [
        "MathJax typeset 0 of 1 equation(s)",
        "raw TeX delimiter $$ left in the text: 'An equation $$x$$'",
    ]


def test_untouched_tex_delimiters_fail():
    static = html_page(INLINE_MATH + DISPLAY_MATH)
    problems = check_rendered_dom(static, static)
    assert any("typeset 0 of 2" in problem for problem in problems), problems
    assert any("delimiter \\(" in problem for problem in problems), problems
    assert any("delimiter \\[" in problem for problem in problems), problems


def test_typeset_page_passes():
    static = html_page(f"<p>Inline {INLINE_MATH}.</p>{DISPLAY_MATH}")
    dom = html_page(f"<p>Inline {TYPESET}.</p><div class='math'>{TYPESET}</div>")
    assert check_rendered_dom(static, dom) == []


def test_page_without_math_needs_no_mathjax():
    assert check_rendered_dom(html_page("<p>prose</p>"), html_page("<p>prose</p>")) == []


def test_mathjax_error_fails_and_names_the_message():
    static = html_page(INLINE_MATH)
    dom = html_page(
        '<mjx-container><mjx-merror data-mjx-error="Missing argument for \\frac"></mjx-merror>'
        '<mjx-assistive-mml><math><merror data-mjx-error="Missing argument for \\frac">'
        "<mtext>Missing argument for \\frac</mtext></merror></math></mjx-assistive-mml>"
        "</mjx-container>"
    )
    assert check_rendered_dom(static, dom) == ["MathJax error: Missing argument for \\frac"]


def test_undefined_macro_fails():
    static = html_page(INLINE_MATH)
    dom = html_page(
        '<mjx-container><mjx-mtext style="color: red;"></mjx-mtext><mjx-assistive-mml><math>'
        '<mtext mathcolor="red">\\Rn</mtext></math></mjx-assistive-mml></mjx-container>'
    )
    assert check_rendered_dom(static, dom) == ["undefined TeX macro \\Rn"]


@pytest.mark.parametrize("prose", ["A Markdown output with $a^2$ inline", "the state $h$ here"])
def test_raw_single_dollar_math_fails(prose):
    problems = check_rendered_dom(html_page("<p>x</p>"), html_page(f"<p>{prose}</p>"))
    assert len(problems) == 1 and problems[0].startswith("raw TeX left in the text: '$"), problems


@pytest.mark.parametrize("row", ["|---|---|", "| --- | --- |",
                                 "|\u2014|\u2014|", "|:---:|"])
def test_a_table_left_as_text_fails(row):
    dom = html_page(f"<p>| a | b | {row} | 1 | 2 |</p>")
    problems = check_rendered_dom(html_page(""), dom)
    assert len(problems) == 1, problems
    assert problems[0].startswith("a Markdown table left as text")


def test_a_rendered_table_and_code_are_fine():
    dom = html_page("<table><tr><td>a</td></tr></table>"
                    "<pre>rows = ['|---|']</pre><p>a | b, and --- too</p>")
    assert check_rendered_dom(html_page(""), dom) == []


def test_dollar_amounts_are_not_math():
    prices = html_page("<p>It costs $5 and $6, or $ 7 $.</p>")
    assert check_rendered_dom(html_page(""), prices) == []


def test_delimiters_in_code_scripts_and_head_are_not_prose():
    dom = html_page(
        "<pre>$$ a $$</pre><p><code>\\(b\\)</code></p><script>var s = '\\\\[';</script>"
        "<style>p::before { content: '$$'; }</style>",
        head="<title>\\(t\\)</title>",
    )
    assert check_rendered_dom(html_page("<p>code</p>"), dom) == []


# -- the static files: images, links, MathJax script -------------------------------
def test_good_page_passes(site: Path):
    write(site, "book/chapter.html", html_page(
        f'{INLINE_MATH}<figure><img src="../_images/figure.png">'
        '<figcaption>Fig. 1.1 A figure.</figcaption></figure>'
        '<img src="https://example.org/remote.png"><img src="data:image/png;base64,AAAA">'
        '<a href="other.html#part">part</a> <a href="other.html">other</a> <a href="./">home</a>'
        '<a href="#here" id="here">here</a> <a href="#">top</a>'
        '<a href="https://example.org">web</a>'
        '<a href="mailto:a@b.c">mail</a> <a href="other.html?highlight=x#part">search hit</a>',
        head='<script defer src="../_static/../mathjax/tex-mml-chtml.js?v=123"></script>',
    ))
    assert check_static_page(site, "book/chapter.html") == []


def test_missing_image_fails(site: Path):
    write(site, "book/chapter.html", html_page('<figure><img src="../_images/missing.png">'
                                                  '<figcaption>c</figcaption></figure>'))
    assert check_static_page(site, "book/chapter.html") == [
        "image '../_images/missing.png' is missing (_images/missing.png)"
    ]


def test_empty_image_fails(site: Path):
    write(site, "_images/empty.png", b"")
    write(site, "book/chapter.html", html_page('<figure><img src="../_images/empty.png">'
                                                  '<figcaption>c</figcaption></figure>'))
    assert check_static_page(site, "book/chapter.html") == [
        "image '../_images/empty.png' is an empty file (_images/empty.png)"
    ]


def test_a_drawn_figure_without_a_caption_fails(site: Path):
    write(site, "book/chapter.html", html_page(
        '<div class="cell_output"><img src="../_images/figure.png"></div>'
        '<figure><img src="../_images/figure.png"></figure>'
        '<figure><img src="../_images/figure.png"><figcaption>Fig. 2</figcaption></figure>'
        '<img src="https://example.org/badge.png">'))
    problems = check_static_page(site, "book/chapter.html")
    assert len(problems) == 2
    assert all(p.startswith("figure without a caption: '../_images/figure.png'")
               for p in problems)


def test_broken_link_fails(site: Path):
    write(site, "book/chapter.html", html_page('<a href="nowhere.html">lost</a>'))
    assert check_static_page(site, "book/chapter.html") == [
        "broken link 'nowhere.html': no file book/nowhere.html"
    ]


def test_broken_fragment_fails(site: Path):
    write(site, "book/chapter.html", html_page('<a href="other.html#no-such-part">x</a>'))
    assert check_static_page(site, "book/chapter.html") == [
        "broken link 'other.html#no-such-part': no id 'no-such-part' in book/other.html"
    ]


def test_broken_fragment_on_the_same_page_fails(site: Path):
    write(site, "book/chapter.html", html_page('<h1 id="top">T</h1><a href="#bottom">x</a>'))
    assert check_static_page(site, "book/chapter.html") == [
        "broken link '#bottom': no id 'bottom' in book/chapter.html"
    ]


def test_link_out_of_the_site_fails(site: Path):
    write(site, "index.html", html_page('<a href="../../etc/passwd">x</a>'))
    assert check_static_page(site, "index.html") == [
        "link '../../etc/passwd' points outside the site"
    ]


def test_redirect_of_the_root_page_is_a_link(site: Path):
    write(site, "index.html", '<meta http-equiv="Refresh" content="0; url=book/gone.html" />')
    assert check_static_page(site, "index.html") == [
        "broken link 'book/gone.html': no file book/gone.html"
    ]


def test_cdn_mathjax_fails(site: Path):
    write(site, "book/chapter.html", html_page(INLINE_MATH, head=CDN_MATHJAX_SCRIPT))
    cdn = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"
    assert check_static_page(site, "book/chapter.html") == [
        f"MathJax is loaded from outside the site: {cdn}"
    ]


def test_missing_local_mathjax_fails(site: Path):
    shutil.rmtree(site / "mathjax")
    write(site, "index.html", html_page(INLINE_MATH, head=LOCAL_MATHJAX_SCRIPT))
    problems = check_static_page(site, "index.html")
    assert len(problems) == 1, problems
    assert "MathJax script 'mathjax/tex-mml-chtml.js' is missing" in problems[0]


def test_math_without_mathjax_fails(site: Path):
    write(site, "index.html", html_page(INLINE_MATH))
    assert check_static_page(site, "index.html") == ["1 math element(s) but no MathJax script"]


@pytest.mark.parametrize(
    ("page", "reference", "target"),
    [
        ("book/a.html", "b.html", "book/b.html"),
        ("book/a.html", "../_images/f.png?v=1#x", "_images/f.png"),
        ("book/a.html", "./", "book/index.html"),
        ("book/a.html", "../", "index.html"),
        ("book/a.html", "#frag", "book/a.html"),
        ("book/a.html", "my%20figure.png", "book/my figure.png"),
        ("index.html", "../outside.html", None),
    ],
)
def test_resolve(page, reference, target):
    assert resolve(page, reference) == target


def test_book_pages_leave_out_indexes_search_and_assets(site: Path):
    for path in ["index.html", "search.html", "genindex.html", "_static/webpack-macros.html",
                 "_sources/x.html", "mathjax/a11y/page.html"]:
        write(site, path, html_page(""))
    assert book_pages(site) == ["book/index.html", "book/other.html", "index.html"]


# -- what the server sends -----------------------------------------------------------
@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (png_bytes(), "png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"GIF89a\x01\x00", "gif"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "svg"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
        (b"<html>not found</html>", None),
    ],
)
def test_image_kind(head, kind):
    assert image_kind(head) == kind


def test_served_images_must_be_what_their_name_says(site: Path):
    write(site, "_images/fake.png", "<html>an error page</html>")
    html = html_page('<img src="../_images/figure.png"><img src="../_images/fake.png">')
    with serve(site) as base_url:
        problems = check_served_images(site, base_url, "book/chapter.html", html)
    assert problems == ["image '../_images/fake.png' is not a png image (found None)"]


# -- the command line ------------------------------------------------------------------
def test_a_folder_without_index_html_is_an_error(tmp_path: Path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no index.html" in capsys.readouterr().err


def test_without_chromium_the_check_fails_and_says_how_to_install_it(site, monkeypatch, capsys):
    write(site, "index.html", html_page(""))
    monkeypatch.setenv(CHROMIUM_ENV, "/nonexistent/chromium")
    monkeypatch.delenv(OPTIONAL_ENV, raising=False)
    assert main([str(site)]) == 2
    assert "apt-get install -y chromium" in capsys.readouterr().err


def test_without_chromium_the_optional_check_is_skipped(site, monkeypatch, capsys):
    write(site, "index.html", html_page(""))
    monkeypatch.setenv(CHROMIUM_ENV, "/nonexistent/chromium")
    monkeypatch.setenv(OPTIONAL_ENV, "1")
    assert main([str(site)]) == 0
    assert capsys.readouterr().out.startswith("SKIP browser check")


# -- end to end, in Chromium -----------------------------------------------------------
@pytest.fixture
def chromium() -> str:
    """The installed Chromium; its absence fails the test unless the check is optional here."""
    found = find_chromium()
    if found is None:
        if os.environ.get(OPTIONAL_ENV) == "1":
            pytest.skip(f"Chromium is not installed and {OPTIONAL_ENV}=1")
        pytest.fail("Chromium is not installed: run .ci/install-chromium "
                    f"(apt-get install chromium) or set {OPTIONAL_ENV}=1 to skip")
    return found


@pytest.fixture
def tiny_book(site: Path, chromium: str) -> Path:
    """A two-page site whose equations are typeset by the book's local MathJax."""
    if not (LOCAL_MATHJAX / "tex-mml-chtml.js").is_file():
        pytest.skip("_extra/mathjax is missing: run `make mathjax`")
    shutil.rmtree(site / "mathjax")
    shutil.copytree(LOCAL_MATHJAX, site / "mathjax")
    write(site, "index.html", html_page(
        f"<p>The state {INLINE_MATH} evolves as</p>{DISPLAY_MATH}"
        '<figure><img src="_images/figure.png" alt="figure"><figcaption>Fig. 1'
        '</figcaption></figure> <a href="book/other.html#part">next</a>',
        head=SPHINX_MATHJAX_CONFIG + LOCAL_MATHJAX_SCRIPT,
    ))
    return site


def test_the_whole_check_passes_on_a_good_site(tiny_book: Path, capsys):
    status = main([str(tiny_book), "--screenshots", str(tiny_book.parent / "shots")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "OK   index.html" in out
    assert (tiny_book.parent / "shots" / "index.png").read_bytes().startswith(b"\x89PNG")


def test_the_whole_check_fails_on_a_broken_link_and_bad_tex(tiny_book: Path, capsys):
    index = tiny_book / "index.html"
    bad_tex = ('<span class="math notranslate nohighlight">\\(\\frac{a}\\)</span>'
               '<span class="math notranslate nohighlight">\\(\\undefinedmacro x\\)</span>')
    index.write_text(index.read_text()
                     .replace("book/other.html", "book/missing.html")
                     .replace("<p>The state", f"<p>{bad_tex} The state"))
    status = main([str(tiny_book)])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "FAIL index.html" in out
    assert "broken link 'book/missing.html#part'" in out
    assert "MathJax error: Missing argument for \\frac" in out
    assert "undefined TeX macro \\undefinedmacro" in out


def test_the_layout_check_finds_what_is_cut_off_or_too_wide(tiny_book: Path, capsys):
    """A box that hides its overflow cuts its content off at any width; at
    390 px a 600-px line also reaches past the window, at 1280 px it does
    not; a wide element inside a box that scrolls is fine at both widths."""
    index = tiny_book / "index.html"
    index.write_text(index.read_text().replace("<p>The state", (
        '<article><p style="white-space:nowrap;width:600px">a line 600 pixels long</p>'
        '<div style="overflow:hidden;width:300px"><div style="width:350px">hidden</div></div>'
        '<div style="overflow-x:auto"><div style="width:900px">scrolls</div></div>'
        "</article><p>The state")))
    status = main([str(tiny_book)])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "at 390 px: past the window's right edge" in out and "a line 600 pixels" in out
    assert "at 390 px: cut off by its box (50 px)" in out and "hidden" in out
    assert "at 390 px: the page scrolls sideways" in out
    assert "at 1280 px: cut off by its box (50 px)" in out
    assert "at 1280 px: past" not in out and "at 1280 px: the page" not in out
    assert "> scrolls" not in out                # inside a box that scrolls
