"""A dilated or grouped convolution as a plain one, so that every conv-norm method applies to it unchanged.

A convolution with dilation d equals the convolution with the kernel spread out by d (zeros between the taps,
size d(k − 1) + 1); a convolution with g groups equals the convolution with the block-diagonal kernel of shape
(c_out, c_in, k_h, k_w) that is zero between groups. Both are the same linear operator on the same input, so
its operator norm, Frobenius norm and row norms are those of the plain convolution, and the filter norm (the
Frobenius norm of the kernel) is unchanged by the zeros. Unequal strides or paddings per side are not covered
by the conv-norm code yet (:mod:`boundcalc.measure.linalg` takes one stride and one padding): such a layer is
refused rather than measured with the wrong geometry.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from boundcalc.errors import BoundcalcError


def plain_convolution(kernel: torch.Tensor, geometry, layer: str | None = None):
    """(the equivalent undilated, ungrouped kernel, the geometry with dilation 1 and groups 1); BoundcalcError
    for unequal strides or paddings per side."""
    for what in ("stride", "padding"):
        if not isinstance(getattr(geometry, what), int):
            raise BoundcalcError(f"layer {layer or '?'}: {what} {tuple(getattr(geometry, what))} differs between height "
                                 f"and width; conv operator norms are computed for equal {what}s per side only")
    dilation, groups = geometry.dilation_hw, geometry.groups
    if dilation == (1, 1) and groups == 1:
        return kernel, geometry
    return ungrouped(dilated(kernel, dilation), groups), replace(geometry, dilation=1, groups=1)


def dilated(kernel: torch.Tensor, dilation: tuple[int, int]) -> torch.Tensor:
    """The kernel with d − 1 zeros between neighbouring taps along each side."""
    dh, dw = dilation
    if (dh, dw) == (1, 1):
        return kernel
    c_out, c_in, kh, kw = kernel.shape
    out = kernel.new_zeros(c_out, c_in, dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    out[:, :, ::dh, ::dw] = kernel
    return out


def ungrouped(kernel: torch.Tensor, groups: int) -> torch.Tensor:
    """The (c_out, groups·c_in_per_group, k_h, k_w) kernel: group j's output channels read only its inputs."""
    if groups == 1:
        return kernel
    c_out, per_group, kh, kw = kernel.shape
    out_per_group = c_out // groups
    out = kernel.new_zeros(c_out, groups * per_group, kh, kw)
    for j in range(groups):
        rows = slice(j * out_per_group, (j + 1) * out_per_group)
        out[rows, j * per_group:(j + 1) * per_group] = kernel[rows]
    return out
