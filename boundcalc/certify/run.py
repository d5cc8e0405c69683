"""``boundcalc certify`` on loaded inputs: the Gaussian (PAC-Bayes) and the compression pipelines.

Every random draw (posterior noise, batch order, Monte-Carlo samples, subspace, a seeded initialisation) comes
from one torch generator seeded with ``--seed``, on one torch thread, so a run is deterministic for its seed.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch

from boundcalc.certify import kl as klmod
from boundcalc.certify.certificate import Certificate
from boundcalc.certify.compression import (LEVELS, CompressConfig, kmeans_1d, quantisation_aware, random_subspace,
                                           train_subspace)
from boundcalc.certify.coding import code_length
from boundcalc.certify.gaussian import FitConfig, best_prior_scale, fit_posterior, mc_error, prior_scales
from boundcalc.certify.network import Network
from boundcalc.certify.options import CATONI_C, CertifyOptions
from boundcalc.certify.prior import PriorConfig, data_free_start, learn_prior_mean, split_for_prior
from boundcalc.certify.report import compression_report, gaussian_report
from boundcalc.errors import BoundcalcError
from boundcalc.measure.data import Dataset, check_labels_fit
from boundcalc.measure.linalg import torch_threads

#: (phase, done, total, current bound or None)
Progress = Callable[[str, int, int, float | None], None]
#: classifiers drawn to estimate the posterior's test error (an estimate for display, not part of the bound)
TEST_SAMPLES = 1000
#: the second fit, at the chosen grid scale of σ_P, runs for 1/REFIT_SHARE of the epochs of the first
REFIT_SHARE = 4


def _quiet(phase: str, done: int, total: int, bound: float | None) -> None:
    return None


def final_bound(empirical: float, nats: float, n: int, delta: float, bound: str, pac_bayes: bool) -> tuple[float, float | None]:
    """(bound, Catoni's C or None): the kl bound (PAC-Bayes-kl with ln(2√n/δ), or Occam's with ln(1/δ) for a
    point mass), or the best Catoni bound over CATONI_C with δ/|grid| each."""
    if bound == "kl":
        rule = klmod.pac_bayes_kl if pac_bayes else klmod.occam_kl
        return rule(empirical, nats, n, delta), None
    values = [klmod.catoni(empirical, nats, n, delta / len(CATONI_C), c) for c in CATONI_C]
    best = min(range(len(values)), key=values.__getitem__)
    return values[best], CATONI_C[best]


def certify(network: Network, train: Dataset, test: Dataset | None, options: CertifyOptions,
            init: torch.Tensor | None, progress: Progress = _quiet) -> Certificate:
    """The certificate of ``options.method`` for ``network`` on the training data (labels checked first)."""
    options.check()
    for data in (train, test):
        if data is not None:
            check_labels_fit(data.y, network.outputs_count)
    generator = torch.Generator().manual_seed(options.seed)
    with torch_threads(1):
        if options.method == "gaussian":
            return _gaussian(network, train, test, options, init, generator, progress)
        return _compression(network, train, test, options, init, generator, progress)


def _check_floor(best_possible: float, n: int, classes: int, what: str) -> None:
    """Refuse a run whose certificate could not beat guessing even with zero error and nothing learnt."""
    chance = 1.0 - 1.0 / classes
    if best_possible >= chance:
        raise BoundcalcError(f"too few samples for the grid: with n = {n} bound samples, {what}, even a classifier "
                             f"with no training error gets a certificate of {best_possible:.3g} ≥ {chance:.3g} "
                             f"(guessing among {classes} classes); give more data")


def _gaussian(network: Network, train: Dataset, test: Dataset | None, options: CertifyOptions,
              init: torch.Tensor | None, generator: torch.Generator, progress: Progress) -> Certificate:
    learned = options.prior == "learned"
    split = split_for_prior(train.x, train.y, options.prior_fraction if learned else None)
    scales = prior_scales(learned)
    n, grid = int(split.bound_x.shape[0]), math.log(len(scales))
    floor_mc = klmod.mc_error_bound(0.0, options.mc_samples, options.mc_delta)
    _check_floor(final_bound(floor_mc, grid, n, options.bound_delta, options.bound, True)[0], n,
                 network.outputs_count, f"a grid of {len(scales)} prior scales and N = {options.mc_samples} "
                 "Monte-Carlo samples")
    if learned:
        start, origin = data_free_start(network, init, generator)
        prior_mean = learn_prior_mean(network, start, split.prior_x, split.prior_y, PriorConfig(), generator)
        mean_start = prior_mean
    else:
        prior_mean = init if init is not None else torch.zeros_like(network.trained)
        origin, mean_start = ("the --init weights" if init is not None else "zero"), network.trained
    config = FitConfig(fit=options.fit, objective=options.objective, epochs=options.epochs)
    posterior, scale, kl_nats = _fit_at_grid(network, split.bound_x, split.bound_y, mean_start, prior_mean, config,
                                             options.bound_delta, scales, generator, progress)
    e_mc = mc_error(network, posterior, split.bound_x, split.bound_y, options.mc_samples, generator,
                    on_sample=lambda done, total: progress("Monte Carlo", done, total, None))
    e_bound = klmod.mc_error_bound(e_mc, options.mc_samples, options.mc_delta)
    value, c = final_bound(e_bound, kl_nats + grid, n, options.bound_delta, options.bound, True)
    test_error = (mc_error(network, posterior, test.x, test.y, min(options.mc_samples, TEST_SAMPLES), generator)
                  if test is not None else None)
    facts = dict(n=n, m=int(train.x.shape[0]), scales=len(scales), e_mc=e_mc, e_bound=e_bound, kl=kl_nats, grid=grid, scale=scale,
                 catoni_c=c, origin=origin, learned=learned, prior_samples=int(split.prior_x.shape[0]),
                 distance=float((posterior.mean - network.trained).norm()),
                 prior_distance=float((posterior.mean - prior_mean).norm()),
                 sigma_median=float(posterior.sigma.median()), test_error=test_error, value=value)
    return gaussian_report(network, options, config, facts, _checkpoint_errors(network, train, test))


def _fit_at_grid(network: Network, x: torch.Tensor, y: torch.Tensor, mean_start: torch.Tensor,
                 prior_mean: torch.Tensor, config: FitConfig, delta: float, scales: tuple[float, ...],
                 generator: torch.Generator, progress: Progress):
    """(posterior, σ_P, KL): the posterior fitted with σ_P free, then again with σ_P at the best grid scale.
    A free σ_P falls between two grid scales, where each of thousands of σ_i fitted to it pays ½(r − 1 − ln r)
    nats (r the squared ratio); the second fit, for 1/REFIT_SHARE of the epochs, removes that."""
    posterior = fit_posterior(network, x, y, mean_start, prior_mean, config, delta=delta, generator=generator,
                              scales=scales, on_step=lambda done, total, b: progress("optimising", done, total, b))
    refit = replace(config, epochs=max(1, config.epochs // REFIT_SHARE))
    posterior = fit_posterior(network, x, y, posterior.mean, prior_mean, refit, delta=delta, generator=generator,
                              sigma_start=posterior.sigma, scales=scales,
                              prior_scale=best_prior_scale(posterior, prior_mean, scales)[0])
    scale, kl_nats = best_prior_scale(posterior, prior_mean, scales)
    return posterior, scale, kl_nats


def _compression(network: Network, train: Dataset, test: Dataset | None, options: CertifyOptions,
                 init: torch.Tensor | None, generator: torch.Generator, progress: Progress) -> Certificate:
    n, dim = int(train.x.shape[0]), options.subspace
    smallest = code_length([dim or network.dim], dim)
    _check_floor(final_bound(0.0, smallest.nats, n, options.bound_delta, options.bound, False)[0], n,
                 network.outputs_count, f"a code of at least {smallest.total} bits")
    config = CompressConfig(subspace=dim)
    origin = None
    if dim:
        start, origin = data_free_start(network, init, generator)
        space = random_subspace(start, dim, generator)
        progress("subspace training", 0, 1, None)
        coords, to_params = train_subspace(network, space, train.x, train.y, config, generator), space.params
    else:
        coords, to_params = network.trained, (lambda theta: theta)
    best = _best_code(network, train, coords, to_params, dim, options, config, generator, progress)
    theta = best.pop("theta")
    test_error = network.errors(theta, test.x, test.y) / int(test.x.shape[0]) if test is not None else None
    facts = dict(best, n=n, subspace=dim, origin=origin, test_error=test_error, d=network.dim,
                 distance=float((theta - network.trained).norm()))
    return compression_report(network, options, facts, _checkpoint_errors(network, train, test))


def _best_code(network: Network, train: Dataset, coords: torch.Tensor, to_params, dim: int, options: CertifyOptions,
               config: CompressConfig, generator: torch.Generator, progress: Progress) -> dict:
    """Quantise ``coords`` at every size of LEVELS (k-means, then quantisation-aware training scored by the
    bound); the facts of the coded network with the lowest bound."""
    n = int(train.x.shape[0])

    def scored(quantised) -> dict:
        theta = to_params(quantised.values)
        error = network.errors(theta, train.x, train.y) / n
        code = code_length(quantised.counts(), dim)
        value, c = final_bound(error, code.nats, n, options.bound_delta, options.bound, False)
        return dict(value=value, catoni_c=c, error=error, code=code, levels=quantised.codebook.numel(), theta=theta)

    best = None
    levels = [k for k in LEVELS if k <= coords.numel()]
    for done, k in enumerate(levels):
        quantised = quantisation_aware(network, coords, kmeans_1d(coords, k, config.lloyd_steps), to_params,
                                       train.x, train.y, config, generator, lambda q: scored(q)["value"])
        result = scored(quantised)
        if best is None or result["value"] < best["value"]:
            best = result
        progress("quantising", done + 1, len(levels), best["value"])
    return dict(best, tried=levels)


def _checkpoint_errors(network: Network, train: Dataset, test: Dataset | None) -> dict[str, float]:
    out = {"train": network.errors(network.trained, train.x, train.y) / int(train.x.shape[0])}
    if test is not None:
        out["test"] = network.errors(network.trained, test.x, test.y) / int(test.x.shape[0])
    return out


__all__ = ["certify", "final_bound", "Progress"]
