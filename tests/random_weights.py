"""Random cell weights for tests that compare a cell with its equations."""
import torch


def randomize_(cell, scale=0.5):
    """Nonzero values everywhere, biases included, so no term hides."""
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_(0.0, scale)
    return cell


def randomize_uniform_(cell, bound):
    """Every parameter from U(-bound, bound): nonzero biases, and gates
    that reach saturation when ``bound`` is large."""
    with torch.no_grad():
        for p in cell.parameters():
            p.uniform_(-bound, bound)
    return cell
