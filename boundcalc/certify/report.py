"""A finished run as a :class:`Certificate`: the terms with their shares, the formula with its values, what
was certified, and the assumptions. Pure bookkeeping on numbers the pipelines computed."""
from __future__ import annotations

import math

import sympy as sp

from boundcalc.certify.certificate import KL_INVERSE, Certificate, Term, shares, substituted
from boundcalc.certify.gaussian import PRIOR_GRIDS, FitConfig
from boundcalc.certify.network import Network
from boundcalc.certify.options import CATONI_C, MC_SHARE, CertifyOptions

E, E_MC, KL, N_MC, n, DELTA, DELTA_MC, G, C, L_BITS, N_C = sp.symbols(
    "e e_MC KL N n delta delta_MC G C L N_C", positive=True)


def _catoni_form(risk: sp.Expr, nats: sp.Expr) -> sp.Expr:
    return (1 - sp.exp(-C * risk - (nats + sp.log(N_C / DELTA)) / n)) / (1 - sp.exp(-C))


def gaussian_report(network: Network, options: CertifyOptions, config: FitConfig, f: dict,
                    checkpoint_errors: dict[str, float]) -> Certificate:
    risk = KL_INVERSE(E_MC, sp.log(2 / DELTA_MC) / N_MC)
    nats = KL + sp.log(G)
    if options.bound == "kl":
        formula = KL_INVERSE(risk, (nats + sp.log(2 * sp.sqrt(n) / DELTA)) / n)
        confidence = math.log(2 * math.sqrt(f["n"]) / options.bound_delta)
    else:
        formula = _catoni_form(risk, nats)
        confidence = math.log(len(CATONI_C) / options.bound_delta)
    values = {E_MC: f["e_mc"], N_MC: options.mc_samples, DELTA_MC: options.mc_delta, KL: f["kl"],
              G: f["scales"], n: f["n"], DELTA: options.bound_delta, C: f["catoni_c"] or 0.0,
              N_C: len(CATONI_C)}
    share = shares(f["value"], f["e_mc"], f["e_bound"] - f["e_mc"],
                   {"kl": f["kl"], "grid": f["grid"], "confidence": confidence})
    terms = [Term("Monte-Carlo mean error ê_MC (N classifiers θ ~ Q, bound samples)", f["e_mc"], "error",
                  share["empirical"]),
             Term("Monte-Carlo slack kl⁻¹(ê_MC, ln(2/δ′)/N) − ê_MC", f["e_bound"] - f["e_mc"], "error",
                  share["slack"]),
             Term("KL(Q‖P)", f["kl"], "nats", share["kl"], f"σ_P = {f['scale']:.4g}"),
             Term(f"union bound over the {f['scales']} prior scales, ln G", f["grid"], "nats", share["grid"]),
             Term("confidence, " + ("ln(2√n/δ)" if options.bound == "kl" else "ln(|C grid|/δ)"), confidence, "nats",
                  share["confidence"])]
    where = ("its mean μ trained from the learned prior mean (the checkpoint has seen the bound samples, so no "
             "prior that has not lies near it)" if f["learned"] else
             "its mean μ " + ("at the checkpoint" if options.fit == "sigma" else "started at the checkpoint"))
    classifier = (f"a stochastic network: each prediction uses weights θ ~ Q = N(μ, diag σ²) over the {network.dim} "
                  f"parameters of the spec's network, {where}; ‖μ − checkpoint‖₂ = {f['distance']:.4g}, "
                  f"median σ = {f['sigma_median']:.3g}. Not the checkpoint itself")
    prior = (f"P = N(w_P, σ_P² I), w_P learned on the first {f['prior_samples']} of the {f['m']} samples (from "
             f"{f['origin']}); the bound uses the other {f['n']}, and n counts only them" if f["learned"] else
             f"P = N(w₀, σ_P² I), w₀ = {f['origin']} (data-free); all {f['n']} samples are bound samples")
    assumptions = [
        f"δ = {options.delta:g} in all: δ′ = {options.mc_delta:g} ({MC_SHARE:.0%}) for the Monte-Carlo step "
        f"(Langford & Caruana 2001), δ − δ′ = {options.bound_delta:g} for the "
        + ("PAC-Bayes-kl step (Seeger 2002; Maurer 2004)" if options.bound == "kl" else
           f"Catoni step (Catoni 2007), split over {len(CATONI_C)} values of C (chosen C = {f['catoni_c']:g})"),
        prior,
        f"σ_P is the best of {f['scales']} scales 10^(−k/{PRIOR_GRIDS[f['learned']][0]}), k = 0 … {f['scales'] - 1} "
        "(the grid of this --prior, fixed before the data; union bound: ln G added to KL); σ (and μ) are fitted "
        "again at the chosen scale",
        f"posterior fitted by Adam on the surrogate {config.objective} with the cross-entropy clamped at p_min = "
        f"{config.p_min:g} and scaled to [0, 1], {config.epochs} epochs, batch {config.batch}, fit = {options.fit}",
        f"N = {options.mc_samples} classifiers drawn from Q for the Monte-Carlo step; seed {options.seed} (one torch "
        "generator for every draw, one thread)",
        "samples are assumed i.i.d. from the distribution the certificate is about",
        "shares: certificate = ê_MC + slack + gap; the gap is split over KL, grid and confidence in proportion "
        "to their nats"]
    if f["test_error"] is not None:
        assumptions.append(f"test error of Q: mean over {min(options.mc_samples, 1000)} classifiers drawn from Q "
                           "(an estimate, not part of the bound)")
    return Certificate("gaussian", options.bound, f["value"], options.delta, classifier, terms,
                       substituted(formula, values), formula, assumptions, f["n"], f["e_mc"], f["test_error"],
                       checkpoint_errors, details={"prior_scale": f["scale"], "kl_nats": f["kl"],
                                                   "prior_samples": f["prior_samples"], "seed": options.seed})


def compression_report(network: Network, options: CertifyOptions, f: dict,
                       checkpoint_errors: dict[str, float]) -> Certificate:
    code = f["code"]
    nats = L_BITS * sp.log(2)
    if options.bound == "kl":
        formula = KL_INVERSE(E, (nats + sp.log(1 / DELTA)) / n)
        confidence = math.log(1 / options.delta)
    else:
        formula = _catoni_form(E, nats)
        confidence = math.log(len(CATONI_C) / options.delta)
    values = {E: f["error"], L_BITS: code.total, n: f["n"], DELTA: options.delta, C: f["catoni_c"] or 0.0,
              N_C: len(CATONI_C)}
    ln2 = math.log(2)
    budget = {"hyper": code.hyperparameters * ln2, "codebook": code.codebook * ln2, "counts": code.counts * ln2,
              "indices": code.indices * ln2, "confidence": confidence}
    share = shares(f["value"], f["error"], 0.0, budget)
    terms = [Term("empirical error of the quantised network", f["error"], "error", share["empirical"]),
             Term("code: K and D (Elias δ), the hyperparameter grid's cost", code.hyperparameters, "bits",
                  share["hyper"]),
             Term(f"code: codebook, a float16 scale and {f['levels']} 8-bit multiples", code.codebook, "bits", share["codebook"]),
             Term("code: entry counts (a composition of the coordinates)", code.counts, "bits", share["counts"]),
             Term("code: which entry each coordinate takes", code.indices, "bits", share["indices"]),
             Term("confidence, " + ("ln(1/δ)" if options.bound == "kl" else "ln(|C grid|/δ)"), confidence, "nats",
                  share["confidence"])]
    coords = (f"θ = w₀ + P z with z ∈ R^{f['subspace']} quantised, w₀ = {f['origin']}, P a seeded Gaussian "
              f"projection (seed {options.seed}); z started at the projection of the checkpoint and was trained"
              if f["subspace"] else "the checkpoint's parameters quantised directly")
    classifier = (f"a quantised copy of the network (a point-mass posterior): {coords}, then quantised to a "
                  f"codebook of {f['levels']} values (a float16 scale × 8-bit integers); ‖θ − checkpoint‖₂ = {f['distance']:.4g}. "
                  "Not the checkpoint itself")
    assumptions = [
        f"δ = {options.delta:g}, all for the " + ("Occam kl bound: kl(ê‖e) ≤ (L ln 2 + ln(1/δ))/n for every h with "
                                                  "a prefix-free code of L bits (prior P(h) = 2^(−L))"
                                                  if options.bound == "kl" else
                                                  f"Catoni bound (Catoni 2007), split over {len(CATONI_C)} values of "
                                                  f"C (chosen C = {f['catoni_c']:g})"),
        f"code length L = {code.total} bits: K and D in Elias's δ code, a float16 scale and "
        f"{f['levels']} 8-bit multiples of it, "
        "⌈log₂ C(D+K−1, K−1)⌉ for the counts, ⌈log₂ multinomial⌉ for the indices (prefix-free; Lotfi et al. 2022)",
        f"codebook sizes tried: {', '.join(map(str, f['tried']))} (paid for by the code of K)",
        f"all {f['n']} samples are bound samples; seed {options.seed}, one torch thread",
        "the subspace origin w₀ and the projection P are data-free (the --init weights are assumed data-free)",
        "samples are assumed i.i.d. from the distribution the certificate is about",
        "shares: certificate = ê + gap; the gap is split over the code's fields and the confidence in proportion "
        "to their nats"]
    return Certificate("compression", options.bound, f["value"], options.delta, classifier, terms,
                       substituted(formula, values), formula, assumptions, f["n"], f["error"], f["test_error"],
                       checkpoint_errors, details={"code_bits": code.total, "levels": f["levels"],
                                                   "subspace": f["subspace"], "seed": options.seed})
