"""Models built in the repo for the tracer's round trips (torchvision is not a dependency): an MLP with biases, small
CNNs, a residual block with a strided 1×1 downsample skip, a CNN with BatchNorm and max-pooling, a block with a
concatenation, and ResNet-18 (He et al. 2016, Table 1, BasicBlock [2, 2, 2, 2]) in CIFAR geometry (3×3 stem, no
max-pool) and ImageNet geometry (7×7 stride-2 stem, 3×3 stride-2 max-pool, global average pool). Each file-level
factory takes no arguments, so ``boundcalc trace tests/trace_models.py:mlp`` works. Sequence models (one sample
(T, d)): a hand-written softmax attention, nn.MultiheadAttention (self, causal, and the cross / masked forms the
spec cannot say) and nn.TransformerEncoderLayer stacks, each between a token-wise embedding and a mean-pooled head."""
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


# -- sequence models (one sample is (T, d)); traced with --input-shape T,d --------------------------------------

class HandAttention(nn.Module):
    """x → Linear q, k, v → softmax(q kᵀ·scale) v (multi-head through view/transpose/reshape) → Linear o, on
    (B, T, d). ``scale`` None: 1/√head_dim."""

    def __init__(self, dim: int = 8, heads: int = 2, scale: float | None = None) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.heads, self.scale = heads, scale

    def forward(self, x):
        batch, tokens, dim = x.shape
        h = self.heads
        scale = self.scale if self.scale is not None else (dim // h) ** -0.5
        if h == 1:
            attn = torch.softmax(self.q(x) @ self.k(x).transpose(-2, -1) * scale, dim=-1)
            return self.o(attn @ self.v(x))
        q, k, v = (t.view(batch, tokens, h, dim // h).transpose(1, 2) for t in (self.q(x), self.k(x), self.v(x)))
        attn = torch.softmax(q @ k.transpose(-2, -1) * scale, dim=-1)
        return self.o((attn @ v).transpose(1, 2).reshape(batch, tokens, dim))


class SequenceClassifier(nn.Module):
    """(B, T, d_in) → token-wise Linear embedding → ``body`` → mean over tokens → Linear head."""

    def __init__(self, body: nn.Module, d_in: int = 6, dim: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Linear(d_in, dim)
        self.body = body
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        return self.head(self.body(self.embed(x)).mean(dim=1))


class CausalHandAttention(HandAttention):
    """One head with a causal mask by masked_fill (not a pattern the tracer collapses: refused)."""

    def forward(self, x):
        scores = self.q(x) @ self.k(x).transpose(-2, -1) / x.shape[-1] ** 0.5
        scores = scores.masked_fill(torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).triu(1), float("-inf"))
        return self.o(torch.softmax(scores, dim=-1) @ self.v(x))


class SelfAttention(nn.Module):
    """nn.MultiheadAttention(batch_first) on its one input; ``mode`` "cross" reads a second sequence, "mask" a
    key_padding_mask and "attn_mask" a fixed (non-causal) attn_mask buffer (none can be said in a spec); ``causal``
    the causal mask."""

    def __init__(self, dim: int = 8, heads: int = 2, mode: str = "self", causal: bool = False,
                 bias: bool = True) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True, bias=bias)
        self.mode, self.causal = mode, causal
        self.register_buffer("band", torch.ones(5, 5, dtype=torch.bool).triu(2) | torch.ones(5, 5).bool().tril(-2))

    def forward(self, x):
        if self.mode == "cross":
            return self.attn(x, x.flip(1), x.flip(1), need_weights=False)[0]
        if self.mode == "mask":
            return self.attn(x, x, x, key_padding_mask=x[..., 0] > 1.5, need_weights=False)[0]
        if self.mode == "attn_mask":
            return self.attn(x, x, x, attn_mask=self.band, need_weights=False)[0]
        if self.mode == "weights":         # torch's default need_weights=True, the weights not used
            return self.attn(x, x, x)[0]
        if self.causal:
            mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
            return self.attn(x, x, x, attn_mask=mask, is_causal=True, need_weights=False)[0]
        return self.attn(x, x, x, need_weights=False)[0]


class CausalEncoder(nn.Module):
    """One pre-norm nn.TransformerEncoderLayer called with the causal src_mask and is_causal=True."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, norm_first=True)

    def forward(self, x):
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.layer(x, src_mask=mask, is_causal=True)


def _encoder(norm_first: bool, activation: str, layers: int = 1) -> nn.Module:
    return nn.Sequential(*(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, activation=activation,
                                                      batch_first=True, norm_first=norm_first)
                           for _ in range(layers)))


def _randomise_layernorm(model: nn.Module) -> nn.Module:
    """LayerNorm γ, β away from (1, 0), so a forward pass that ignored them would be caught."""
    gen = torch.Generator().manual_seed(2)
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            with torch.no_grad():
                module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=gen))
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=gen))
    return model


def _sequence(make) -> nn.Module:
    """A seeded SequenceClassifier with LayerNorms randomised and the head's bias centring the logits on a fixed
    batch (so the model's own predictions use more than one class)."""
    model = _randomise_layernorm(_seeded(make))
    x = torch.randn((64, 5, 6), generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        model.head.bias -= model(x).mean(dim=0)
    return model


def hand_attention() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(HandAttention(heads=2)))


def hand_attention_one_head() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(HandAttention(heads=1, scale=0.3)))


def mha() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(SelfAttention()))


def mha_causal() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(SelfAttention(causal=True)))


def mha_need_weights_unused() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(SelfAttention(mode="weights")))


def mha_without_bias() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(SelfAttention(bias=False)))


def hand_attention_causal_mask() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(CausalHandAttention(heads=1)))


def encoder_causal() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(CausalEncoder()))


def mha_cross() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(SelfAttention(mode="cross")))


def mha_key_padding_mask() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(SelfAttention(mode="mask")))


def mha_attn_mask() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(SelfAttention(mode="attn_mask")))


def layernorm_tokens() -> nn.Module:
    """Linear embedding → LayerNorm → GELU → Linear (token-wise) → mean over tokens → head."""
    return _sequence(lambda: SequenceClassifier(nn.Sequential(nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 8))))


def encoder_post_norm_relu() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(_encoder(False, "relu")))


def encoder_pre_norm_gelu() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(_encoder(True, "gelu")))


def encoder_two_layers_pre_norm_relu() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(_encoder(True, "relu", layers=2)))


def encoder_two_layers_post_norm_gelu() -> nn.Module:
    return _sequence(lambda: SequenceClassifier(_encoder(False, "gelu", layers=2)))
