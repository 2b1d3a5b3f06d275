"""What serves the book's pages rather than the models.

* :mod:`.diagrams`: data-flow diagrams of cells, traced from their code
* :mod:`.source`: showing lstmlib's own source in a chapter
* :mod:`.summary`: every cell side by side, generated from the cells
* :mod:`.text_activations`: one unit's activation drawn over a text
"""
