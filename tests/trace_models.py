"""Models built in the repo for the tracer's round trips (torchvision is not a dependency): an MLP with biases, small
CNNs, a residual block with a strided 1×1 downsample skip, a CNN with BatchNorm and max-pooling, a block with a
concatenation, and ResNet-18 (He et al. 2016, Table 1, BasicBlock [2, 2, 2, 2]) in CIFAR geometry (3×3 stem, no
max-pool) and ImageNet geometry (7×7 stride-2 stem, 3×3 stride-2 max-pool, global average pool). Each file-level
factory takes no arguments, so ``boundcalc trace tests/trace_models.py:mlp`` works."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _seeded(make, seed: int = 0):
    torch.manual_seed(seed)
    model = make()
    _randomise_batchnorm(model)
    return model.eval()


def _randomise_batchnorm(model: nn.Module) -> None:
    """Running statistics and affine parameters away from their defaults (1, 0), so a forward pass that ignored
    a BatchNorm would be caught."""
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = module.num_features
            with torch.no_grad():
                module.weight.copy_(0.5 + torch.rand(c, generator=gen))
                module.bias.copy_(0.2 * torch.randn(c, generator=gen))
                module.running_mean.copy_(0.3 * torch.randn(c, generator=gen))
                module.running_var.copy_(0.5 + torch.rand(c, generator=gen))


def mlp() -> nn.Module:
    """64 → 32 → 32 → 10 with biases (the digits MLP)."""
    return _seeded(lambda: nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                                         nn.Linear(32, 10)))


class SmallCNN(nn.Module):
    """conv 3×3 (stride 1, padding 1) → ReLU → conv 3×3 → leaky ReLU → 2×2 average pool → flatten → linear."""

    def __init__(self, bias: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=bias)
        self.conv2 = nn.Conv2d(4, 6, 3, bias=bias)
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Linear(6 * 3 * 3, 10, bias=bias)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.leaky_relu(self.conv2(x), 0.1)
        return self.head(torch.flatten(self.pool(x), 1))


def cnn() -> nn.Module:
    return _seeded(lambda: SmallCNN(bias=False))


def cnn_with_biases() -> nn.Module:
    return _seeded(lambda: SmallCNN(bias=True))


class ResidualBlock(nn.Module):
    """y = relu(conv2(relu(conv1(x))) + down(x)): conv1 3×3 stride 2, down a 1×1 stride-2 projection."""

    def __init__(self, c_in: int, c_out: int, batchnorm: bool = False) -> None:
        super().__init__()
        norm = (lambda c: nn.BatchNorm2d(c)) if batchnorm else (lambda c: nn.Identity())
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False)
        self.bn1 = norm(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = norm(c_out)
        self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=2, bias=False), norm(c_out))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.downsample(x)
        return self.relu(out)


class ResNetStyle(nn.Module):
    """stem conv → one residual block with a downsample skip → 4×4 average pool → flatten → linear."""

    def __init__(self, head_bias: bool = False) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.block = ResidualBlock(4, 8)
        self.pool = nn.AvgPool2d(4)
        self.fc = nn.Linear(8, 10, bias=head_bias)

    def forward(self, x):
        x = self.block(self.relu(self.stem(x)))
        return self.fc(self.pool(x).view(x.shape[0], -1))


def resnet_block() -> nn.Module:
    return _seeded(lambda: ResNetStyle())


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3×3 convs with BatchNorm; a 1×1 projection when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(c_out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    """ResNet-18 (BasicBlock × [2, 2, 2, 2], widths 64·[1, 2, 4, 8] × ``width``); ``imagenet``: the 7×7 stem and
    max-pool, else the CIFAR stem (3×3 stride 1, no max-pool)."""

    def __init__(self, imagenet: bool, classes: int = 10, width: float = 1.0) -> None:
        super().__init__()
        widths = [max(1, int(64 * width * 2 ** i)) for i in range(4)]
        if imagenet:
            self.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if imagenet else nn.Identity()
        layers, c_in = [], widths[0]
        for i, c in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(c_in, c, stride), BasicBlock(c, c, 1)))
            c_in = c
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18_cifar() -> nn.Module:
    return _seeded(lambda: ResNet18(imagenet=False))


def resnet18_imagenet() -> nn.Module:
    return _seeded(lambda: ResNet18(imagenet=True, classes=1000))


class BnPoolCNN(nn.Module):
    """conv → BatchNorm → ReLU → 3×3 stride-2 max-pool (overlapping windows) → conv with bias → GELU → global mean
    → dropout → linear with bias."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = F.gelu(self.conv2(x)).mean((2, 3))
        return self.fc(self.drop(x))


def bn_pool_cnn() -> nn.Module:
    return _seeded(BnPoolCNN)


class ConcatBlock(nn.Module):
    """Two branches (1×1 and 3×3 convs) joined along channels, then a 1×1 conv, pooling and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Conv2d(1, 3, 1, bias=False)
        self.right = nn.Conv2d(1, 5, 3, padding=1, bias=False)
        self.mix = nn.Conv2d(8, 4, 1, bias=False)
        self.pool = nn.AvgPool2d(4)
        self.fc = nn.Linear(4 * 2 * 2, 10, bias=False)

    def forward(self, x):
        y = torch.cat([F.relu(self.left(x)), F.relu(self.right(x))], dim=1)
        return self.fc(torch.flatten(self.pool(F.relu(self.mix(y))), 1))


def concat_block() -> nn.Module:
    return _seeded(ConcatBlock)
