"""Evaluate every model of a zoo, in parallel on Dask (a local cluster of worker processes, or an existing
scheduler), and summarise how each bound ranks the models against their measured gap."""
from __future__ import annotations

import importlib
import logging
import multiprocessing
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from boundcalc.errors import BoundcalcError
from boundcalc.pipeline import EvaluateRequest, EvaluateSettings, run_evaluation
from boundcalc.zoo.manifest import ZooError, ZooModel
from boundcalc.zoo.stats import granulated_psi, kendall_p_value, kendall_tau


@dataclass(frozen=True)
class ZooTask:
    """One model to evaluate with the zoo's settings (the same pipeline and defaults as ``boundcalc evaluate``)."""

    model: ZooModel
    spec: Path
    data: Path | None
    settings: EvaluateSettings = field(default_factory=EvaluateSettings)


@dataclass
class ZooResult:
    """One model: its manifest entry and either per-bound numbers or the error that stopped it."""

    id: str
    file: str
    hyperparameters: dict
    train_error: float
    test_error: float
    gap: float
    ok: bool
    error: str = ""
    gamma: float | None = None
    bounds: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BoundSummary:
    key: str
    status: str
    models: int                     # models on which the bound gave a number
    tau: float | None               # Kendall τ between the gap bound and the measured gap
    psi: float | None               # granulated Kendall Ψ over the hyperparameters
    psi_by_hyperparameter: dict[str, float]
    non_vacuous: float | None       # fraction of models with a non-vacuous test-error bound (None: order only)
    tau_p_value: float | None = None  # two-sided p-value of τ under independent rankings (see zoo.stats)


def _failed(model: ZooModel, error: str = "") -> ZooResult:
    return ZooResult(model.id, str(model.file), model.hyperparameters, model.train_error, model.test_error,
                     model.gap, ok=False, error=error)


def _chunks(indices: list[int], slots: int) -> list[list[int]]:
    """About 8 chunks per worker slot: few enough that scheduling costs little next to the work, enough that
    the last chunks balance the load and the progress bar moves."""
    size = max(1, -(-len(indices) // (8 * slots)))
    return [indices[i:i + size] for i in range(0, len(indices), size)]


def evaluate_models(tasks: list[ZooTask]) -> list[ZooResult]:
    """One Dask task: a chunk of models, evaluated in order."""
    return [evaluate_model(task) for task in tasks]


def evaluate_model(task: ZooTask) -> ZooResult:
    """Evaluate one model; never raises: a failure is recorded in the result with its one-line reason."""
    model = task.model
    result = _failed(model)
    try:
        evaluation = _evaluate(task)
    except BoundcalcError as err:
        result.error = str(err)
        return result
    except Exception as err:   # a bug must not stop the other models; it is reported with its location
        where = traceback.extract_tb(err.__traceback__)[-1]
        result.error = f"internal error {type(err).__name__}: {err} ({Path(where.filename).name}:{where.lineno})"
        return result
    result.ok = True
    result.gamma = evaluation.data.train.gamma if evaluation.data is not None else None
    for b in evaluation.bounds:
        result.bounds[b.key] = {"status": b.status, "applies": b.applies, "reason": b.reason,
                                "complexity_log10": b.complexity_log10, "gap_log10": b.gap_log10,
                                "test_error_bound": b.test_error_bound, "vacuous": b.vacuous}
    return result


def _evaluate(task: ZooTask):
    import torch

    torch.set_num_threads(1)    # one model per worker process; parallelism comes from the workers
    request = EvaluateRequest(task.spec, task.model.file, data=task.data, settings=task.settings)
    return run_evaluation(request)[0]


def default_start_method() -> str:
    """'fork' where the platform has it: the worker processes inherit the modules this process has already
    imported (torch, sympy, boundcalc: about 3.5 s per fresh process), so a local cluster starts in well under
    a second; 'spawn' elsewhere."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def run_zoo(tasks: list[ZooTask], workers: int = 1, scheduler: str | None = None,
            on_done: Callable[[ZooResult], None] = lambda r: None, start_method: str | None = None) -> list[ZooResult]:
    """Results in the order of ``tasks``. Runs on the Dask scheduler at ``scheduler``, or on a local cluster
    of ``workers`` single-threaded worker processes (started by ``start_method``, default
    :func:`default_start_method`); ``on_done`` is called as each model finishes."""
    import dask
    from dask.distributed import Client, LocalCluster, as_completed

    if workers < 1:
        raise ZooError(f"--workers must be ≥ 1, got {workers}")
    _import_worker_modules()
    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout="10s")
        else:
            with dask.config.set({"distributed.worker.multiprocessing-method": start_method or default_start_method()}):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
    except (OSError, TimeoutError, ValueError) as err:
        raise ZooError(f"cannot start or reach the Dask scheduler {scheduler or '(local)'}: "
                       f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    try:
        slots = max(1, sum(client.nthreads().values()))
        chunks = _chunks(list(range(len(tasks))), slots)
        futures = client.map(evaluate_models, [[tasks[i] for i in chunk] for chunk in chunks], pure=False)
        index = {future.key: chunk for future, chunk in zip(futures, chunks)}
        results: list[ZooResult | None] = [None] * len(tasks)
        for future in as_completed(futures):
            chunk = index[future.key]
            try:
                done = future.result()
            except Exception as err:   # the worker itself died (memory, crash): report, keep going
                done = [_failed(tasks[i].model, f"worker failed: {type(err).__name__}: {err}") for i in chunk]
            for i, result in zip(chunk, done):
                result.file = shown_path(tasks[i].model.file)
                results[i] = result
                on_done(result)
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def shown_path(path: Path) -> str:
    """``path`` relative to this process's working directory when it lies inside it, else absolute: results then
    name a checkpoint as the user reaches it, and do not change with where the zoo folder is."""
    try:
        return str(Path(path).relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def not_applicable(results: list[ZooResult]) -> dict[str, str]:
    """Bounds that apply to none of the evaluated models, with the reason the first model gave."""
    applied = {k for r in results if r.ok for k, b in r.bounds.items() if b["applies"]}
    return {k: b["reason"] for r in results if r.ok for k, b in r.bounds.items() if k not in applied}


#: what a worker imports to evaluate a model (about 3.5 s in a fresh process)
WORKER_MODULES = ("torch", "boundcalc.evaluate", "boundcalc.measure.checkpoint", "boundcalc.measure.quantities",
                  "boundcalc.measure.infer", "boundcalc.spec.load", "boundcalc.spec.assign", "boundcalc.measure.data")


def _import_worker_modules() -> None:
    """Import what a worker needs before the workers start, so forked workers inherit it."""
    for name in WORKER_MODULES:
        importlib.import_module(name)


def summarise(results: list[ZooResult]) -> list[BoundSummary]:
    """Per applicable bound: Kendall τ and granulated Ψ of its gap bound against the measured gap over the models it was
    evaluated on, and the fraction of them with a non-vacuous test-error bound."""
    keys = list(dict.fromkeys(k for r in results if r.ok for k, b in r.bounds.items() if b["applies"]))
    out = []
    for key in keys:
        rows = [r for r in results if r.ok and r.bounds.get(key, {}).get("gap_log10") is not None]
        status = next((r.bounds[key]["status"] for r in results if r.ok and key in r.bounds), "")
        measure = [r.bounds[key]["gap_log10"] for r in rows]
        gaps = [r.gap for r in rows]
        psi, per = granulated_psi(measure, gaps, [r.hyperparameters for r in rows])
        flags = [r.bounds[key]["vacuous"] for r in rows if r.bounds[key]["vacuous"] is not None]
        tau = kendall_tau(measure, gaps)
        out.append(BoundSummary(key, status, len(rows), tau, psi, per,
                                (sum(1 for v in flags if not v) / len(flags)) if flags else None,
                                kendall_p_value(tau, len(rows))))
    return out
