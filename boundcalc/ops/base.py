"""What an op kind is: one declaration of everything boundcalc knows about one layer type.

An :class:`OpKind` holds the kind's spec fields (a pydantic model) and their validation, its output shape,
its :class:`Flags`, its Lipschitz constant (parameter-free maps), its numeric forward pass (torch imported
only when it runs) and what binding needs from a checkpoint (the weight's shape). Rule sets
(:mod:`boundcalc.calculus.rules`), the spec loader, the graph builder, the forward pass, binding and the
prior bounds read kinds from :mod:`boundcalc.ops.registry`; nothing else lists op kinds.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import sympy as sp

from boundcalc.errors import DeriveError, SpecError

Fail = Callable[[str], SpecError]


@dataclass(frozen=True)
class Flags:
    """Facts about a kind that bounds and rules ask about (each is a property of the map, not of a paper)."""

    weights: bool = False           # has a trained weight tensor (and the symbols s_, f_, r_, b_, w_)
    homogeneous: bool = False       # positively homogeneous: φ(c·x) = c·φ(x) for c ≥ 0
    piecewise_linear: bool = False
    pointwise: bool = False         # acts on each coordinate alone, or only reshapes
    one_lipschitz: bool = False     # ‖φ(x) − φ(y)‖ ≤ ‖x − y‖ for every valid parameter
    zero_at_zero: bool = True       # φ(0) = 0 for every valid parameter (else the kind checks its own)
    foldable_bias: bool = False     # a constant-1 coordinate passes through unchanged (bias folding)
    multi_input: bool = False       # reads two or more layers (e.g. add)
    reshape: bool = False           # only reorders coordinates (flatten)
    reads_token_bound: bool = False  # its rule reads the largest token norm of its inputs (State.token_norm)


class FieldReader(Protocol):
    """What a kind's :meth:`OpKind.params` may ask of the spec loader: located errors and parsed values."""

    def fail(self, path: tuple, message: str, hint: str | None = None) -> SpecError: ...

    def expr(self, value: Any, path: tuple) -> sp.Expr: ...

    def positive(self, value: Any, path: tuple, what: str) -> sp.Expr: ...

    def size(self, value: Any, path: tuple, what: str) -> sp.Expr: ...


class OpKind:
    """Base of every op kind; a kind overrides what applies to it. Instances are registered once by name."""

    name: ClassVar[str]
    fields: ClassVar[type]               # pydantic model of the spec item (unknown keys rejected)
    flags: ClassVar[Flags] = Flags()
    summary: ClassVar[str] = ""
    #: auto-name prefix: the n-th unnamed layer of this kind is <prefix><n> (default: the name without '_')
    name_prefix: ClassVar[str | None] = None
    #: the rank of the input this kind reads (1: vectors, 3: channels × height × width; None: any)
    input_rank: ClassVar[int | None] = None
    #: the spec field that gives a weight layer's output width (out, channels)
    width_field: ClassVar[str | None] = None
    #: why a graph with this kind cannot be run on data (None: it can)
    not_runnable: ClassVar[str | None] = None
    #: what derive's assumptions say about layers of this kind (None: nothing beyond the generic lines)
    assumption: ClassVar[str | None] = None
    #: tensors read under ``param`` as a prefix, ``<param>.<name>``: the weight, then tensors of the weight's
    #: length (a batchnorm's bias and running statistics); () for kinds whose ``param`` names the weight itself
    prefix_tensors: ClassVar[tuple[str, ...]] = ()
    #: tensors under the prefix that are not weights (bound to the layer, never reported unused)
    ignored_tensors: ClassVar[tuple[str, ...]] = ()
    #: a smallest use, for docs and the registry sweep test: (input shape, spec items ending in this kind)
    example: ClassVar[tuple[tuple[int, ...], tuple[dict, ...]]] = ((4,), ())
    #: the kind's place in the DAG ReLU model of Gonon et al. 2024, for the path-norm (docs/references.md §12):
    #: "edges" (neurons with weighted incoming edges and a bias, identity activation: linear, conv2d, avgpool),
    #: "max" (*-max-pooling neurons, incoming edges of weight 1), "activation" (the ReLU of the neurons before it),
    #: "sum" (identity neurons adding their inputs, edges of weight 1), "same" (no neurons: reshapes, identity);
    #: None: outside the model, and :meth:`path_forward` refuses
    path_role: ClassVar[str | None] = None

    @property
    def prefix(self) -> str:
        return self.name_prefix or self.name.replace("_", "")

    @property
    def dense_matrix(self) -> bool:
        """A weight that is one out × in matrix acting on vectors (rank ≤ out; widths set by regimes)."""
        return self.flags.weights and self.input_rank == 1

    @property
    def lipschitz_map(self) -> bool:
        """A parameter-free map of one input with a known Lipschitz constant ρ (rules scale by ρ)."""
        return not self.flags.weights and not self.flags.multi_input

    # -- spec ---------------------------------------------------------------------------------------
    def params(self, reader: FieldReader, model: Any, path: tuple) -> dict[str, Any]:
        """The layer's parsed parameters (sympy values, ints, tuples), validated; SpecError via ``reader``."""
        return {}

    def output_shape(self, params: dict[str, Any], shapes: list[tuple], fail: Fail, sources=()) -> tuple:
        """The output shape from the input shapes (one per input, already checked for arity; ``sources``: the
        input layers' names, for messages)."""
        return shapes[0]

    # -- math -----------------------------------------------------------------------------------------
    def lipschitz(self, name: str, params: dict[str, Any], value: Callable[[Any], Any]) -> Any:
        """ρ of a parameter-free map (``value`` turns a spec expression into the caller's number or symbol);
        DeriveError when there is none."""
        raise DeriveError(f"layer {name}: no Lipschitz constant known for op {self.name!r}")

    def lipschitz_at(self, name: str, params: dict[str, Any], value: Callable[[Any], Any],
                     in_shape: tuple | None = None) -> Any:
        """ρ for an input of ``in_shape`` (per sample; None: unknown). Kinds whose constant depends on the input
        size (adaptive pooling) override this; the rest give :meth:`lipschitz`."""
        return self.lipschitz(name, params, value)

    def at_zero(self, params: dict[str, Any]) -> sp.Expr:
        """φ(0), the value of a parameter-free map at the zero input, per coordinate (0 for every kind with
        ``flags.zero_at_zero``; a kind with φ(0) ≠ 0 overrides this)."""
        return sp.S.Zero

    def binds_tensors(self, params: dict[str, Any]) -> bool:
        """Whether a layer of this kind with ``params`` reads tensors from a checkpoint (a layernorm without its
        affine part does not)."""
        return self.flags.weights

    def kernel_area(self, params: dict[str, Any]) -> int | None:
        """Inputs per output coordinate per input channel (k_h·k_w for a convolution; None for a dense map)."""
        return None

    # -- numbers --------------------------------------------------------------------------------------
    def weight_shape(self, params: dict[str, Any], in_shape: tuple) -> tuple:
        """The weight tensor's shape (numbers or symbols) for an input of ``in_shape``."""
        raise NotImplementedError(f"op {self.name!r} has no weights")

    def forward(self, name: str, params: dict[str, Any], inputs: list, weight=None, bias=None):
        """The output tensor (float64, batch first) on the input tensors; BoundcalcError if it cannot run."""
        raise NotImplementedError(f"op {self.name!r} has no forward pass")

    def path_forward(self, name: str, params: dict[str, Any], inputs: list, weight=None, bias=None):
        """This layer in the path-norm pass (inputs ≥ 0): the forward pass with every weight and bias replaced by
        its absolute value, ReLU by the identity and max-pooling by the sum over its window; DeriveError for a
        kind outside the DAG ReLU model of Gonon et al. (never a guess)."""
        raise DeriveError(f"layer {name}: op {self.name!r} is outside the DAG ReLU model of the path-norm (ReLU, "
                          "identity and max-pooling neurons with linear, convolution, pooling and sum layers)")

    def geometry(self, params: dict[str, Any], in_shape: tuple) -> dict[str, Any] | None:
        """What measuring the weight needs beyond the tensor (a convolution's input size, stride, padding)."""
        return None


def absolute(tensor):
    """|tensor| in float64 (None stays None): the weights of the path-norm pass."""
    import torch

    return None if tensor is None else tensor.to(torch.float64).abs()


def window_count(size: sp.Expr, kernel: int, stride: int, padding: int, fail: Fail) -> sp.Expr:
    """Positions of a window of ``kernel`` sliding by ``stride`` over ``size`` + 2·``padding``."""
    out = sp.floor((size + 2 * padding - kernel) / stride) + 1
    if out.is_number and out < 1:
        raise fail(f"kernel {kernel} does not fit an input of size {size} (padding {padding})")
    return out


def format_shape(shape: tuple) -> str:
    """``(a, b, c)`` for error messages (numbers or symbols)."""
    return "(" + ", ".join(str(s) for s in shape) + ")"


def same_shape(a: tuple, b: tuple) -> bool:
    """Equal shapes, entries compared as expressions (``2*h`` equals ``h + h``)."""
    return len(a) == len(b) and all(sp.expand(x - y) == 0 for x, y in zip(a, b))
