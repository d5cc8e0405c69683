"""The digits study's models: the data split, the networks, their training and the zoo folder they are saved in.

Everything here is deterministic: the split and each model's initialisation and batch order come from fixed
seeds, training runs on one CPU thread with torch's deterministic algorithms, and every file is written with
fixed bytes (no timestamps), so two runs with the same library versions write the same bytes.
"""
from __future__ import annotations

import csv
import io
import itertools
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from studylib import parallel_map

TRAIN_SIZE = 500       # a small training set, so the models differ in their generalization gap
SPLIT_SEED = 0         # the permutation that splits the 1797 digits into training and held-out images
BATCH = 32
#: a fixed timestamp for the members of the .npz archive (np.savez stamps them with the current time)
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Config:
    """One model of the grid; ``seed`` fixes its initialisation and its batch order."""

    weight_decay: float
    width: int
    depth: int
    rank: int | None
    seed: int

    @property
    def id(self) -> str:
        return f"wd{self.weight_decay:g}_w{self.width}_d{self.depth}_r{self.rank or 'full'}"

    @property
    def spec_name(self) -> str:
        return f"mlp_w{self.width}_d{self.depth}.yaml"


def configs(grid: dict) -> list[Config]:
    """The full-rank grid (weight decay × width × depth), then the factorized variants at the largest width and
    depth; model n gets seed n."""
    shapes = [(wd, w, d, None) for wd, w, d in itertools.product(grid["weight_decays"], grid["widths"], grid["depths"])]
    shapes += [(wd, max(grid["widths"]), max(grid["depths"]), r)
               for wd, r in itertools.product(grid["lowrank_decays"], grid["ranks"])]
    return [Config(float(wd), w, d, r, seed) for seed, (wd, w, d, r) in enumerate(shapes)]


def deterministic_torch() -> None:
    """One thread and deterministic kernels: a float reduction then adds in one fixed order, whatever the load."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


class Factorized(torch.nn.Module):
    """x -> U(Vx) + b: a linear layer of rank ≤ inner."""

    def __init__(self, n_in: int, n_out: int, inner: int) -> None:
        super().__init__()
        self.V = torch.nn.Linear(n_in, inner, bias=False)
        self.U = torch.nn.Linear(inner, n_out)

    def forward(self, x):
        return self.U(self.V(x))

    def weight(self) -> torch.Tensor:
        return self.U.weight @ self.V.weight


def make_net(width: int, depth: int, rank: int | None) -> torch.nn.Sequential:
    """``depth`` hidden ReLU layers of ``width``; with ``rank``, the hidden-to-hidden layers are factorized."""
    layers, n_in = [], 64
    for i in range(depth):
        factorize = rank is not None and i > 0
        layers += [Factorized(n_in, width, rank) if factorize else torch.nn.Linear(n_in, width), torch.nn.ReLU()]
        n_in = width
    layers.append(torch.nn.Linear(n_in, 10))
    return torch.nn.Sequential(*layers)


def state_for_spec(net: torch.nn.Sequential) -> dict[str, torch.Tensor]:
    """fc<i>.weight / fc<i>.bias per linear layer, factorized layers saved as their product U·V."""
    out, i = {}, 0
    for module in net:
        if isinstance(module, (torch.nn.Linear, Factorized)):
            i += 1
            weight = module.weight() if isinstance(module, Factorized) else module.weight
            bias = module.U.bias if isinstance(module, Factorized) else module.bias
            out[f"fc{i}.weight"], out[f"fc{i}.bias"] = weight.detach().contiguous(), bias.detach().contiguous()
    return out


def spec_text(width: int, depth: int) -> str:
    lines = [f"name: mlp_w{width}_d{depth}", f"description: digits MLP, {depth} hidden ReLU layers of width {width}",
             "data: {samples: m, dim: 64, norm: frobenius}", "layers:"]
    for i in range(depth):
        lines += [f"  - {{op: linear, name: fc{i + 1}, out: {width}, param: fc{i + 1}.weight}}", "  - relu"]
    lines += [f"  - {{op: linear, name: fc{depth + 1}, out: 10, param: fc{depth + 1}.weight}}",
              "loss: {margin: gamma, delta: delta}"]
    return "\n".join(lines) + "\n"


def error(net, x, y) -> float:
    with torch.no_grad():
        return float((net(x).argmax(1) != y).float().mean())


def train(net, x, y, weight_decay: float, epochs: int, lr: float, seed: int) -> None:
    """Minibatch Adam; the batch order of every epoch comes from a generator seeded with ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), BATCH):
            batch = order[start:start + BATCH]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
            opt.step()


def split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's digits scaled to [0, 1]: (x_train, y_train, x_held_out, y_held_out), by a seeded permutation."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    tr, te = order[:TRAIN_SIZE], order[TRAIN_SIZE:]
    return x[tr], y[tr], x[te], y[te]


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """What ``np.savez`` writes, but with fixed member timestamps, so the same arrays give the same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME), buffer.getvalue())


def _train_one(job: tuple[Config, dict, Path]) -> dict:
    """Train one model and save it into the zoo; returns its manifest row. Runs in a worker process."""
    config, grid, zoo = job
    deterministic_torch()
    x_train, y_train, x_test, y_test = split()
    torch.manual_seed(config.seed)
    net = make_net(config.width, config.depth, config.rank)
    train(net, x_train, y_train, config.weight_decay, grid["epochs"], grid["lr"], seed=config.seed)
    save_file(state_for_spec(net), zoo / f"{config.id}.safetensors")
    return {"id": config.id, "file": f"{config.id}.safetensors", "spec": config.spec_name,
            "weight_decay": config.weight_decay, "width": config.width, "depth": config.depth,
            "rank": config.rank or "full", "train_error": error(net, x_train, y_train),
            "test_error": error(net, x_test, y_test)}


def build_zoo(out: Path, grid: dict, workers: int) -> tuple[Path, Path, list[dict]]:
    """Train every model of ``grid`` (on ``workers`` processes, one thread each) and save the zoo folder
    ``out/zoo`` (checkpoints, one spec per architecture, models.csv) and the training data ``out/train.npz``.
    The rows come back in grid order, whichever process trained them."""
    x_train, y_train, _, _ = split()
    zoo = out / "zoo"
    zoo.mkdir(parents=True, exist_ok=True)
    train_npz = out / "train.npz"
    write_npz(train_npz, X=x_train.numpy(), y=y_train.numpy())
    grid_configs = configs(grid)
    for config in grid_configs:
        (zoo / config.spec_name).write_text(spec_text(config.width, config.depth))
    rows = parallel_map(_train_one, [(config, grid, zoo) for config in grid_configs], workers)
    report(rows)
    write_manifest(zoo, rows)
    return zoo, train_npz, rows


def write_manifest(zoo: Path, rows: list[dict]) -> None:
    """The zoo's models.csv: one row per model, the columns of the first row."""
    with open(zoo / "models.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def report(rows: list[dict]) -> None:
    """One line per trained model, as the rows come back."""
    for row in rows:
        print(f"trained {row['id']}: train error {row['train_error']:.3f}, test error {row['test_error']:.3f}",
              flush=True)


def training_phrase(grid: dict, models: int) -> str:
    """How every study trains, as its settings line says it: the optimiser, step size, batch, epochs and seeds."""
    epochs = grid["epochs"]
    return (f"minibatch Adam (lr {grid['lr']:g}, batch {BATCH}, {epochs} epoch{'s' if epochs != 1 else ''}), "
            f"model n seeded with n (0 to {models - 1})")


def library_versions(matplotlib: bool = True) -> str:
    """The versions a study's numbers depend on (another version may change the last digits)."""
    import platform

    import numpy
    import sklearn

    text = (f"Python {platform.python_version()}, torch {torch.__version__}, numpy {numpy.__version__}, "
            f"scikit-learn {sklearn.__version__}")
    if matplotlib:
        import matplotlib as plots

        text += f", matplotlib {plots.__version__}"
    return text
