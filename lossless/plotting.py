"""Figure helpers of the book: each takes a matplotlib ``ax`` (or axes) and returns it.

Lowercase axis labels, no titles (captions live in the notebooks' cell metadata), a
legend only when several labelled curves share an axis.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.ticker import NullLocator

__all__ = [
    "spectrum_histogram",
    "density_curve",
    "eigenvector_plot",
    "error_vs_size",
    "gram_demo_plot",
]

CLASS_COLORS = ("C0", "C3", "C2", "C1", "C4", "C5", "C6", "C7", "C8", "C9")


def _legend_if_several(ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if len([lab for lab in labels if lab and not lab.startswith("_")]) > 1:
        ax.legend(frameon=False)


def spectrum_histogram(ax, eigvals, *, bins=50, label: str | None = None, range=None,
                       color=None, alpha: float = 0.45, **stairs_kwargs):
    """Histogram of eigenvalues normalised as a density over **all** of them.

    Bin heights are ``count / (len(eigvals) * width)``, so eigenvalues outside the bins
    (an isolated spike, or the atom at zero cut off by the range) still count in the
    normalisation and the bars stay comparable with a theoretical density on any window.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    eigvals : array_like, shape (n,)
    bins : int or array_like
        Pass the same array of edges to several calls (e.g.
        ``np.histogram_bin_edges(np.concatenate([a, b]), 60)``) so that spectra share
        bins on one axis.
    label : str, optional
        Legend entry.
    range : (float, float), optional
        Range of the bins when ``bins`` is an int.
    color, alpha, **stairs_kwargs
        Passed to ``ax.stairs``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    vals = np.asarray(eigvals, dtype=float).ravel()
    if vals.size == 0:
        raise ValueError("eigvals must not be empty")
    counts, edges = np.histogram(vals, bins=bins, range=range)
    heights = counts / (vals.size * np.diff(edges))
    ax.stairs(heights, edges, fill=True, alpha=alpha, color=color, label=label,
              **stairs_kwargs)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    _legend_if_several(ax)
    return ax


def density_curve(ax, x, density, *, label: str | None = None, color="k", **plot_kwargs):
    """A theoretical density drawn over a histogram (``ax.plot`` with book defaults)."""
    ax.plot(x, density, color=color, lw=1.5, label=label, **plot_kwargs)
    _legend_if_several(ax)
    return ax


def eigenvector_plot(ax, vec, labels, *, class_names: Sequence[str] | None = None,
                     markersize: float = 2.0, **plot_kwargs):
    """Entries of an eigenvector against the sample index, class boundaries marked.

    Samples are drawn in class order (stable sort of ``labels``), coloured by class,
    with a dashed vertical line between consecutive classes.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    vec : array_like, shape (n,)
    labels : array_like of int, shape (n,)
    class_names : sequence of str, optional
        Legend entries per class (default: ``class 0``, ``class 1``, ...; a legend is
        drawn only when names are given).

    Returns
    -------
    matplotlib.axes.Axes
    """
    vec = np.asarray(vec, dtype=float).ravel()
    labels = np.asarray(labels).ravel()
    if vec.shape != labels.shape:
        raise ValueError(f"vec and labels must have one length, got {vec.size} and {labels.size}")
    order = np.argsort(labels, kind="stable")
    v, lab = vec[order], labels[order]
    idx = np.arange(v.size)
    for k, a in enumerate(np.unique(lab)):
        sel = lab == a
        name = class_names[k] if class_names is not None else None
        ax.plot(idx[sel], v[sel], ".", ms=markersize, color=CLASS_COLORS[k % len(CLASS_COLORS)],
                label=name, **plot_kwargs)
    for b in np.flatnonzero(np.diff(lab)) + 0.5:
        ax.axvline(b, color="0.4", ls="--", lw=0.8)
    ax.axhline(0.0, color="0.7", lw=0.5)
    ax.set_xlim(-0.5, v.size - 0.5)
    ax.set_xlabel("sample index $i$ (ordered by class)")
    ax.set_ylabel("eigenvector entry")
    if class_names is not None:
        ax.legend(frameon=False, markerscale=4)
    return ax


def error_vs_size(ax, sizes, errors, rate: float | None = -0.5, *, label: str | None = None,
                  marker: str = "o", xlabel: str = "dimension $p$", ylabel: str = "error",
                  **plot_kwargs):
    """Log-log plot of an error against the size, with a reference slope.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    sizes, errors : array_like, shape (m,)
        Positive.
    rate : float or None
        Slope of the dashed reference line through the first point (``None``: no line).
    label : str, optional
        Legend entry of the data.

    Returns
    -------
    matplotlib.axes.Axes
    """
    sizes = np.asarray(sizes, dtype=float)
    errors = np.asarray(errors, dtype=float)
    line = ax.loglog(sizes, errors, marker=marker, label=label, **plot_kwargs)[0]
    if rate is not None:
        ref = errors[0] * (sizes / sizes[0]) ** rate
        ax.loglog(sizes, ref, ls="--", color=line.get_color(), alpha=0.6, lw=1,
                  label=f"slope ${rate:g}$" if label is None else None)
    ax.set_xticks(sizes, [f"{v:g}" for v in sizes])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _legend_if_several(ax)
    return ax


def gram_demo_plot(axes, demo):
    """Draw a :class:`lossless.data.GramDemo` on three axes (the chapter-1 widget).

    Left: eigenvalue histogram of ``X @ X.T`` with the Marchenko-Pastur density and
    the predicted spikes (dotted lines); when ``n > p`` the atom at zero is cut off by
    the vertical limit. Middle: the top eigenvector. Right: ``||x_i||^2`` by class.

    Parameters
    ----------
    axes : sequence of three matplotlib.axes.Axes
    demo : lossless.data.GramDemo

    Returns
    -------
    the same axes
    """
    ax0, ax1, ax2 = axes
    bins = np.linspace(0.0, demo.grid[-1], 60)
    spectrum_histogram(ax0, demo.eigenvalues, bins=bins, color="C0")
    density_curve(ax0, demo.grid, demo.density)
    for lam in demo.predicted_spikes[np.isfinite(demo.predicted_spikes)]:
        ax0.axvline(lam, color="C3", ls=":", lw=1.2)
    ax0.plot(demo.eigenvalues[0], 0, "v", color="C3", ms=6, clip_on=False)
    peak = float(demo.density.max()) if demo.density.max() > 0 else 1.0
    ax0.set_ylim(0, 1.35 * peak)
    if demo.n > demo.p:
        ax0.annotate(f"atom {1 - demo.p / demo.n:.2f} at 0", xy=(0, 1.3 * peak),
                     xytext=(0.3 * demo.edge, 1.2 * peak), fontsize=8,
                     arrowprops=dict(arrowstyle="->", lw=0.8))
    eigenvector_plot(ax1, demo.top_vector, demo.labels)
    ax1.set_ylabel("top eigenvector entry")
    nb = np.histogram_bin_edges(demo.squared_norms, 40)
    for a in np.unique(demo.labels):
        ax2.hist(demo.squared_norms[demo.labels == a], bins=nb, density=True, alpha=0.5,
                 color=CLASS_COLORS[int(a) % len(CLASS_COLORS)], label=f"class {a}")
    ax2.set_xlabel(r"$\|x_i\|^2$")
    ax2.set_ylabel("density")
    ax2.legend(frameon=False)
    return axes
