"""Zoos: the manifest format, Kendall τ and granulated Ψ against hand-worked numbers and scipy, and
`boundcalc zoo evaluate` end to end on Dask (a broken model is reported and the others still run)."""
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from boundcalc.cli import app
from boundcalc.zoo.manifest import ZooError, load_zoo
from boundcalc.zoo.stats import granulated_psi, kendall_tau

SPECS = Path(__file__).resolve().parents[1] / "specs"
runner = CliRunner()


def test_kendall_tau_hand_worked_and_against_scipy():
    # measure 1,2,3 and gap 1,3,2: pairs (1,2) concordant, (1,3) concordant, (2,3) discordant -> (2-1)/3
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / 3)     # the tied pair counts 0
    assert kendall_tau([5], [1]) is None
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    a = rng.normal(size=30)
    b = a + rng.normal(size=30)
    assert kendall_tau(a, b) == pytest.approx(kendalltau(a, b).statistic)


def test_granulated_psi_hand_worked():
    # 2×2 grid of hyperparameters (wd, width); gaps and measures chosen so that:
    #   varying wd at width 32: measure up, gap up (τ = 1); at width 64: measure up, gap down (τ = −1) -> ψ_wd = 0
    #   varying width at wd 0: measure up, gap up (τ = 1); at wd 1: measure up, gap up (τ = 1)        -> ψ_width = 1
    hyper = [{"wd": 0, "width": 32}, {"wd": 1, "width": 32}, {"wd": 0, "width": 64}, {"wd": 1, "width": 64}]
    measure = [1.0, 2.0, 3.0, 4.0]
    gap = [0.1, 0.2, 0.4, 0.3]
    psi, per = granulated_psi(measure, gap, hyper)
    assert per == {"wd": pytest.approx(0.0), "width": pytest.approx(1.0)}
    assert psi == pytest.approx(0.5)
    constant = [{"wd": 0, "seed": s} for s in range(3)]   # 'wd' never varies: not counted
    psi, per = granulated_psi([1, 2, 3], [1, 2, 3], constant)
    assert set(per) == {"seed"} and psi == pytest.approx(1.0)


def write_manifest(folder: Path, rows: list[dict], jsonl: bool = False) -> None:
    if jsonl:
        (folder / "models.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return
    with open(folder / "models.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_manifest_csv_and_jsonl(tmp_path):
    write_manifest(tmp_path, [{"id": "a", "file": "a.pt", "wd": "1e-3", "train_error": 0.1, "test_error": 0.25}])
    (model,) = load_zoo(tmp_path)
    assert model.gap == pytest.approx(0.15) and model.hyperparameters == {"wd": 0.001}
    (tmp_path / "models.csv").unlink()
    write_manifest(tmp_path, [{"id": "b", "file": "sub/b.pt", "train_accuracy": 0.9, "test_accuracy": 0.8,
                               "opt": "sgd"}], jsonl=True)
    (model,) = load_zoo(tmp_path)
    assert model.train_error == pytest.approx(0.1) and model.test_error == pytest.approx(0.2)
    assert model.hyperparameters == {"opt": "sgd"} and model.file == (tmp_path / "sub" / "b.pt").resolve()


@pytest.mark.parametrize("rows,phrase", [
    ([{"id": "a", "file": "../x.pt", "train_error": 0, "test_error": 0}], "outside the zoo folder"),
    ([{"id": "a", "file": "a.pt", "train_error": 0}], "test_error"),
    ([{"id": "a", "file": "a.pt", "wd": 1}], "needs train_error"),
    ([{"id": "a", "file": "a.pt", "train_error": 0, "test_error": 2}], "in [0, 1]"),
    ([{"id": "a", "file": "a.pt", "train_error": 0, "test_error": 0}] * 2, "duplicate id"),
    ([{"id": "", "file": "a.pt", "train_error": 0, "test_error": 0}], "missing 'id'"),
])
def test_manifest_errors(tmp_path, rows, phrase):
    write_manifest(tmp_path, rows)
    with pytest.raises(ZooError, match=phrase.replace("[", r"\[").replace("]", r"\]")) as err:
        load_zoo(tmp_path)
    assert "\n" not in str(err.value)


def test_two_manifests_or_none(tmp_path):
    with pytest.raises(ZooError, match="found none"):
        load_zoo(tmp_path)
    (tmp_path / "models.csv").write_text("id,file\n")
    (tmp_path / "models.jsonl").write_text("")
    with pytest.raises(ZooError, match="exactly one"):
        load_zoo(tmp_path)


@pytest.fixture(scope="module")
def small_zoo(digits, tmp_path_factory):
    """The digits MLP and a noisy copy of it (two models of different gap), plus a broken file."""
    folder = tmp_path_factory.mktemp("zoo")
    shutil.copy(digits["root"] / "mlp.pt", folder / "trained.pt")
    gen = torch.Generator().manual_seed(0)
    noisy = {k: (v + 0.05 * torch.randn(v.shape, generator=gen)).contiguous()
             for k, v in digits["mlp"].state_dict().items()}
    save_file(noisy, folder / "noisy.safetensors")
    (folder / "broken.safetensors").write_bytes(b"not a checkpoint")
    write_manifest(folder, [
        {"id": "trained", "file": "trained.pt", "noise": 0.0, "train_error": 0.0, "test_error": 0.03},
        {"id": "noisy", "file": "noisy.safetensors", "noise": 0.05, "train_error": 0.05, "test_error": 0.1},
        {"id": "broken", "file": "broken.safetensors", "noise": 1.0, "train_error": 0.5, "test_error": 0.5},
    ])
    return folder


def test_zoo_evaluate_end_to_end(small_zoo, digits, tmp_path):
    out, plots = tmp_path / "out", tmp_path / "plots"
    result = runner.invoke(app, ["zoo", "evaluate", str(small_zoo), "--spec", str(SPECS / "digits_mlp.yaml"),
                                 "--data", str(digits["root"] / "train.npz"), "--margin-percentile", "50",
                                 "--out", str(out), "--plots", str(plots), "-f", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["models"] == 3 and summary["evaluated"] == 2
    (failed,) = summary["failed"]
    assert failed["id"] == "broken" and "broken.safetensors" in failed["error"]
    keys = {b["key"] for b in summary["bounds"]}
    assert {"pinto2024", "pinto2024_tight", "golowich2018"} <= keys
    assert "galanti2023" in summary["not_applicable"]
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == ["trained", "noisy", "broken"]
    results = json.loads((out / "results.json").read_text())
    trained, noisy = results[0], results[1]
    for b in summary["bounds"]:
        # two models: τ is +1 or −1 depending on whether the bound orders them as their gaps (0.03 vs 0.0)
        want = np.sign(trained["bounds"][b["key"]]["gap_log10"] - noisy["bounds"][b["key"]]["gap_log10"]) * \
            np.sign(trained["gap"] - noisy["gap"])
        assert b["kendall_tau"] == pytest.approx(want)
    assert (plots / "pinto2024_tight.png").read_bytes()[:4] == b"\x89PNG"


def test_zoo_evaluate_with_two_workers_gives_the_same_results(small_zoo, digits, tmp_path):
    runs = []
    for workers in ("1", "2"):
        out = tmp_path / workers
        result = runner.invoke(app, ["zoo", "evaluate", str(small_zoo), "--spec", str(SPECS / "digits_mlp.yaml"),
                                     "--data", str(digits["root"] / "train.npz"), "--margin-percentile", "50",
                                     "--workers", workers, "--out", str(out), "-f", "json"])
        assert result.exit_code == 0, result.output
        runs.append(json.loads((out / "results.json").read_text()))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("args,phrase", [
    (["--workers", "0"], "--workers"),
    (["--scheduler", "tcp://127.0.0.1:9"], "Dask scheduler"),
    (["--bounds", "nope2020"], "nope2020"),
])
def test_zoo_evaluate_errors(small_zoo, args, phrase):
    result = runner.invoke(app, ["zoo", "evaluate", str(small_zoo), "--spec", str(SPECS / "digits_mlp.yaml"), *args])
    assert result.exit_code == 2, result.output
    assert phrase in result.stderr and result.stderr.strip().count("\n") == 0


def test_zoo_without_a_spec(small_zoo):
    result = runner.invoke(app, ["zoo", "evaluate", str(small_zoo)])
    assert result.exit_code == 2 and "--spec" in result.stderr


def test_zoo_evaluate_on_an_existing_scheduler(small_zoo, digits, tmp_path):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        result = runner.invoke(app, ["zoo", "evaluate", str(small_zoo), "--spec", str(SPECS / "digits_mlp.yaml"),
                                     "--data", str(digits["root"] / "train.npz"), "--margin-percentile", "50",
                                     "--scheduler", cluster.scheduler_address, "--out", str(tmp_path), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["evaluated"] == 2


def test_zoo_with_a_symbolic_spec_infers_sizes_per_model(small_zoo, digits, tmp_path):
    result = runner.invoke(app, ["zoo", "evaluate", str(small_zoo), "--spec", str(SPECS / "lowrank_mlp.yaml"),
                                 "--data", str(digits["root"] / "train.npz"), "--margin-percentile", "50",
                                 "--out", str(tmp_path), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["evaluated"] == 2


def test_results_name_checkpoints_relative_to_the_working_directory(tmp_path, monkeypatch):
    """Inside the working directory a checkpoint is named as the user reaches it (so results do not change with
    where the folder sits); outside it, by its absolute path."""
    from boundcalc.zoo.run import shown_path

    inside = (tmp_path / "zoo" / "a.safetensors").resolve()
    monkeypatch.chdir(tmp_path)
    assert shown_path(inside) == str(Path("zoo") / "a.safetensors")
    monkeypatch.chdir(tmp_path.parent)
    assert shown_path(inside) == str(Path(tmp_path.name) / "zoo" / "a.safetensors")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert shown_path(inside) == str(inside)
