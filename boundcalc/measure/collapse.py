"""Neural-collapse and rank-collapse diagnostics per layer (docs/references.md §8; order-only theory).

For each weight layer ℓ, on the features Z_{ℓ−1} that enter it:

- NC1 = tr(Σ_W Σ_B^†)/C (Papyan, Han & Donoho 2020): within-class covariance against the pseudo-inverse of the
  between-class covariance, Σ_W = (1/m) Σ_i (z_i − μ_{y_i})(z_i − μ_{y_i})ᵀ, Σ_B = (1/C) Σ_c (μ_c − μ_G)(μ_c − μ_G)ᵀ.
- TCV = Σ_c Σ_{i∈c} ‖z_i − μ_c‖, the total within-class variation of Zangrando et al. (2024), as in
  docs/references.md §8.2.
- numeric rank and stable rank of W_ℓ, and dist_K(W_ℓ) = √(Σ_{j>K} σ_j²) with K = C classes.
- given the weight decay λ, dist_K·λ/TCV, which Zangrando et al. predict stays bounded (constants unknown).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from boundcalc.measure.data import Dataset, DataError, check_labels_fit
from boundcalc.measure.forward import layer_inputs
from boundcalc.measure.linalg import max_abs
from boundcalc.measure.quantities import MeasureOptions, measure_weight
from boundcalc.measure.run import BoundModel


@dataclass(frozen=True)
class ClassStatistics:
    classes: int
    nc1: float
    tcv: float
    between_rank: int          # rank of the centred class means (≤ C − 1) used for Σ_B^†


@dataclass(frozen=True)
class LayerCollapse:
    layer: str
    tensor: str
    features: int              # dimension of the layer's input features
    nc1: float
    tcv: float
    rank: int
    rank_tolerance: float
    stable_rank: float
    dist_k: float
    k: int
    ratio: float | None        # dist_K·λ/TCV, when λ is given

    def to_dict(self) -> dict:
        return asdict(self)


def class_statistics(features: torch.Tensor, labels: torch.Tensor) -> ClassStatistics:
    """NC1 and TCV of ``features`` (m × p) with integer ``labels``; classes are the labels present.

    With the centred class means M (C × p) = U S Vᵀ, Σ_B^† = C·V S⁻² Vᵀ, so
    NC1 = Σ_j ‖D v_j‖² / (m s_j²) with D the rows z_i − μ_{y_i}: no p × p matrix is formed. Both are computed
    on Z/c with c = max|z_ij| (NC1 is scale-free, TCV is multiplied back by c), so that features of magnitude
    1e±300 neither overflow nor underflow when squared."""
    scale = max_abs(features) or 1.0
    z = features.to(torch.float64) / scale
    present, index = torch.unique(labels, return_inverse=True)
    C, m = len(present), z.shape[0]
    if C < 2:
        raise DataError(f"neural-collapse statistics need at least 2 classes, the data has {C}")
    counts = torch.bincount(index, minlength=C).to(torch.float64)
    means = torch.zeros(C, z.shape[1], dtype=torch.float64).index_add_(0, index, z) / counts[:, None]
    within = z - means[index]
    tcv = scale * float(torch.linalg.vector_norm(within, dim=1).sum())
    centred = means - z.mean(dim=0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    tolerance = float(s.max()) * max(centred.shape) * torch.finfo(torch.float64).eps if s.numel() else 0.0
    keep = s > tolerance
    if not bool(keep.any()):
        return ClassStatistics(C, math.inf, tcv, 0)
    projected = within @ vh[keep].T                      # (m, rank): D v_j
    nc1 = float(((projected ** 2).sum(dim=0) / (m * s[keep] ** 2)).sum())
    return ClassStatistics(C, nc1, tcv, int(keep.sum()))


def collapse_report(model: BoundModel, data: Dataset, options: MeasureOptions,
                    weight_decay: float | None = None) -> list[LayerCollapse]:
    """Per weight layer: NC1 and TCV of its input features on ``data``, rank, stable rank and dist_K of the
    weight as trained (K = number of classes in the data; biases are used in the forward pass only)."""
    if data.y is None:
        raise DataError(f"{data.file}: collapse needs labels y")
    graph = model.forward_graph
    output_shape = graph.nodes[graph.graph["output"]]["shape"]
    if len(output_shape) == 1:     # labels index the network's outputs (a label past them is not a class)
        check_labels_fit(data.y, int(output_shape[0]))
    inputs = layer_inputs(graph, data.x, model.weights, model.biases)
    classes = int(torch.unique(data.y).numel())
    options = MeasureOptions(svd=options.svd, rank_rtol=options.rank_rtol, energy=options.energy, tail_k=classes,
                             conv_norm=options.conv_norm, power_iterations=options.power_iterations)
    rows = []
    for node, weight in model.weights.items():
        if node in model.affine_nodes:      # a batchnorm's per-channel scale is not a weight matrix
            continue
        stats = class_statistics(inputs[node], data.y)
        spectrum = measure_weight(weight, options, tensor=model.binding.weights[node], layer=node).matrix
        ratio = (spectrum.tail_energy * weight_decay / stats.tcv
                 if weight_decay is not None and stats.tcv > 0 else None)
        rows.append(LayerCollapse(layer=node, tensor=model.binding.weights[node], features=int(inputs[node].shape[1]),
                                  nc1=stats.nc1, tcv=stats.tcv, rank=spectrum.rank,
                                  rank_tolerance=spectrum.rank_tolerance, stable_rank=spectrum.stable_rank,
                                  dist_k=spectrum.tail_energy, k=classes, ratio=ratio))
    return rows
