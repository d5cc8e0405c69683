"""Limits on untrusted files, each checked before the allocation or the work it bounds.

A tiny input can claim a huge size: a 2 MB ``.npz`` that inflates to 2 GB, an ``.npy`` header of 10¹¹ rows, a
1.5 KB ``.pt`` whose stride-0 tensor claims 10¹⁰ values, a header listing 10⁶ tensors. Every limit here is
checked from what the file declares (header, shape, count) before anything is read or allocated, and an input
past it gets one error line naming the limit. The README's "Limits" section lists them; keep the two in step.
"""
from __future__ import annotations

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30

# -- files ------------------------------------------------------------------------------------------
#: a shard index (model.safetensors.index.json) lists names and file names: a few MB for the largest models
MAX_INDEX_BYTES = 16 * MIB
#: a zoo manifest: 10,000 rows of a few hundred bytes fit many times over
MAX_MANIFEST_BYTES = 16 * MIB
#: models in one zoo manifest (Jiang et al.'s zoo of 2020 has about 10,000)
MAX_MODELS = 10_000
#: nesting of a JSON value (a manifest row, a shard index); Python's parser recurses once per level
MAX_JSON_DEPTH = 32

# -- checkpoints ------------------------------------------------------------------------------------
#: tensors in one checkpoint file or folder (a 70B-parameter model has about 1,000)
MAX_TENSORS = 100_000
#: a safetensors JSON header: about 100 bytes per tensor, so 16 MiB is ~160,000 tensors
MAX_SAFETENSORS_HEADER_BYTES = 16 * MIB
#: the pickle of a torch zip checkpoint (data.pkl): about 85 bytes per tensor; unpickling a 84 MB one (10⁶
#: tensors) takes minutes and 2.6 GB, so it is refused from the zip directory before torch.load sees it
MAX_PICKLE_BYTES = 16 * MIB

# -- data -------------------------------------------------------------------------------------------
#: values in one data array (X or y) as declared by its .npy header: 2²⁶ values are 512 MiB as float64
#: (MNIST's 60,000 × 784 training set is 47 million); subsample larger data sets
MAX_DATA_VALUES = 1 << 26
#: arrays in one .npz archive (boundcalc reads X and y)
MAX_NPZ_MEMBERS = 64
#: a class label is an index 0 … C−1 into the network's outputs; larger values are refused before any cast
MAX_LABEL = (1 << 31) - 1

#: activations held by one batch of a forward pass (every node's output for the batch): 2²⁵ values are 256 MiB
#: as float64; the batch shrinks to fit, and one sample past it is refused
MAX_FORWARD_VALUES = 1 << 25
#: the inputs of every weight layer on every sample, which ``collapse`` keeps for its class statistics
#: (2²⁷ values are 1 GiB as float64; 60,000 samples through a 784-512-512 MLP are 1.1·10⁸)
MAX_FEATURE_VALUES = 1 << 27

# -- measurement ------------------------------------------------------------------------------------
#: complex entries c_out·c_in·N_h·N_w of a conv kernel's spectrum on the padded N_h × N_w grid (the FFT
#: operator norm; VGG's 256-channel layers on 56×56 have 2.2·10⁸). The spectrum is formed FFT_CHUNK_BYTES at a
#: time, so this bounds the time, not the memory; past it the looser tap-sum upper bound is used, and said
MAX_FFT_ENTRIES = 1 << 28
FFT_CHUNK_BYTES = 64 * MIB
#: multiply-adds of power iteration on a conv layer (steps × c_out·c_in·k_h·k_w·H_out·W_out); past it the
#: 'power' estimate is skipped, and said
MAX_POWER_MACS = 1 << 36
#: values of the input (c_in·H·W) and of the output (c_out·H_out·W_out) power iteration works on: 2²⁴ values are
#: 128 MiB as float64, a few times that with the autograd buffers
MAX_POWER_VALUES = 1 << 24
#: a repeat count read from a checkpoint's tensor count (``evaluate specs/lowrank_mlp.yaml ckpt``)
MAX_INFERRED_COUNT = 1_000


def size_text(n: int) -> str:
    """``n`` bytes as a short human figure: 16 MiB, 1.5 GiB, 512 bytes."""
    for unit, name in ((GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")):
        if n >= unit:
            value = n / unit
            return f"{value:.0f} {name}" if value == int(value) else f"{value:.1f} {name}"
    return f"{n} bytes"

# -- tracing ----------------------------------------------------------------------------------------
#: values of one sample given to ``boundcalc trace --input-shape`` (C·H·W): 2²² is 3×1182×1182, well past
#: ImageNet's 3×224×224 (150,528); the model runs on a batch of two such samples to be captured
MAX_TRACE_INPUT_VALUES = 1 << 22
