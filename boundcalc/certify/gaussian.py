"""The Gaussian posterior of the PAC-Bayes certificate (Dziugaite & Roy 2017; Pérez-Ortiz et al. 2021;
docs/references.md §11.2).

Q = N(μ, diag σ²) over the parameter vector, P = N(w_P, σ_P² I). :func:`fit_posterior` minimises a
differentiable surrogate of the bound (fquad or fclassic, with the cross-entropy clamped at p_min and divided by
ln(1/p_min) so that it lies in [0, 1]) by Adam on reparametrised samples θ = μ + σ ⊙ ε; σ_P is optimised with
it, and the certificate then takes the best scale of :data:`PRIOR_SCALES` (a union bound over the grid, which
costs ln |grid| nats). :func:`mc_error` draws N classifiers from Q for the Monte-Carlo step.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from boundcalc.certify.kl import pac_bayes_kl, pac_bayes_kl_budget
from boundcalc.certify.network import Network, misclassified

#: the prior scales σ_P a certificate may pick from, 1 down to 1e-5, fixed by --prior before any data is seen:
#: a data-free prior (far from μ, KL in the thousands, where the ‖μ − w_P‖²/σ_P² term wants σ_P finely placed)
#: takes 10^(−k/16), k = 0 … 80 (ln 81 ≈ 4.39 nats); a learned prior (KL below a nat after σ is fitted again at
#: the chosen scale, so the grid's own cost dominates) takes 10^(−k/4), k = 0 … 20 (ln 21 ≈ 3.04 nats)
PRIOR_GRIDS = {False: (16, 81), True: (4, 21)}


def prior_scales(learned: bool) -> tuple[float, ...]:
    """The grid of σ_P for a learned (True) or data-free (False) prior."""
    per_decade, count = PRIOR_GRIDS[learned]
    return tuple(10.0 ** (-k / per_decade) for k in range(count))


#: the data-free grid (the default of the functions below)
PRIOR_SCALES = prior_scales(False)
OBJECTIVES = ("fquad", "fclassic")
FITS = ("sigma", "all")
#: (step, total steps, current bound estimate) reported while optimising
StepReport = Callable[[int, int, float], None]


@dataclass(frozen=True)
class FitConfig:
    """How the posterior is optimised; every field is stated in the certificate's assumptions."""

    fit: str = "all"                 # 'sigma': μ stays at the start; 'all': μ moves too
    objective: str = "fclassic"
    epochs: int = 300
    batch: int = 250
    lr: float = 3e-2                 # Adam step on ln σ and ln σ_P
    mean_lr: float = 1e-4            # Adam step on μ (fit='all'): small, so that μ stays near a good network
    sigma_init: float = 0.05         # every σ_i starts here
    p_min: float = 1e-2              # probabilities clamped at p_min in the bounded cross-entropy


@dataclass(frozen=True)
class Posterior:
    mean: torch.Tensor               # μ (d,)
    sigma: torch.Tensor              # σ (d,)


def diag_gaussian_kl(mean: torch.Tensor, sigma: torch.Tensor, prior_mean: torch.Tensor,
                     prior_sigma: torch.Tensor | float) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(w, σ_P² I)) = ½ Σ_i [σ_i²/σ_P² + (μ_i − w_i)²/σ_P² − 1 − ln(σ_i²/σ_P²)], in nats."""
    prior_sigma = torch.as_tensor(prior_sigma, dtype=mean.dtype)
    ratio = (sigma / prior_sigma) ** 2
    return 0.5 * torch.sum(ratio + ((mean - prior_mean) / prior_sigma) ** 2 - 1.0 - torch.log(ratio))


def best_prior_scale(posterior: Posterior, prior_mean: torch.Tensor,
                     scales: tuple[float, ...] = PRIOR_SCALES) -> tuple[float, float]:
    """(σ_P, KL) at the grid scale with the smallest KL."""
    with torch.no_grad():
        kls = [float(diag_gaussian_kl(posterior.mean, posterior.sigma, prior_mean, s)) for s in scales]
    best = min(range(len(kls)), key=kls.__getitem__)
    return scales[best], kls[best]


def bounded_cross_entropy(outputs: torch.Tensor, labels: torch.Tensor, p_min: float) -> torch.Tensor:
    """Mean of −ln max(p_y, p_min) / ln(1/p_min) ∈ [0, 1] (Dziugaite & Roy 2018; Pérez-Ortiz et al. 2021 §5)."""
    log_p = F.log_softmax(outputs, dim=1).gather(1, labels[:, None]).squeeze(1)
    return torch.mean(-torch.clamp(log_p, min=math.log(p_min))) / math.log(1.0 / p_min)


def surrogate(kind: str, risk: torch.Tensor, kl: torch.Tensor, n: int, delta: float) -> torch.Tensor:
    """fquad = (√(r + b/2) + √(b/2))² or fclassic = r + √(b/2), b = (KL + ln(2√n/δ))/n (Pérez-Ortiz et al.
    2021 eqs. (7)–(8)); both are upper bounds on kl⁻¹(r, b) by Pinsker-type relaxations."""
    half = (kl + math.log(2.0 * math.sqrt(n) / delta)) / (2.0 * n)
    if kind == "fquad":
        return (torch.sqrt(risk + half) + torch.sqrt(half)) ** 2
    if kind == "fclassic":
        return risk + torch.sqrt(half)
    raise ValueError(f"unknown objective {kind!r} (known: {', '.join(OBJECTIVES)})")


def fit_posterior(network: Network, x: torch.Tensor, y: torch.Tensor, start: torch.Tensor, prior_mean: torch.Tensor,
                  config: FitConfig, *, delta: float, generator: torch.Generator,
                  on_step: StepReport | None = None, sigma_start: torch.Tensor | None = None,
                  prior_scale: float | None = None, scales: tuple[float, ...] = PRIOR_SCALES) -> Posterior:
    """Minimise the surrogate over (σ, σ_P), and μ with ``fit='all'``, on the n bound samples (x, y); μ starts at
    ``start``, σ at ``sigma_start`` (else ``config.sigma_init``); a given ``prior_scale`` holds σ_P fixed. The current bound estimate reported is the kl bound at the minibatch 0-1 errors of the last
    epoch and the grid's best KL (an estimate for display; the certificate comes from the Monte-Carlo step)."""
    n = int(x.shape[0])
    mean = start.detach().clone().requires_grad_(config.fit == "all")
    log_sigma = (torch.log(sigma_start).detach().clone() if sigma_start is not None else
                 torch.full_like(start, math.log(config.sigma_init))).requires_grad_(True)
    log_prior = torch.tensor(math.log(prior_scale if prior_scale is not None else
                                      max(config.sigma_init, scales[-1])), dtype=torch.float64,
                             requires_grad=prior_scale is None)
    groups = [{"params": [log_sigma] + ([log_prior] if prior_scale is None else []), "lr": config.lr}]
    if config.fit == "all":
        groups.append({"params": [mean], "lr": config.mean_lr})
    optimiser = torch.optim.Adam(groups)
    batches = max(1, math.ceil(n / config.batch))
    total = config.epochs * batches
    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        wrong = 0
        for b in range(batches):
            idx = order[b * config.batch:(b + 1) * config.batch]
            sigma = torch.exp(log_sigma)
            theta = mean + sigma * torch.randn(mean.shape, generator=generator, dtype=torch.float64)
            outputs = network.outputs(theta, x[idx])
            kl = diag_gaussian_kl(mean, sigma, prior_mean, torch.exp(log_prior))
            loss = surrogate(config.objective, bounded_cross_entropy(outputs, y[idx], config.p_min), kl, n, delta)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            wrong += misclassified(outputs.detach(), y[idx])
        if on_step is not None:
            posterior = Posterior(mean.detach(), torch.exp(log_sigma).detach())
            kl_best = best_prior_scale(posterior, prior_mean, scales)[1] + math.log(len(scales))
            on_step((epoch + 1) * batches, total, pac_bayes_kl(wrong / n, kl_best, n, delta))
    return Posterior(mean.detach().clone(), torch.exp(log_sigma).detach().clone())


def mc_error(network: Network, posterior: Posterior, x: torch.Tensor, y: torch.Tensor, samples: int,
             generator: torch.Generator, on_sample: Callable[[int, int], None] | None = None) -> float:
    """Mean empirical 0-1 error on (x, y) of ``samples`` classifiers θ_j ~ Q drawn independently: the ê_MC of the
    Monte-Carlo step (one error rate per classifier, averaged over the N classifiers, dividing by N)."""
    total = 0
    for j in range(samples):
        theta = posterior.mean + posterior.sigma * torch.randn(posterior.mean.shape, generator=generator,
                                                                dtype=torch.float64)
        total += network.errors(theta, x, y)
        if on_sample is not None and (j + 1) % 50 == 0:
            on_sample(j + 1, samples)
    return total / (samples * int(x.shape[0]))


__all__ = ["PRIOR_SCALES", "prior_scales", "FitConfig", "Posterior", "diag_gaussian_kl", "best_prior_scale", "bounded_cross_entropy",
           "surrogate", "fit_posterior", "mc_error", "pac_bayes_kl_budget"]
