"""boundcalc certify: each formula against an independent computation (scipy brentq, torch.distributions, numbers
worked out by hand), the whole certificate re-assembled by hand, and soundness on random splits of digits."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from scipy.optimize import brentq

from boundcalc.certify import kl as K
from boundcalc.certify.coding import code_length, elias_delta_bits
from boundcalc.certify.compression import CompressConfig, coded_codebook, kmeans_1d, quantisation_aware
from boundcalc.certify.gaussian import diag_gaussian_kl
from boundcalc.certify.network import bind_network
from boundcalc.certify.options import CertifyOptions
from boundcalc.certify.run import certify
from boundcalc.measure.checkpoint import open_checkpoint
from boundcalc.measure.data import Dataset
from boundcalc.spec.load import parse_spec


def _reference_kl(q: float, p: float) -> float:
    """Binary kl in 50-digit mpmath (0 ln 0 = 0), rounded to a float only at the end."""
    import mpmath

    with mpmath.workdps(50):
        q_, p_ = mpmath.mpf(q), mpmath.mpf(p)
        out = 0 if q == 0 else q_ * mpmath.log(q_ / p_)
        out += 0 if q == 1 else (1 - q_) * mpmath.log((1 - q_) / (1 - p_))
        return float(out)


def _reference_kl_inverse(q: float, c: float) -> float:
    """sup{p ≥ q: kl(q‖p) ≤ c} by scipy's brentq on kl(q‖p) − c over (q, 1)."""
    if c == 0 or q == 1:
        return q
    top = 1 - 1e-15
    if _reference_kl(q, top) <= c:
        return 1.0
    return brentq(lambda p: _reference_kl(q, p) - c, q, top, xtol=1e-300, rtol=1e-15)


GRID = [(q, c) for q in (0.0, 1e-6, 0.01, 0.1, 0.3, 0.5, 0.9, 0.999, 1 - 1e-9, 1.0)
        for c in (0.0, 1e-8, 1e-4, 0.01, 0.1, 1.0, 5.0)]


@pytest.mark.parametrize("q,c", GRID, ids=[f"q={q:g},c={c:g}" for q, c in GRID])
def test_kl_inverse_matches_brentq_and_is_never_below_it(q, c):
    ours, reference = K.kl_inverse(q, c), _reference_kl_inverse(q, c)
    assert ours >= reference - 1e-15          # the upper end of the bracket: never optimistic
    assert ours == pytest.approx(reference, rel=1e-9, abs=1e-13)
    if c > 0 and ours < 1:
        assert K.binary_kl(q, ours) >= c * (1 - 1e-9)


def test_binary_kl_keeps_digits_for_tiny_divergences():
    # kl(q‖q+ε) ≈ ε²/(2q(1−q)): q = 0.3, ε = 1e-7 → 2.380952e-14 (the naive form loses most digits)
    assert K.binary_kl(0.3, 0.3 + 1e-7) == pytest.approx(1e-14 / (2 * 0.3 * 0.7), rel=1e-5)


def test_kl_inverse_edges():
    assert K.kl_inverse(0.2, 0.0) == 0.2
    assert K.kl_inverse(1.0, 0.5) == 1.0
    assert K.kl_inverse(0.0, 0.1) == pytest.approx(1 - math.exp(-0.1), rel=1e-12)   # kl(0‖p) = −ln(1−p)
    assert K.kl_inverse(0.5, math.inf) == 1.0
    with pytest.raises(ValueError):
        K.kl_inverse(0.5, -1e-3)


@pytest.mark.parametrize("seed", range(5))
def test_diagonal_gaussian_kl_matches_torch_distributions(seed):
    gen = torch.Generator().manual_seed(seed)
    d = 37
    mean, prior_mean = torch.randn(d, generator=gen, dtype=torch.float64), torch.randn(d, generator=gen, dtype=torch.float64)
    sigma = torch.rand(d, generator=gen, dtype=torch.float64) + 0.01
    prior_sigma = 0.3 + seed * 0.2
    q = torch.distributions.Normal(mean, sigma)
    p = torch.distributions.Normal(prior_mean, torch.full((d,), prior_sigma, dtype=torch.float64))
    expected = float(torch.distributions.kl_divergence(q, p).sum())
    assert float(diag_gaussian_kl(mean, sigma, prior_mean, prior_sigma)) == pytest.approx(expected, rel=1e-12)


def test_sample_convergence_bound_by_hand():
    # ê_MC = 0: kl(0‖p) = −ln(1−p) = ln(2/δ′)/N, so p = 1 − (δ′/2)^(1/N); N = 1000, δ′ = 0.01: 1 − 0.005^0.001
    assert K.mc_error_bound(0.0, 1000, 0.01) == pytest.approx(0.0052844, abs=1e-7)
    # ê_MC = 0.1, N = 100, δ′ = 0.05: c = ln 40/100 = 0.0368888; kl(0.1‖0.2047) = 0.03689 (worked: 0.1 ln(0.1/0.2047)
    # + 0.9 ln(0.9/0.7953) = −0.071636 + 0.111315 = 0.039679 at 0.2047 is above c, at 0.2000: −0.069315 + 0.105964
    # = 0.036649 below c; linear between: p ≈ 0.2000 + 0.0047·(0.0368888−0.036649)/(0.039679−0.036649) = 0.20037
    assert K.mc_error_bound(0.1, 100, 0.05) == pytest.approx(0.20037, abs=2e-4)


def test_catoni_bound_by_hand():
    # C = 1, ê = 0.1, KL = 5, n = 100, δ = 0.05: exponent = −0.1 − (5 + ln 20)/100 = −0.1 − 0.0799573 = −0.1799573;
    # (1 − e^−0.1799573)/(1 − e^−1) = 0.164695/0.632121 = 0.260544
    assert K.catoni(0.1, 5.0, 100, 0.05, 1.0) == pytest.approx(0.260544, abs=2e-6)
    # a point mass with ê = 0 and KL = 0, C = 2, n = 1000, δ = 0.1: (1 − e^(−ln10/1000))/(1 − e^−2) = 0.0023000/0.864665 = 0.0026600
    assert K.catoni(0.0, 0.0, 1000, 0.1, 2.0) == pytest.approx(0.0026600, rel=2e-4)


def test_pac_bayes_kl_budget_by_hand():
    # (KL + ln(2√n/δ))/n with KL = 10, n = 400, δ = 0.05: (10 + ln 800)/400 = (10 + 6.684612)/400 = 0.04171153
    assert K.pac_bayes_kl_budget(10.0, 400, 0.05) == pytest.approx(0.04171153, rel=1e-6)
    assert K.occam_kl_budget(10.0, 400, 0.05) == pytest.approx((10 + math.log(20)) / 400, rel=1e-12)


def test_code_length_by_hand():
    assert [elias_delta_bits(v) for v in (1, 2, 3, 4, 8, 16, 201)] == [1, 4, 4, 5, 8, 9, 14]
    # counts [3, 1], no subspace: δ(2) + δ(1) = 4 + 1; codebook 16 (scale) + 2 × 8 bits; ⌈log₂ C(5, 1)⌉ = ⌈2.32⌉ = 3;
    # ⌈log₂ (4!/(3!·1!))⌉ = ⌈log₂ 4⌉ = 2
    code = code_length([3, 1], 0)
    assert (code.hyperparameters, code.codebook, code.counts, code.indices, code.total) == (5, 32, 3, 2, 42)
    # counts [50, 30, 20], D = 100: δ(3) + δ(101) = 4 + (6 + 2·2 + 1); 16 + 3 × 8 = 40; ⌈log₂ C(102, 2)⌉ = ⌈log₂ 5151⌉ = 13;
    # ⌈log₂ (100!/(50!·30!·20!))⌉ = ⌈143.16⌉ = 144
    code = code_length([50, 30, 20], 100)
    assert (code.hyperparameters, code.codebook, code.counts) == (15, 40, 13)
    assert code.indices == math.ceil(math.log2(math.factorial(100) // (math.factorial(50) * math.factorial(30)
                                                                        * math.factorial(20))))


# -- the whole certificate on a tiny case -------------------------------------------------------------
TINY_SPEC = "data: {samples: m, dim: 2}\nlayers:\n  - {op: linear, name: fc, out: 2}\nloss: {margin: gamma}\n"


def _tiny(tmp_path, n: int = 400, seed: int = 0):
    """Two well separated Gaussian blobs and the linear classifier x ↦ (x₁, −x₁) (bias-free)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 2)) * 0.3 + np.stack([np.where(y == 0, 2.0, -2.0), np.zeros(n)], axis=1)
    save_file({"fc.weight": torch.tensor([[1.0, 0.0], [-1.0, 0.0]])}, tmp_path / "w.safetensors")
    spec = parse_spec(TINY_SPEC)
    network = bind_network(spec, open_checkpoint(tmp_path / "w.safetensors"))
    return network, Dataset("tiny", torch.tensor(x), torch.tensor(y))


def test_gaussian_certificate_reassembled_by_hand(tmp_path):
    network, data = _tiny(tmp_path)
    options = CertifyOptions(fit="sigma", epochs=5, mc_samples=300, delta=0.05, seed=3)
    cert = certify(network, data, None, options, init=None)
    e_mc, kl = cert.terms[0].value, cert.details["kl_nats"]
    # by hand: δ′ = 0.01, δ − δ′ = 0.04, N = 300, n = 400, G = 81 prior scales (data-free prior)
    step1 = _reference_kl_inverse(e_mc, math.log(2 / 0.01) / 300)
    step2 = _reference_kl_inverse(step1, (kl + math.log(81) + math.log(2 * math.sqrt(400) / 0.04)) / 400)
    assert cert.certificate == pytest.approx(step2, rel=1e-9)
    assert sum(t.share for t in cert.terms) == pytest.approx(1.0, rel=1e-9)
    # the formula with the values substituted evaluates to the certificate
    import sympy as sp
    from boundcalc.certify.certificate import KL_INVERSE
    value = cert.formula.replace(KL_INVERSE, lambda q, c: sp.Float(_reference_kl_inverse(float(q), float(c))))
    assert float(value) == pytest.approx(cert.certificate, rel=1e-6)
    assert "Not the checkpoint itself" in cert.classifier


def test_compression_certificate_reassembled_by_hand(tmp_path):
    network, data = _tiny(tmp_path)
    cert = certify(network, data, None, CertifyOptions(method="compression", delta=0.1, seed=1), init=None)
    bits = cert.details["code_bits"]
    by_hand = _reference_kl_inverse(cert.train_error, (bits * math.log(2) + math.log(1 / 0.1)) / 400)
    assert cert.certificate == pytest.approx(by_hand, rel=1e-9)
    # K ≥ 3 (the sizes tried): the code is at least δ(3) + δ(1) + 16 + 3·8 bits
    assert bits >= 4 + 1 + 16 + 24
    assert cert.certificate < 0.2 and cert.train_error < 0.02


def test_prior_grids_by_hand():
    from boundcalc.certify.gaussian import prior_scales

    fine, coarse = prior_scales(False), prior_scales(True)
    assert (len(fine), len(coarse)) == (81, 21)
    assert fine[0] == coarse[0] == 1.0 and fine[-1] == pytest.approx(1e-5) and coarse[-1] == pytest.approx(1e-5)
    assert coarse[1] == pytest.approx(0.5623413, rel=1e-6) and fine[16] == pytest.approx(0.1)
    assert all(any(abs(c - f) < 1e-12 * f for f in fine) for c in coarse)   # every 4th fine scale


def test_coded_codebook_by_hand():
    # max |c| = 1.27: s = float16(1.27/127 = 0.01) = 0.01000213623046875 (the nearest float16, 2⁻⁷·1.2802734375);
    # 0.5/s = 49.99 → 50; −1.27/s = −126.97 → −127; 0.0033/s = 0.33 → 0
    s = 0.01000213623046875
    assert s == 2 ** -7 * 1.2802734375
    assert float(torch.tensor(0.01).to(torch.float16)) == s
    coded = coded_codebook(torch.tensor([0.5, -1.27, 0.0033], dtype=torch.float64))
    assert coded.tolist() == [50 * s, -127 * s, 0.0]
    assert coded_codebook(torch.zeros(3, dtype=torch.float64)).tolist() == [0.0, 0.0, 0.0]


def test_quantisation_aware_returns_the_best_scored_code(tmp_path):
    # the score is a count of coordinates not at the first entry: the start (k-means) is one candidate, so the
    # returned code scores no worse than it, and its codebook is exactly coded
    network, data = _tiny(tmp_path)
    coords = network.trained
    start = kmeans_1d(coords, 2, 10)
    seen = []

    def score(q):
        seen.append(int((q.index != 0).sum()))
        return seen[-1]

    config = CompressConfig(qat_epochs=3)
    best = quantisation_aware(network, coords, start, lambda t: t, data.x, data.y, config,
                              torch.Generator().manual_seed(0), score)
    assert len(seen) == 4 and int((best.index != 0).sum()) == min(seen)
    assert torch.equal(best.codebook, coded_codebook(best.codebook))


def test_runs_are_deterministic_for_a_seed(tmp_path):
    network, data = _tiny(tmp_path)
    options = CertifyOptions(epochs=3, mc_samples=50, seed=7)
    assert certify(network, data, None, options, None).certificate == certify(network, data, None, options,
                                                                              None).certificate


# -- soundness over random splits of digits -----------------------------------------------------------
SMALL_MLP = ("data: {samples: m, dim: 64}\nlayers:\n  - {op: linear, name: fc1, out: 16}\n  - relu\n"
             "  - {op: linear, name: fc2, out: 10}\nloss: {margin: gamma}\n")


def test_certificate_is_never_below_the_held_out_error_over_20_splits(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x_all = torch.tensor(digits.data / 16.0)
    y_all = torch.tensor(digits.target)
    spec = parse_spec(SMALL_MLP)
    for split in range(20):
        order = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(100 + split))
        train, held = order[:600], order[600:]
        torch.manual_seed(split)
        net = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
        optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(60):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(net(x_all[train].float()), y_all[train]).backward()
            optimiser.step()
        path = tmp_path / f"m{split}.safetensors"
        save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, path)
        network = bind_network(spec, open_checkpoint(path))
        options = CertifyOptions(prior="learned" if split % 2 else "init", epochs=4, mc_samples=40, seed=split)
        cert = certify(network, Dataset("train", x_all[train], y_all[train]),
                       Dataset("held", x_all[held], y_all[held]), options, None)
        assert cert.test_error is not None and cert.certificate >= cert.test_error, (split, cert.certificate)


def _small_digits_case(folder):
    """SMALL_MLP trained briefly on 300 digits: spec, checkpoint and train.npz in ``folder``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = torch.tensor(digits.data[:300] / 16.0, dtype=torch.float32), torch.tensor(digits.target[:300])
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(40):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimiser.step()
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, folder / "m.safetensors")
    np.savez(folder / "train.npz", X=x.numpy(), y=y.numpy())
    (folder / "mlp.yaml").write_text(SMALL_MLP)


@pytest.mark.parametrize("method", [["--method", "gaussian", "--prior", "learned", "--epochs", "4",
                                     "--mc-samples", "30"],
                                    ["--method", "compression"]])
def test_two_cli_runs_give_byte_identical_json(tmp_path, method):
    from typer.testing import CliRunner

    from boundcalc.cli import app

    _small_digits_case(tmp_path)
    args = ["certify", str(tmp_path / "mlp.yaml"), str(tmp_path / "m.safetensors"), "--data",
            str(tmp_path / "train.npz"), "--seed", "3", *method, "-f", "json"]
    first, second = CliRunner().invoke(app, args), CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.stderr
    assert first.stdout.encode() == second.stdout.encode()
    # a different seed is a different run (the seed reaches the draws)
    other = CliRunner().invoke(app, [a if a != "3" else "4" for a in args])
    assert other.stdout != first.stdout


# -- a traced model: certify binds the spec that `boundcalc trace` wrote -----------------------------------------

def _traced_cnn_case(folder):
    """tests/trace_models.py's BnPoolCNN (BatchNorm, overlapping max-pool, biases, GELU, global mean, dropout)
    trained briefly on 300 digit images, traced: its spec, state dict and train.npz in ``folder``."""
    from sklearn.datasets import load_digits

    import boundcalc
    from tests.trace_models import bn_pool_cnn

    digits = load_digits()
    x = torch.tensor(digits.data[:300] / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(digits.target[:300])
    net = bn_pool_cnn()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(60):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimiser.step()
    net.eval()
    (folder / "cnn.yaml").write_text(boundcalc.trace_module(net, x[:2], name="bn_pool_cnn").text)
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, folder / "m.safetensors")
    np.savez(folder / "train.npz", X=x.numpy(), y=y.numpy())
    with torch.no_grad():
        return float((net(x).argmax(1) != y).float().mean())


@pytest.mark.parametrize("method", [["--method", "gaussian", "--prior", "learned", "--epochs", "3",
                                     "--mc-samples", "40"],
                                    ["--method", "compression"]])
def test_certify_works_on_a_traced_spec(tmp_path, method):
    import json

    from typer.testing import CliRunner

    from boundcalc.cli import app

    _traced_cnn_case(tmp_path)
    assert "op: batchnorm" in (tmp_path / "cnn.yaml").read_text()
    result = CliRunner().invoke(app, ["certify", str(tmp_path / "cnn.yaml"), str(tmp_path / "m.safetensors"),
                                      "--data", str(tmp_path / "train.npz"), "--seed", "0", *method, "-f", "json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert 0.0 < report["certificate"] <= 1.0
    assert report["certificate"] >= report["train_error"]
    assert "Not the checkpoint itself" in report["classifier"]
    # the network certified is the traced one with its BatchNorm folded into conv1 (which gains a bias):
    # conv1 6·1·3·3 + 6, conv2 8·6·3·3 + 8, fc 10·8 + 10 = 590 parameters
    if method[1] == "compression":
        assert "quantised" in report["classifier"] and report["n"] == 300
    else:
        assert "over the 590 parameters" in report["classifier"] and report["n"] == 150   # half for the prior
