"""One unit's activation drawn over the text it read: every character on a
background coloured by the unit's value at that step, in the manner of the
pictures of Karpathy, Johnson & Fei-Fei (2015).

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import matplotlib.pyplot as plt
>>> fig, ax = plt.subplots()
>>> colours = draw_text_activation(ax, "ab\\ncd", [0.1, 0.5, 0.9, -1.0, 0.0])
>>> len(ax.texts), len(ax.patches)           # one glyph and cell each
(5, 5)
>>> plt.close(fig)
"""
from __future__ import annotations

from typing import Sequence

from .._checks import describe

__all__ = ["draw_text_activation"]

#: How a newline is shown (it ends its row).
NEWLINE_GLYPH = "↵"


def draw_text_activation(ax, text: str, values: Sequence[float], *,
                         limit: float | None = None, cmap: str = "RdBu_r",
                         fontsize: float = 9.0):
    """Draw ``text`` on ``ax``, one row per line, each character on a cell
    coloured by ``values`` at that character (a diverging map, 0 white).

    Args:
        ax: a matplotlib Axes; its axis lines are hidden.
        text: the characters, ``T`` of them; a newline is drawn as ``↵``
            and starts a new row.
        values: ``T`` numbers (a list or a 1-D tensor), e.g. one unit's c_t.
        limit: the value drawn at full colour, ± (default: the largest
            |value|).
        cmap: the colour map's name.
        fontsize: of the characters.

    Returns:
        A ``ScalarMappable`` for ``fig.colorbar(...)``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    values = [float(v) for v in values]
    if not isinstance(text, str) or not text or len(values) != len(text):
        raise ValueError("draw_text_activation: expected a non-empty str and "
                         "one value per character, got "
                         f"{describe(text)} of length "
                         f"{len(text) if isinstance(text, str) else '?'} "
                         f"and {len(values)} values")
    if limit is None:
        limit = max(abs(v) for v in values) or 1.0
    colours = ScalarMappable(Normalize(-limit, limit), plt.get_cmap(cmap))
    row = column = width = 0
    for character, value in zip(text, values):
        ax.add_patch(Rectangle((column, -row - 1), 1, 1, linewidth=0,
                               facecolor=colours.to_rgba(value)))
        glyph = NEWLINE_GLYPH if character == "\n" else character
        ax.text(column + 0.5, -row - 0.5, glyph, ha="center", va="center",
                family="monospace", fontsize=fontsize)
        column += 1
        width = max(width, column)
        if character == "\n":
            row, column = row + 1, 0
    ax.set_xlim(0, width)
    ax.set_ylim(-row - 1, 0)
    ax.set_axis_off()
    return colours
