"""Show lstmlib's own source code in a chapter, so the book never re-types it."""

from __future__ import annotations

import inspect
import textwrap

__all__ = ["show_source", "SourceCode"]


class SourceCode:
    """Source text that renders as a highlighted Python block in Jupyter, Colab
    and the built book (as Markdown) and as plain text elsewhere."""

    def __init__(self, text: str, origin: str):
        self.text = text
        self.origin = origin

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.text}\n```\n<small>source: <code>{self.origin}</code></small>"

    def __repr__(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text


def show_source(obj, lines: tuple[str, str] | None = None) -> SourceCode:
    """The source of an lstmlib class, function or method, for display in a
    notebook: ``show_source(VanillaRNNCell.step)``.

    ``lines=(first, last)`` shows only an excerpt: from the first line that
    contains ``first`` to the next line (from there on) that contains
    ``last``, inclusive, dedented. Raises ``TypeError`` for objects whose
    source Python cannot find (built-ins, objects defined in a notebook) and
    ``ValueError`` when a marker is not found."""
    try:
        text = inspect.getsource(obj)
        path = inspect.getsourcefile(obj)
    except (TypeError, OSError) as err:
        raise TypeError(
            f"show_source: expected a class, function or method defined in "
            f"a Python file, got {obj!r} ({err})"
        ) from None
    _, line = inspect.getsourcelines(obj)
    if lines is not None:
        text, offset = _excerpt(text, *lines)
        line += offset
    module = inspect.getmodule(obj)
    where = module.__name__ if module is not None else path
    qualname = getattr(obj, "__qualname__", getattr(obj, "__name__", ""))
    return SourceCode(
        textwrap.dedent(text).rstrip(), f"{where}.{qualname}, line {line}"
    )


def _excerpt(text: str, first: str, last: str) -> tuple[str, int]:
    """The lines of ``text`` from the one containing ``first`` to the next
    containing ``last``, and the index of the first of them."""
    rows = text.splitlines()
    start = next((k for k, row in enumerate(rows) if first in row), None)
    if start is None:
        raise ValueError(f"show_source: expected a line containing "
                         f"{first!r}, found none")
    stop = next((k for k in range(start, len(rows)) if last in rows[k]),
                None)
    if stop is None:
        raise ValueError(f"show_source: expected a line containing "
                         f"{last!r} after {first!r}, found none")
    return "\n".join(rows[start:stop + 1]), start
