"""The zoo format: a folder with checkpoints and one manifest, ``models.csv`` or ``models.jsonl``.

One row per model. Reserved columns:

- ``id`` (unique) and ``file`` (the checkpoint, relative to the folder; it must stay inside it),
- ``train_error`` and ``test_error``, or ``train_accuracy`` and ``test_accuracy`` (fractions in [0, 1]),
- ``spec`` (optional: a spec path relative to the folder, overriding ``--spec``).

Limits (``boundcalc.limits``): at most MAX_MODELS rows and MAX_MANIFEST_BYTES; a byte-order mark is accepted.

Every other column is a hyperparameter (e.g. ``weight_decay``, ``width``, ``depth``); the granulated Kendall
coefficient Ψ groups models by them.
"""
from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

from boundcalc.errors import BoundcalcError
from boundcalc.files import FileInputError, load_json, read_text, resolved
from boundcalc.limits import MAX_MANIFEST_BYTES, MAX_MODELS

MANIFESTS = ("models.csv", "models.jsonl")
RESERVED = {"id", "file", "spec", "train_error", "test_error", "train_accuracy", "test_accuracy"}


class ZooError(BoundcalcError):
    """A zoo folder or manifest that cannot be used."""


@dataclass(frozen=True)
class ZooModel:
    id: str
    file: Path
    train_error: float
    test_error: float
    spec: Path | None = None
    hyperparameters: dict[str, str | float] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """The measured generalization gap: test error − train error."""
        return self.test_error - self.train_error


def load_zoo(folder: str | Path) -> list[ZooModel]:
    """The models of the zoo in ``folder``, validated (one-line ZooError naming the file and row)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ZooError(f"{folder}: not a folder (a zoo is a folder with models.csv or models.jsonl)")
    found = [folder / name for name in MANIFESTS if (folder / name).exists() or (folder / name).is_symlink()]
    if len(found) != 1:
        raise ZooError(f"{folder}: expected exactly one of {' or '.join(MANIFESTS)}, found "
                       f"{', '.join(p.name for p in found) or 'none'}")
    manifest = found[0]
    rows = _read_rows(manifest)
    if not rows:
        raise ZooError(f"{manifest}: no models listed")
    models, seen = [], set()
    for line, row in rows:
        model = _model(folder, manifest, line, row)
        if model.id in seen:
            raise ZooError(f"{manifest}:{line}: duplicate id {model.id!r}")
        seen.add(model.id)
        models.append(model)
    return models


def input_files(folder: str | Path, models: list[ZooModel]) -> list[Path]:
    """The files a zoo run reads: its manifests, every model's checkpoint and spec (outputs must avoid them)."""
    folder = Path(folder)
    return [*(folder / name for name in MANIFESTS), *(m.file for m in models),
            *(m.spec for m in models if m.spec is not None)]


def _read_rows(manifest: Path) -> list[tuple[int, dict]]:
    """(line, row) pairs: a regular file of at most MAX_MANIFEST_BYTES, UTF-8 with or without a byte-order mark,
    at most MAX_MODELS rows (counted while parsing, so a longer file stops there); JSONL rows at most
    MAX_JSON_DEPTH deep and without duplicate keys."""
    try:
        text = read_text(manifest, "manifest", MAX_MANIFEST_BYTES, "MAX_MANIFEST_BYTES")
    except FileInputError as err:
        raise ZooError(str(err)) from None
    rows = _csv_rows(manifest, text) if manifest.suffix == ".csv" else _jsonl_rows(manifest, text)
    rows = list(itertools.islice(rows, MAX_MODELS + 1))
    if len(rows) > MAX_MODELS:
        raise ZooError(f"{manifest}: more than {MAX_MODELS:,} models, the limit of one zoo (MAX_MODELS); split it")
    return rows


def _csv_rows(manifest: Path, text: str):
    try:
        for i, row in enumerate(csv.DictReader(text.splitlines())):
            yield i + 2, dict(row)
    except csv.Error as err:
        raise ZooError(f"{manifest}: not valid CSV ({err})") from None


def _jsonl_rows(manifest: Path, text: str):
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = load_json(line)
        except ValueError as err:   # syntax (JSONDecodeError), nesting or a duplicate key
            raise ZooError(f"{manifest}:{i}: not a JSON object ({getattr(err, 'msg', err)})") from None
        if not isinstance(row, dict):
            raise ZooError(f"{manifest}:{i}: each line must be a JSON object")
        yield i, row


def _model(folder: Path, manifest: Path, line: int, row: dict) -> ZooModel:
    where = f"{manifest}:{line}"
    if None in row:
        raise ZooError(f"{where}: more values than columns")
    for key in ("id", "file"):
        if row.get(key) in (None, ""):
            raise ZooError(f"{where}: missing {key!r}")
    file = _inside(folder, str(row["file"]), where)
    spec = _inside(folder, str(row["spec"]), where) if row.get("spec") not in (None, "") else None
    if "train_error" in row or "test_error" in row:
        train, test = (_fraction(row, k, where) for k in ("train_error", "test_error"))
    elif "train_accuracy" in row or "test_accuracy" in row:
        train, test = (1 - _fraction(row, k, where) for k in ("train_accuracy", "test_accuracy"))
    else:
        raise ZooError(f"{where}: needs train_error and test_error (or train_accuracy and test_accuracy)")
    hyper = {str(k): _hyper_value(v) for k, v in row.items() if k not in RESERVED}
    return ZooModel(str(row["id"]), file, train, test, spec, hyper)


def _inside(folder: Path, relative: str, where: str) -> Path:
    try:
        path, root = resolved(folder / relative), resolved(folder)
    except FileInputError as err:
        raise ZooError(f"{where}: {err}") from None
    if not path.is_relative_to(root):
        raise ZooError(f"{where}: path {relative!r} points outside the zoo folder")
    return path


def _fraction(row: dict, key: str, where: str) -> float:
    raw = row.get(key)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ZooError(f"{where}: {key} must be a number in [0, 1], got {raw!r}") from None
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ZooError(f"{where}: {key} must be a number in [0, 1], got {raw!r}")
    return value


def _hyper_value(raw) -> str | float:
    """Numbers stay numbers (so 0.001 and 1e-3 are one value); anything else is compared as text."""
    try:
        value = float(raw)
        return value if math.isfinite(value) else str(raw)
    except (TypeError, ValueError):
        return str(raw)
