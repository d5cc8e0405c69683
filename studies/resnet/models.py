"""The resnet study's networks: small CNNs and ResNets for 1×8×8 digit images, with and without BatchNorm.

Each architecture is a module-level callable with no arguments (``cnn_w8``, ``resnet_w16_bn``, …), which is
what ``boundcalc trace studies/resnet/models.py:<name> --input-shape 1,8,8`` imports and calls. The weights it
builds are random: the trace records the architecture only, and the trained state dicts bind to it by name.
"""
from __future__ import annotations

from functools import partial

from torch import nn

WIDTHS = (8, 16)
ARCHES = ("cnn", "resnet")


def conv_unit(c_in: int, c_out: int, batchnorm: bool, stride: int = 1) -> list[nn.Module]:
    """3×3 convolution (padding 1) and, with ``batchnorm``, a BatchNorm after it (the convolution then has
    no bias, as in torchvision's ResNets)."""
    conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=not batchnorm)
    return [conv, nn.BatchNorm2d(c_out)] if batchnorm else [conv]


class Block(nn.Module):
    """A basic ResNet block: relu(f(x) + skip(x)), f = conv–[bn]–relu–conv–[bn]; with ``stride`` 2 the skip
    is a strided 1×1 convolution (and BatchNorm), as in ResNet-18's downsampling blocks."""

    def __init__(self, c_in: int, c_out: int, batchnorm: bool, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(*conv_unit(c_in, c_out, batchnorm, stride), nn.ReLU(),
                                  *conv_unit(c_out, c_out, batchnorm))
        if stride != 1 or c_in != c_out:
            skip = [nn.Conv2d(c_in, c_out, 1, stride=stride, bias=not batchnorm)]
            self.skip = nn.Sequential(*skip, nn.BatchNorm2d(c_out)) if batchnorm else skip[0]
        else:
            self.skip = nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.body(x) + self.skip(x))


def cnn(width: int, batchnorm: bool) -> nn.Module:
    """conv–[bn]–relu, conv–[bn]–relu, 2×2 max-pool, linear: 8×8 → 4×4 → 10 classes."""
    return nn.Sequential(*conv_unit(1, width, batchnorm), nn.ReLU(), *conv_unit(width, width, batchnorm), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(width * 16, 10))


def resnet(width: int, batchnorm: bool) -> nn.Module:
    """A stem conv, one identity block, one downsampling block (stride 2, to 2·width channels on 4×4), global
    average pooling and a linear classifier."""
    return nn.Sequential(*conv_unit(1, width, batchnorm), nn.ReLU(), Block(width, width, batchnorm),
                         Block(width, 2 * width, batchnorm, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(2 * width, 10))


BUILDERS = {"cnn": cnn, "resnet": resnet}


def architecture_name(arch: str, width: int, batchnorm: bool) -> str:
    return f"{arch}_w{width}" + ("_bn" if batchnorm else "")


def build(arch: str, width: int, batchnorm: bool) -> nn.Module:
    return BUILDERS[arch](width, batchnorm)


#: the trace targets, one no-argument callable per architecture
for _arch in ARCHES:
    for _width in WIDTHS:
        for _bn in (False, True):
            globals()[architecture_name(_arch, _width, _bn)] = partial(build, _arch, _width, _bn)
