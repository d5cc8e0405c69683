"""The op registry: every op kind declared once (see :mod:`boundcalc.ops.base`), one module per family.

- :mod:`boundcalc.ops.dense`: linear, conv2d (trained weights)
- :mod:`boundcalc.ops.elementwise`: relu, identity, tanh, leaky_relu, lipschitz
- :mod:`boundcalc.ops.structural`: add, flatten, avgpool, concat
- :mod:`boundcalc.ops.activations`: gelu, silu, sigmoid, softplus, elu, hardswish, dropout
- :mod:`boundcalc.ops.pooling`: maxpool, adaptive_avgpool
- :mod:`boundcalc.ops.normalization`: batchnorm (eval mode)
- :mod:`boundcalc.ops.sequence`: layernorm, token_mean (sequence data; linear is token-wise on (tokens, dim))
- :mod:`boundcalc.ops.attention`: softmax_mix (attention's parameter-free core; the ``attention`` composite expands into it)

Importing this package registers them, in this order (the order specs' error messages list them in).
Sets that bounds and rules use are flag queries (:data:`WEIGHT_OPS`, :data:`HOMOGENEOUS_OPS`, …).
"""
from __future__ import annotations

from boundcalc.ops import dense, elementwise, structural  # noqa: F401  (registers the kinds)
from boundcalc.ops import activations, pooling  # noqa: F401,I001  (registered after the kinds above)
from boundcalc.ops import normalization  # noqa: F401,I001  (registered after the kinds above)
from boundcalc.ops import sequence  # noqa: F401,I001  (registered after the kinds above)
from boundcalc.ops import attention  # noqa: F401,I001  (registered last)
from boundcalc.ops.base import Flags, OpKind, format_shape
from boundcalc.ops.registry import OPS, names_where, op_kind, register, unregister

#: kinds with a trained weight tensor
WEIGHT_OPS = names_where(lambda k: k.flags.weights)
#: parameter-free, coordinate-wise (or reshaping), positively homogeneous maps with φ(0) = 0 (ReLU-type)
HOMOGENEOUS_OPS = names_where(lambda k: not k.flags.weights and k.flags.pointwise and k.flags.homogeneous)
#: parameter-free single-input maps that are piecewise linear (VC-dimension results of Bartlett et al. 2019)
PIECEWISE_LINEAR_OPS = names_where(lambda k: k.lipschitz_map and k.flags.piecewise_linear)
#: parameter-free single-input maps with a Lipschitz constant (activations, pooling, flatten)
LIPSCHITZ_MAPS = names_where(lambda k: k.lipschitz_map)
#: kinds through which a folded bias's constant-1 coordinate passes unchanged
FOLDABLE_OPS = names_where(lambda k: k.flags.foldable_bias)

__all__ = ["OPS", "OpKind", "Flags", "op_kind", "register", "unregister", "names_where", "format_shape",
           "WEIGHT_OPS", "HOMOGENEOUS_OPS", "PIECEWISE_LINEAR_OPS", "LIPSCHITZ_MAPS", "FOLDABLE_OPS"]
