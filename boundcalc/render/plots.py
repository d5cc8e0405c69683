"""Figures (matplotlib, Agg backend, written to files). Nothing here computes: every value is given."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from boundcalc.errors import BoundcalcError
from boundcalc.render.escape import mpl_text
from boundcalc.files import write_atomic


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | Path) -> None:
    """Write ``fig`` to ``path`` in the format its suffix names, through a temporary file and an atomic rename
    (:func:`boundcalc.files.write_atomic`): a failed write leaves the old file, never a partial one."""
    path = Path(path)
    try:
        write_atomic(path, lambda handle: fig.savefig(handle, format=path.suffix[1:].lower() or "png", dpi=120,
                                                      bbox_inches="tight"))
    except BoundcalcError:
        raise
    except ValueError as err:    # an unknown format (matplotlib names the ones it knows)
        raise BoundcalcError(f"{path}: cannot write the figure ({str(err).splitlines()[0]})") from None
    finally:
        _pyplot().close(fig)


def per_layer_panels(layers: Sequence[str], panels: dict[str, Sequence[float | None]], title: str,
                     path: str | Path, log: Sequence[str] = ()) -> None:
    """One bar chart per named series over the layers, side by side; series named in ``log`` on a log axis."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0), squeeze=False)
    for ax, (name, values) in zip(axes[0], panels.items()):
        ax.bar(range(len(layers)), [float("nan") if v is None else v for v in values], color="#4c72b0")
        ax.set_xticks(range(len(layers)), [mpl_text(layer) for layer in layers], rotation=45, ha="right",
                      fontsize=8)
        ax.set_title(name, fontsize=9)
        if name in log:
            ax.set_yscale("log")
    fig.suptitle(mpl_text(title), fontsize=10)
    fig.tight_layout()
    save(fig, path)


def scatter(x: Sequence[float], y: Sequence[float], *, xlabel: str, ylabel: str, title: str, path: str | Path,
            logx: bool = False, labels: Sequence[str] | None = None, groups: Sequence[str] | None = None) -> None:
    """A scatter plot of y against x, coloured by ``groups`` when given."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    keys = list(dict.fromkeys(groups)) if groups is not None else [None]
    for key in keys:
        idx = [i for i in range(len(x)) if groups is None or groups[i] == key]
        ax.scatter([x[i] for i in idx], [y[i] for i in idx], s=14, label=key)
    if groups is not None and len(keys) > 1:
        ax.legend(fontsize=7)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_title(mpl_text(title), fontsize=9)
    fig.tight_layout()
    save(fig, path)


def lines(x: Sequence[float], series: dict[str, Sequence[float]], *, xlabel: str, title: str, path: str | Path,
          logx: bool = False, logy: bool = False) -> None:
    """One line per named series against a shared x."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    for name, values in series.items():
        ax.plot(x, values, marker="o", label=name)
    if logx:
        ax.set_xscale("symlog", linthresh=min([v for v in x if v > 0] or [1.0]))
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, path)
