"""Prefix-free code lengths for a quantised network (Lotfi et al. 2022 §3; docs/references.md §11.4).

A network whose d parameters take values in a codebook of K entries is written as
1. K and the subspace dimension D (0: none), each in Elias's δ code (a universal prefix-free code of the
   positive integers, so any value may be chosen after seeing the data: the code pays for the choice);
2. the codebook: one scale s as IEEE float16 (16 bits), then each of the K entries as a signed 8-bit multiple
   m_k of s, |m_k| ≤ 127 (the entries are exactly s·m_k: :func:`boundcalc.certify.compression.coded_codebook`);
3. the counts n_1 … n_K of each entry, as the index of one composition of d into K parts: ⌈log₂ C(d+K−1, K−1)⌉;
4. which parameter takes which entry, as the index of one sequence with those counts: ⌈log₂ (d! / Π n_k!)⌉.
Each field's length is fixed by the fields before it, so the whole is prefix-free and Kraft's inequality gives
the prior P(h) = 2^(−L(h)). Its length stays within d·H(n/d) + O(K log d) bits of the empirical entropy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

#: bits of the codebook's scale (IEEE float16) and of each entry (a signed multiple of the scale)
SCALE_BITS = 16
ENTRY_BITS = 8


def elias_delta_bits(value: int) -> int:
    """Length of Elias's δ code of a positive integer N: ⌊log₂N⌋ + 2⌊log₂(⌊log₂N⌋ + 1)⌋ + 1."""
    if int(value) != value or value < 1:
        raise ValueError(f"Elias's δ code needs a positive integer, got {value}")
    length = int(value).bit_length() - 1              # ⌊log₂ N⌋
    return length + 2 * ((length + 1).bit_length() - 1) + 1


def log2_binomial(n: int, k: int) -> float:
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(2)


def log2_multinomial(counts: list[int]) -> float:
    total = sum(counts)
    return (math.lgamma(total + 1) - sum(math.lgamma(c + 1) for c in counts)) / math.log(2)


def _ceil_bits(value: float) -> int:
    """⌈value⌉ for a length computed with lgamma, with a 1e-9 relative guard against rounding just below an integer."""
    return max(0, math.ceil(value - 1e-9 * max(1.0, abs(value))))


@dataclass(frozen=True)
class CodeLength:
    """The code of a quantised network, field by field, in bits."""

    hyperparameters: int
    codebook: int
    counts: int
    indices: int

    @property
    def total(self) -> int:
        return self.hyperparameters + self.codebook + self.counts + self.indices

    @property
    def nats(self) -> float:
        return self.total * math.log(2)


def code_length(counts: list[int], subspace: int) -> CodeLength:
    """Bits of the code above for a codebook with these per-entry ``counts`` (every entry listed, unused ones as 0)
    and subspace dimension ``subspace`` (0: the parameters are quantised directly)."""
    if subspace < 0 or any(c < 0 for c in counts) or not counts:
        raise ValueError(f"bad code: counts {counts}, subspace {subspace}")
    k, d = len(counts), sum(counts)
    hyper = elias_delta_bits(k) + elias_delta_bits(subspace + 1)
    # a ceiling is taken per field (its length must be an integer); the sub-integer rounding is a stated overhead
    return CodeLength(hyper, SCALE_BITS + ENTRY_BITS * k, _ceil_bits(log2_binomial(d + k - 1, k - 1)),
                      _ceil_bits(log2_multinomial(counts)))
