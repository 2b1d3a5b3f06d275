"""Reading the weights of PyTorch's recurrent modules.

Every lstmlib cell with a PyTorch counterpart has a ``from_torch``
classmethod; this module does the part they share: accept the one-layer,
unidirectional module (``nn.RNN``, ``nn.GRU``, ``nn.LSTM``) or its ``*Cell``
twin, refuse anything else with a message that says why, and hand over its
four weight tensors; for the cells whose parameters are PyTorch's with one
bias (the vanilla RNN, the basic LSTM), copy them either way.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["TorchWeights", "torch_weights", "new_torch_module"]


class TorchWeights(NamedTuple):
    """The weights of a one-layer PyTorch recurrent module, gates stacked by
    rows in PyTorch's order. The biases are ``None`` for ``bias=False``."""

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None
    bias_hh: Tensor | None

    def summed_bias(self) -> Tensor:
        """``bias_ih + bias_hh``: where only the sum enters the equations,
        lstmlib keeps one bias (zeros for a module without biases)."""
        if self.bias_ih is None:
            return torch.zeros_like(self.weight_ih[:, 0])
        return self.bias_ih + self.bias_hh

    def copy_into(self, cell: nn.Module) -> None:
        """Move ``cell`` to these weights' device and dtype and copy them
        into it, for a cell whose parameters are PyTorch's with one bias
        (the vanilla RNN, the basic LSTM): ``W ← weight_hh``,
        ``U ← weight_ih``, ``b ← bias_ih + bias_hh``."""
        cell.to(device=self.weight_ih.device, dtype=self.weight_ih.dtype)
        with torch.no_grad():
            cell.W.copy_(self.weight_hh)
            cell.U.copy_(self.weight_ih)
            cell.b.copy_(self.summed_bias())        # only the sum matters

    def copy_from(self, cell: nn.Module) -> None:
        """The reverse of :meth:`copy_into`, into a module with biases:
        ``weight_hh ← W``, ``weight_ih ← U``, ``bias_ih ← b`` and
        ``bias_hh ← 0``."""
        with torch.no_grad():
            self.weight_hh.copy_(cell.W)
            self.weight_ih.copy_(cell.U)
            self.bias_ih.copy_(cell.b)
            self.bias_hh.zero_()


def torch_weights(owner: str, module: nn.Module, layered: type,
                  single: type) -> TorchWeights:
    """The weights of ``module``, which must be a one-layer, unidirectional
    ``layered`` module without projection (e.g. ``nn.LSTM``) or a ``single``
    one (e.g. ``nn.LSTMCell``). ``owner`` names the caller in errors."""
    if isinstance(module, layered):
        proj_size = getattr(module, "proj_size", 0)
        if module.num_layers != 1 or module.bidirectional or proj_size:
            raise ValueError(
                f"{owner}: expected a 1-layer, unidirectional "
                f"nn.{layered.__name__} without projection, got "
                f"num_layers={module.num_layers}, "
                f"bidirectional={module.bidirectional}, "
                f"proj_size={proj_size}")
        suffix = "_l0"
    elif isinstance(module, single):
        suffix = ""
    else:
        raise TypeError(f"{owner}: expected nn.{layered.__name__} or "
                        f"nn.{single.__name__}, got {type(module).__name__}")
    return _weights_of(module, suffix)


def new_torch_module(owner: str, kind: str, layered: type, single: type,
                     like: Tensor, *args, **kwargs
                     ) -> tuple[nn.Module, TorchWeights]:
    """A new one-layer ``layered`` module (``kind`` = its name, e.g.
    ``"LSTM"``) or ``single`` one (e.g. ``"LSTMCell"``), built from ``args``
    and ``kwargs`` on the device and dtype of ``like``, and its weights, for
    a cell's ``to_torch`` to copy into. ``owner`` names the caller in
    errors."""
    if kind == layered.__name__:
        module, suffix = layered(*args, **kwargs), "_l0"
    elif kind == single.__name__:
        module, suffix = single(*args, **kwargs), ""
    else:
        raise ValueError(f"{owner}: expected kind '{layered.__name__}' or "
                         f"'{single.__name__}', got {kind!r}")
    module.to(device=like.device, dtype=like.dtype)
    return module, _weights_of(module, suffix)


def _weights_of(module: nn.Module, suffix: str) -> TorchWeights:
    biases = ((getattr(module, "bias_ih" + suffix),
               getattr(module, "bias_hh" + suffix)) if module.bias
              else (None, None))
    return TorchWeights(getattr(module, "weight_ih" + suffix),
                        getattr(module, "weight_hh" + suffix), *biases)
