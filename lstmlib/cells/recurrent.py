"""The recurrent cell contract and the loop that unrolls a cell over time.

Chapter 1 of the book ("Recurrent neural networks") is built on this module.
A *cell* is one application of the recurring function

    (s_t, o_t) = f(s_{t-1}, x_t)

and :class:`Recurrent` composes the same cell over every step of a sequence;
:func:`unroll` is its plain loop, one ``cell.step`` per time step, which the
analysis modules also call on their own.

Every cell in lstmlib splits its step into two parts so that the part that
depends only on the input can be computed for all time steps at once:

* :meth:`Cell.project_input` maps ``x_t`` to whatever the step needs from it
  (for most cells ``U x_t + b``, one affine map). It has no recurrence, so
  :class:`Recurrent` applies it to the whole ``(T, B, input_size)`` sequence in
  one matrix product.
* :meth:`Cell.step` takes that projection and the previous state and returns
  ``(output, new state)``.

``cell(x_t, state)`` is ``cell.step(cell.project_input(x_t), state)`` after its
inputs have been validated, so a cell used on its own and a cell unrolled by
:class:`Recurrent` compute the same function.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn

from .._checks import check_positive_int, check_steps, describe
from .kernels import plain_tensors

State = Union[Tensor, Tuple[Tensor, ...]]


def state_parts(state: State) -> Tuple[Tensor, ...]:
    """The tensors of a state, as a tuple (one for a single-tensor state)."""
    return tuple(state) if isinstance(state, (tuple, list)) else (state,)


__all__ = ["Cell", "Recurrent", "State", "state_parts", "unroll"]


class Cell(nn.Module):
    """Base class of every recurrent cell in lstmlib.

    A cell maps ``(x_t, state_{t-1})`` to ``(o_t, state_t)`` for one time step.

    Attributes:
        input_size: m, the size of the input vector ``x_t``.
        state_size: n, the size of each state tensor.
        output_size: the size of the output ``o_t`` (``state_size`` unless a
            cell says otherwise).
        state_names: names of the state tensors in order. A cell with one name
            carries a single Tensor as its state; a cell with several carries a
            tuple in this order (for the LSTM ``("h", "c")``, PyTorch's order).

    Inputs of ``forward``:
        x: ``(B, input_size)``.
        state: a ``(B, state_size)`` Tensor, or a tuple of such Tensors in the
            order of ``state_names``.

    Outputs of ``forward``:
        ``(output, new_state)`` with output ``(B, output_size)`` and new_state
        shaped like ``state``.

    Subclasses implement :meth:`project_input` (optional; the identity by
    default) and :meth:`step`.

    Example: a cell without parameters, ``s_t = s_{t-1}/2 + x_t`` with
    ``o_t = s_t``; one step, then three steps of a constant input.

    >>> import torch
    >>> from lstmlib import Cell, Recurrent
    >>> class Halving(Cell):
    ...     def step(self, x_t, s):
    ...         s = s / 2 + x_t
    ...         return s, s
    >>> cell = Halving(input_size=2, state_size=2)
    >>> o_t, s_t = cell(torch.ones(1, 2), cell.initial_state(1))   # B = 1
    >>> o_t.tolist()
    [[1.0, 1.0]]
    >>> outputs, s_T = Recurrent(cell)(torch.ones(3, 1, 2))        # T = 3
    >>> outputs.shape, outputs[:, 0, 0].tolist()
    (torch.Size([3, 1, 2]), [1.0, 1.5, 1.75])
    """

    state_names: Tuple[str, ...] = ("s",)
    #: Names of the state_size-wide blocks of ``project_input(x)`` (the rows
    #: of a fused U and b), in order; empty for a single block. Diagrams
    #: (:mod:`lstmlib.display.diagrams`) label a fused product's blocks with them.
    gate_names: Tuple[str, ...] = ()

    def __init__(self, input_size: int, state_size: int):
        super().__init__()
        check_positive_int(type(self).__name__, "input_size", input_size)
        check_positive_int(type(self).__name__, "state_size", state_size)
        self.input_size = input_size
        self.state_size = state_size

    @property
    def output_size(self) -> int:
        return self.state_size

    # -- the contract ---------------------------------------------------------
    def initial_state(self, batch_size: int, *, device=None, dtype=None
                      ) -> State:
        """The zero state for a batch: a ``(B, state_size)`` Tensor, or a
        tuple of them in the order of ``state_names``. Device and dtype
        default to those of the cell's parameters."""
        check_positive_int(f"{type(self).__name__}.initial_state",
                           "batch_size", batch_size)
        ref = self.reference_tensor()
        device = ref.device if device is None else device
        dtype = ref.dtype if dtype is None else dtype
        parts = tuple(torch.zeros(batch_size, self.state_size,
                                  device=device, dtype=dtype)
                      for _ in self.state_names)
        return parts[0] if len(parts) == 1 else parts

    def uniform_parameters_(self, exclude: Tuple[str, ...] = ()) -> None:
        """Draw every parameter not named in ``exclude`` from
        U(-1/√n, 1/√n), n = state_size: PyTorch's default for its recurrent
        modules, and the starting point of every cell's reset_parameters."""
        bound = 1.0 / math.sqrt(self.state_size)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name not in exclude:
                    nn.init.uniform_(p, -bound, bound)

    def project_input(self, x: Tensor) -> Tensor:
        """The input's contribution to a step, for any leading shape
        ``(..., input_size)``. The default passes ``x`` through unchanged."""
        return x

    def step(self, x_proj: Tensor, state: State) -> Tuple[Tensor, State]:
        """One step from the projected input; see the subclass's equations."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement step()"
        )

    def forward_sequence(self, x: Tensor, state: State
                         ) -> Optional[Tuple[Tensor, State]]:
        """A fast path over a whole time-major sequence ``x`` ``(T, B, m)``
        from a validated ``state``: ``(outputs (T, B, output_size), final
        state)``, or ``None`` where the cell has none. The default is
        ``None``; :class:`Recurrent` then runs :meth:`step` in a loop. A cell
        that overrides it must compute exactly what that loop computes, and
        return ``None`` where it cannot (see :meth:`computes_step_of`)."""
        return None

    def computes_step_of(self, owner: type) -> bool:
        """Whether this cell's step is ``owner``'s: neither its class
        overrides ``owner``'s :meth:`step` or :meth:`project_input`, nor
        the instance sets either. A fast path written for ``owner``'s
        equations asks this first, so that a subclass that changes the
        step runs its own step."""
        kind = type(self)
        return (isinstance(self, owner) and kind.step is owner.step
                and kind.project_input is owner.project_input
                and "step" not in vars(self)
                and "project_input" not in vars(self))

    def forward(self, x: Tensor, state: State) -> Tuple[Tensor, State]:
        self.check_input(x, expected_dims=2)
        self.check_state(state, batch_size=x.shape[0], like=x)
        return self.step(self.project_input(x), state)

    # -- validation ---------------------------------------------------------
    def reference_tensor(self) -> Tensor:
        """A tensor with the dtype and device of the cell's parameters
        (its first parameter; an empty float tensor for a cell without
        any), which the cell's inputs and states must match."""
        for p in self.parameters():
            return p
        return torch.empty(0)

    def check_input(
        self, x, *, expected_dims: int, layout: str = "(B, input_size)"
    ) -> None:
        """Raise a ``TypeError``/``ValueError`` naming what was expected and
        what was given unless ``x`` is a Tensor of the right shape, dtype and
        device for this cell."""
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(
                f"{name}: expected the input x to be a torch.Tensor {layout}, "
                f"got {describe(x)}"
            )
        if x.dim() != expected_dims or x.shape[-1] != self.input_size:
            expected = layout.replace("input_size", str(self.input_size))
            raise ValueError(
                f"{name}: expected the input x of shape {expected}, "
                f"got shape {tuple(x.shape)}"
            )
        ref = self.reference_tensor()
        if x.dtype != ref.dtype:
            raise TypeError(
                f"{name}: expected the input x with dtype {ref.dtype} (the "
                f"cell's parameters), got {x.dtype}; convert one of them, "
                f"e.g. cell.to({x.dtype}) or x.to({ref.dtype})"
            )
        if x.device != ref.device:
            raise ValueError(
                f"{name}: expected the input x on device {ref.device} (the "
                f"cell's parameters), got {x.device}"
            )

    def check_state(self, state, *, batch_size: int, like: Tensor) -> None:
        """Raise a ``TypeError``/``ValueError`` unless ``state`` has this
        cell's structure (see ``state_names``), shape ``(batch_size, state_size)`` per
        part, and the dtype and device of ``like``."""
        name = type(self).__name__
        k = len(self.state_names)
        if k == 1:
            expected_structure = f"a Tensor ({batch_size}, {self.state_size})"
            parts = (state,) if isinstance(state, Tensor) else None
        else:
            names = ", ".join(self.state_names)
            expected_structure = (
                f"a tuple ({names}) of {k} Tensors "
                f"({batch_size}, {self.state_size})"
            )
            parts = (
                tuple(state)
                if isinstance(state, (tuple, list))
                and len(state) == k
                and all(isinstance(p, Tensor) for p in state)
                else None
            )
        if parts is None:
            raise TypeError(
                f"{name}: expected the state to be {expected_structure}, "
                f"got {describe(state)}"
            )
        for part_name, part in zip(self.state_names, parts):
            if tuple(part.shape) != (batch_size, self.state_size):
                raise ValueError(
                    f"{name}: expected state {part_name!r} of shape "
                    f"({batch_size}, {self.state_size}), got {tuple(part.shape)}"
                )
            if part.dtype != like.dtype or part.device != like.device:
                raise TypeError(
                    f"{name}: expected state {part_name!r} with dtype "
                    f"{like.dtype} on {like.device} (like the input), got "
                    f"dtype {part.dtype} on {part.device}"
                )

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, state_size={self.state_size}"


class Recurrent(nn.Module):
    """Unroll a :class:`Cell` over a sequence, sharing its parameters.

    Args:
        cell: the cell applied at every step.
        batch_first: if ``True`` the input and outputs are ``(B, T, ·)``;
            by default they are time-major, ``(T, B, ·)`` (PyTorch's default).
        fused: whether to offer the cell its fast path,
            :meth:`Cell.forward_sequence` (see below; default ``True``).
            ``False`` always runs the plain loop, one ``cell.step`` per time
            step, which is what chapters that look inside the unrolled
            graph need.

    Inputs of ``forward``:
        x: ``(T, B, input_size)``, or ``(B, T, input_size)`` with batch_first.
        state: the initial state (see :class:`Cell`); ``None`` means
            ``cell.initial_state(B)``, zeros.

    Outputs of ``forward``:
        outputs: ``(T, B, output_size)`` (``(B, T, output_size)`` with
            batch_first), the cell's output at every step.
        final_state: the state after the last step, shaped like ``state``.

    The input projections of all T steps are computed in one call of
    ``cell.project_input`` (one matrix product) before the loop; only the
    recurrent part runs step by step. This computes exactly what calling the
    cell T times does.

    By default (``fused=True``), the cell is first asked for its fast path,
    :meth:`Cell.forward_sequence`. The ``BasicLSTMCell``, the
    ``GRUCell(reset="after")`` and the ``VanillaRNNCell`` answer with a
    kernel of :mod:`lstmlib.cells.kernels`: the same function (tested to
    1e-10 in float64, gradients included) in fewer, larger operations,
    with a backward pass derived by hand. Every other cell answers
    ``None`` and takes the loop, and so does any run under ``torch.func``,
    forward-mode differentiation or on tensor subclasses
    (:func:`~lstmlib.cells.kernels.plain_tensors`).

    Example: T = 7 steps of a batch of B = 2, time-major and batch-first;
    the result is what calling the cell 7 times gives.

    >>> import torch
    >>> from lstmlib import Recurrent, VanillaRNNCell
    >>> cell = VanillaRNNCell(input_size=3, state_size=5)
    >>> x = torch.randn(7, 2, 3)                            # (T, B, m)
    >>> outputs, s_T = Recurrent(cell)(x)
    >>> outputs.shape, s_T.shape
    (torch.Size([7, 2, 5]), torch.Size([2, 5]))
    >>> Recurrent(cell, batch_first=True)(x.transpose(0, 1))[0].shape
    torch.Size([2, 7, 5])
    >>> s = cell.initial_state(2)
    >>> for x_t in x:
    ...     o_t, s = cell(x_t, s)
    >>> torch.allclose(s, s_T, atol=1e-6)
    True
    """

    def __init__(self, cell: Cell, *, batch_first: bool = False,
                 fused: bool = True):
        super().__init__()
        if not isinstance(cell, Cell):
            raise TypeError(
                f"Recurrent: expected an lstmlib Cell, got {type(cell).__name__}"
            )
        if not isinstance(fused, bool):
            raise TypeError(f"Recurrent: expected fused to be True or False, "
                            f"got {fused!r}")
        self.cell = cell
        self.batch_first = bool(batch_first)
        self.fused = fused

    def forward(self, x: Tensor, state: State | None = None
                ) -> Tuple[Tensor, State]:
        x, state = self.time_major_and_state(x, state)   # x: (T, B, m)
        fast = None
        if self.fused and plain_tensors(x, *state_parts(state)):
            fast = self.cell.forward_sequence(x, state)  # None: no fast path
        if fast is not None:
            out, state = fast
        else:
            out, state = unroll(self.cell, x, state)     # (T, B, output_size)
        if self.batch_first:
            out = out.transpose(0, 1)                # (B, T, output_size)
        return out, state

    def time_major_and_state(self, x: Tensor, state: State | None
                             ) -> Tuple[Tensor, State]:
        """Validate the input and state; return the input time-major and the
        state (zeros for ``None``)."""
        layout = "(B, T, input_size)" if self.batch_first \
            else "(T, B, input_size)"
        self.cell.check_input(x, expected_dims=3, layout=layout)
        if self.batch_first:
            x = x.transpose(0, 1)
        B = x.shape[1]
        check_steps("Recurrent", x)
        if state is None:
            return x, self.cell.initial_state(B, device=x.device,
                                              dtype=x.dtype)
        self.cell.check_state(state, batch_size=B, like=x)
        return x, state


def unroll(cell: Cell, x: Tensor, state: State | None = None, *,
           keep_states: bool = False):
    """Run ``cell`` over a sequence, one ``cell.step`` per time step: the
    plain loop of a recurrent network, with the input projected first ::

        x̃ = cell.project_input(x)                  # all T steps at once
        (o_t, s_t) = cell.step(x̃_t, s_{t-1})       # t = 1, ..., T

    Args:
        cell: any :class:`Cell`.
        x: the inputs x_1, ..., x_T, time-major ``(T, B, input_size)``; or
            one sequence ``(T, input_size)``, whose x_t every row of the
            state's batch receives (a batch of copies of one sequence).
        state: s_0, ``(B, state_size)`` or a tuple of such Tensors in the
            order of ``cell.state_names``; ``None`` means zeros (B = 1 for
            one sequence).
        keep_states: whether to return the state after every step too.

    Returns:
        ``(outputs, final_state)``: o_1, ..., o_T ``(T, B, output_size)``
        and s_T, shaped like ``state``. With ``keep_states``, ``(outputs,
        final_state, states)``, where ``states`` holds s_1, ..., s_T:
        ``(T, B, state_size)``, or a tuple of such Tensors for a cell with
        several state parts.

    :class:`Recurrent` runs this loop where the cell has no fast path
    (always with ``fused=False``). It is plain PyTorch, one step at a time,
    so ``torch.func`` transforms, forward-mode derivatives and tracers see
    every operation of every step.

    >>> from lstmlib import VanillaRNNCell
    >>> cell = VanillaRNNCell(3, 4)
    >>> outputs, s_T = unroll(cell, torch.randn(5, 2, 3))    # T = 5, B = 2
    >>> outputs.shape, s_T.shape
    (torch.Size([5, 2, 4]), torch.Size([2, 4]))
    >>> _, _, states = unroll(cell, torch.randn(5, 3), keep_states=True)
    >>> states.shape                                         # one sequence
    torch.Size([5, 1, 4])
    """
    x, state = _batch_and_state(cell, x, state)      # x: (T, B, m)
    x_proj = cell.project_input(x)                   # all T steps at once
    outputs, states = [], []
    for x_t in x_proj:                               # only the recurrence
        out, state = cell.step(x_t, state)           # runs step by step
        outputs.append(out)
        if keep_states:
            states.append(state)
    outputs = torch.stack(outputs)                   # (T, B, output_size)
    if not keep_states:
        return outputs, state
    if isinstance(state, Tensor):
        return outputs, state, torch.stack(states)   # (T, B, state_size)
    return outputs, state, tuple(torch.stack(part) for part in zip(*states))


def _batch_and_state(cell: Cell, x: Tensor, state: State | None
                     ) -> Tuple[Tensor, State]:
    """Raise unless ``x`` and ``state`` are what :func:`unroll` takes;
    return ``x`` as ``(T, B, m)`` (one sequence repeated for every row of
    the state's batch) and the state (zeros for ``None``)."""
    if not isinstance(cell, Cell):
        raise TypeError(f"unroll: expected an lstmlib Cell, got "
                        f"{type(cell).__name__}")
    one_sequence = isinstance(x, Tensor) and x.dim() == 2
    cell.check_input(x, expected_dims=2 if one_sequence else 3,
                     layout="(T, B, input_size) or (T, input_size)")
    check_steps("unroll", x)
    if one_sequence:
        first = state_parts(state)[0] if state is not None else None
        batch_size = (first.shape[0] if isinstance(first, Tensor)
                      and first.dim() > 0 else 1)
    else:
        batch_size = x.shape[1]
    if state is None:
        state = cell.initial_state(batch_size, device=x.device,
                                   dtype=x.dtype)
    cell.check_state(state, batch_size=batch_size, like=x)
    if one_sequence:
        x = x[:, None].expand(-1, batch_size, -1)    # (T, B, m), no copy
    return x, state
