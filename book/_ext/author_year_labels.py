"""Author-year labels in the book's reference lists.

The text cites author-year ("Elman (1990)", sphinxcontrib-bibtex's
``author_year`` reference style), but pybtex's default styles label the
lists alphabetically ("[Elm90]"), so one work reads two ways. This Sphinx
extension registers the pybtex formatting style ``book_author_year``
(unsrt's entries, sorted by author, year and title) whose labels are the
same author-year text: "Elman 1990", "Hochreiter & Schmidhuber 1997",
"Cho et al. 2014", with a, b, ... where two works would share a label.
``_config.yml`` loads it (``sphinx.local_extensions``) and names the style
(``bibtex_default_style``).
"""
from __future__ import annotations

from collections import Counter

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import \
    SortingStyle as AuthorYearTitleSorting


def _last_name(person) -> str:
    """A person's last name as plain text ({\\"u} → ü, braces dropped)."""
    return Text.from_latex(" ".join(person.prelast_names
                                    + person.last_names)).render_as("text")


def author_year(entry) -> str:
    """``entry``'s label without the a/b suffix: up to two last names,
    then "et al.", and the year."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_last_name(p) for p in persons]
    if not names:
        who = Text.from_latex(entry.fields.get("title", entry.key)
                              ).render_as("text").split(":")[0]
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} & {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who} {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    """Labels "Author Year", with a, b, ... on labels that would clash."""

    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [author_year(e) for e in entries]
        clashing = {label for label, count in Counter(labels).items()
                    if count > 1}
        seen: Counter = Counter()
        for label in labels:
            if label in clashing:
                seen[label] += 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            else:
                yield label


class AuthorYearStyle(UnsrtStyle):
    """unsrt's entries, sorted by author and year, labelled author-year."""

    default_label_style = AuthorYearLabels
    default_sorting_style = AuthorYearTitleSorting


def setup(app):
    register_plugin("pybtex.style.formatting", "book_author_year",
                    AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
