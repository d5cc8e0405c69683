"""The settings of one certificate run, checked once (a bad value is a BoundcalcError: one line, exit 2)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from boundcalc.errors import BoundcalcError

METHODS = ("gaussian", "compression")
PRIORS = ("init", "learned")
BOUNDS = ("kl", "catoni")
#: the share of δ the Monte-Carlo step gets (the rest goes to the PAC-Bayes step)
MC_SHARE = 0.2
#: Catoni's C is chosen from 2^(k/2), k = −4 … 8 (a union bound over the 13 values: δ/13 each)
CATONI_C = tuple(2.0 ** (k / 2) for k in range(-4, 9))
#: most Monte-Carlo samples (each is one pass over the bound samples)
MAX_MC_SAMPLES = 1_000_000


@dataclass(frozen=True)
class CertifyOptions:
    method: str = "gaussian"
    prior: str = "init"
    prior_fraction: float = 0.5
    fit: str = "all"
    objective: str = "fclassic"
    bound: str = "kl"
    delta: float = 0.05
    mc_samples: int = 10_000
    seed: int = 0
    subspace: int = 0
    epochs: int = 300

    def check(self) -> "CertifyOptions":
        _one_of("--method", self.method, METHODS)
        _one_of("--prior", self.prior, PRIORS)
        _one_of("--bound", self.bound, BOUNDS)
        _one_of("--fit", self.fit, ("sigma", "all"))
        _one_of("--objective", self.objective, ("fquad", "fclassic"))
        if not (math.isfinite(self.delta) and 0.0 < self.delta < 1.0):
            raise BoundcalcError(f"--delta must be in (0, 1), got {self.delta}")
        if not (math.isfinite(self.prior_fraction) and 0.0 < self.prior_fraction < 1.0):
            raise BoundcalcError(f"--prior-fraction must be in (0, 1), got {self.prior_fraction}")
        if not 1 <= self.mc_samples <= MAX_MC_SAMPLES:
            raise BoundcalcError(f"--mc-samples must be between 1 and {MAX_MC_SAMPLES:,}, got {self.mc_samples}")
        if self.subspace < 0:
            raise BoundcalcError(f"--subspace must be ≥ 0 (0: quantise the parameters directly), got {self.subspace}")
        if not 1 <= self.epochs <= 100_000:
            raise BoundcalcError(f"--epochs must be between 1 and 100000, got {self.epochs}")
        if self.method == "compression" and self.prior == "learned":
            raise BoundcalcError("--prior learned is for --method gaussian; the compression code is its own prior")
        if self.seed < 0:
            raise BoundcalcError(f"--seed must be ≥ 0, got {self.seed}")
        return self

    @property
    def mc_delta(self) -> float:
        return self.delta * MC_SHARE

    @property
    def bound_delta(self) -> float:
        """δ of the PAC-Bayes (or Occam) step: δ − δ′ for the Gaussian method, all of δ for compression."""
        return self.delta - self.mc_delta if self.method == "gaussian" else self.delta


def _one_of(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise BoundcalcError(f"{option}: {value!r} is not one of {', '.join(choices)}")
