"""The transformer study's networks: tiny pre-norm transformer encoders for digit images read as 8 tokens (the
image's rows) of 8 pixels, and the spec of each, written by hand so that it binds the module's state-dict names.

    embed (token-wise Linear 8 → WIDTH) → depth × Block → mean over the 8 tokens → head (Linear WIDTH → 10)
    Block: x → x + attention(ln1(x)),  x → x + fc2(gelu(fc1(ln2(x))))

The attention is torch's ``nn.MultiheadAttention(batch_first=True)`` (packed in_proj), which the spec's
``attention`` composite binds with ``param: blocks.<t-1>.att``.
"""
from __future__ import annotations

import torch
from torch import nn

TOKENS, PIXELS = 8, 8
WIDTH, HIDDEN, CLASSES = 16, 32, 10
DEPTHS = (1, 2)
HEADS = (1, 2)


class Block(nn.Module):
    """A pre-norm encoder block (self-attention without a mask, then a GELU MLP), each with a residual add."""

    def __init__(self, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(WIDTH)
        self.att = nn.MultiheadAttention(WIDTH, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(WIDTH)
        self.fc1 = nn.Linear(WIDTH, HIDDEN)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(HIDDEN, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.ln1(x)
        x = x + self.att(z, z, z, need_weights=False)[0]
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


class Encoder(nn.Module):
    """(n, 8, 8) images as token sequences → (n, 10) logits."""

    def __init__(self, depth: int, heads: int) -> None:
        super().__init__()
        self.embed = nn.Linear(PIXELS, WIDTH)
        self.blocks = nn.ModuleList(Block(heads) for _ in range(depth))
        self.head = nn.Linear(WIDTH, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x.reshape(-1, TOKENS, PIXELS))
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=1))


def architecture_name(depth: int, heads: int) -> str:
    return f"tf_d{depth}_h{heads}"


def spec_text(depth: int, heads: int) -> str:
    """The spec of ``Encoder(depth, heads)``, binding its state-dict names (block t is ``blocks.<t-1>``)."""
    blocks = "blocks.{t-1}"
    return "\n".join([
        f"name: {architecture_name(depth, heads)}",
        f"description: digits transformer, {depth} pre-norm block(s) of width {WIDTH} with {heads} head(s), "
        f"rows as {TOKENS} tokens of {PIXELS} pixels (written by studies/transformer/models.py)",
        f"data: {{samples: m, tokens: {TOKENS}, dim: {PIXELS}}}",
        "layers:",
        f"  - {{op: linear, name: embed, out: {WIDTH}, bias: true, param: embed.weight}}",
        "  - repeat:",
        "      name: blocks",
        f"      count: {depth}",
        "      index: t",
        "      body:",
        f"        - {{op: layernorm, name: ln1, param: \"{blocks}.ln1\"}}",
        f"        - {{op: attention, name: att, heads: {heads}, dim: {WIDTH}, param: \"{blocks}.att\"}}",
        "        - {op: add, name: res1, inputs: [att, input]}",
        f"        - {{op: layernorm, name: ln2, param: \"{blocks}.ln2\"}}",
        f"        - {{op: linear, name: fc1, out: {HIDDEN}, bias: true, param: \"{blocks}.fc1.weight\"}}",
        "        - {op: gelu, name: act}",
        f"        - {{op: linear, name: fc2, out: {WIDTH}, bias: true, param: \"{blocks}.fc2.weight\"}}",
        "        - {op: add, name: res2, inputs: [fc2, res1]}",
        "  - {op: token_mean, name: pool}",
        f"  - {{op: linear, name: head, out: {CLASSES}, bias: true, param: head.weight}}",
        "loss: {margin: gamma, delta: delta}",
    ]) + "\n"
