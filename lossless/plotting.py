"""Figure helpers of the book: each takes a matplotlib ``ax`` (or axes) and returns it.

Lowercase axis labels, no titles (captions live in the notebooks' cell metadata), a
legend only when several labelled curves share an axis.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.ticker import NullLocator

from lossless import _checks

__all__ = [
    "spectrum_histogram",
    "density_curve",
    "eigenvector_plot",
    "error_vs_size",
    "gram_demo_plot",
    "compression_overlay_plot",
    "spectrum_comparison_plot",
    "overlaid_spectra",
    "equivalence_plot",
    "accuracy_memory_plot",
    "accuracy_memory_grid",
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
    ax = _checks.axes(ax, "ax")
    vals = _checks.real_array(eigvals, "eigvals", ndim=1, shape_hint="(n,)")
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
    ax = _checks.axes(ax, "ax")
    x = _checks.real_array(x, "x", ndim=1, shape_hint="(m,)")
    density = _checks.real_array(density, "density", ndim=1, shape_hint="(m,)")
    if density.shape != x.shape:
        raise ValueError(f"x and density must have one length, got {x.size} and {density.size}")
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
    ax = _checks.axes(ax, "ax")
    vec = _checks.real_array(vec, "vec", ndim=1, shape_hint="(n,)")
    labels = _checks.real_array(labels, "labels", ndim=1, dtype=None, shape_hint="(n,)")
    if vec.shape != labels.shape:
        raise ValueError(f"vec and labels must have one length, got {vec.size} and {labels.size}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers (class indices), got dtype {labels.dtype}")
    n_classes = np.unique(labels).size
    if class_names is not None and (
            isinstance(class_names, (str, bytes)) or not isinstance(class_names, Sequence)
            or len(class_names) < n_classes):
        raise ValueError(f"class_names must be a sequence of at least {n_classes} names (one "
                         f"per class in labels), got {_checks.describe(class_names)}")
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
    ax = _checks.axes(ax, "ax")
    sizes = _checks.real_array(sizes, "sizes", ndim=1, shape_hint="(m,)")
    errors = _checks.real_array(errors, "errors", ndim=1, shape_hint="(m,)")
    if errors.shape != sizes.shape:
        raise ValueError(f"sizes and errors must have one length, got {sizes.size} and "
                         f"{errors.size}")
    for name, arr in (("sizes", sizes), ("errors", errors)):
        if np.any(arr <= 0):
            raise ValueError(f"{name} must be positive for a log-log plot, got minimum {arr.min():g}")
    if rate is not None:
        rate = _checks.real(rate, "rate")
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
    """Draw a :class:`lossless.explore.GramDemo` on three axes (the chapter-1 widget).

    Left: eigenvalue histogram of ``X @ X.T`` with the Marchenko-Pastur density and
    the predicted spikes (dotted lines); when ``n > p`` the atom at zero is cut off by
    the vertical limit. Middle: the top eigenvector. Right: ``||x_i||^2`` by class.

    Parameters
    ----------
    axes : sequence of three matplotlib.axes.Axes
    demo : lossless.explore.GramDemo

    Returns
    -------
    the same axes
    """
    ax0, ax1, ax2 = _checks.axes(axes, "axes", 3)
    _checks.has_attributes(demo, "demo", ("grid", "eigenvalues", "density", "predicted_spikes",
                                          "n", "p", "edge", "top_vector", "labels",
                                          "squared_norms"),
                           "a lossless.explore.GramDemo (from explore.gram_spectrum_demo)")
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


def compression_overlay_plot(axes, overlay, *, bins: int = 60, prediction=None):
    """Original against compressed CK (a :class:`lossless.spectra.SpectralComparison` of
    :func:`lossless.explore.compare_compressed_spectra`).

    Left: both spectra as densities on shared bins over the bulk, the leading
    eigenvalue of each marked by a triangle at the bottom (it may lie far to the
    right); with ``prediction`` (a :class:`lossless.spectra.OutlierPrediction`), the
    eigenvalues of each spectrum beyond its threshold instead, and the predicted bulk
    edge dotted. Right: the leading eigenvectors, the original coloured by class, the
    compressed one as black dots on top.

    Parameters
    ----------
    axes : sequence of two matplotlib.axes.Axes
    overlay : lossless.spectra.SpectralComparison
    bins : int
        Number of shared bins.
    prediction : lossless.spectra.OutlierPrediction, optional
        Predicted bulk edge and outlier threshold (e.g. of the original network's
        equivalent, :func:`lossless.spectra.predict_outliers`).

    Returns
    -------
    the same axes
    """
    ax0, ax1 = _checks.axes(axes, "axes", 2)
    _checks.has_attributes(overlay, "overlay", ("eigenvalues_a", "eigenvalues_b",
                                                "shift_corrected", "vectors_a", "vectors_b",
                                                "labels"),
                           "a lossless.spectra.SpectralComparison (original against compressed)")
    a = np.sort(_checks.real_array(overlay.eigenvalues_a, "eigenvalues_a", ndim=1))[::-1]
    b = np.sort(_checks.real_array(overlay.eigenvalues_b, "eigenvalues_b", ndim=1))[::-1]
    label = "compressed − shift" if overlay.shift_corrected else "compressed"
    _marked_spectra_panel(ax0, a, b, ("original", label), bins, prediction)
    ax0.set_xlabel("eigenvalue")
    ax0.set_ylabel("density")
    eigenvector_plot(ax1, np.asarray(overlay.vectors_a)[:, 0], overlay.labels, markersize=3.0)
    order = np.argsort(overlay.labels, kind="stable")
    ax1.plot(np.arange(order.size), np.asarray(overlay.vectors_b)[:, 0][order], ".",
             color="k", ms=1.5, label="compressed")
    ax1.set_ylabel("leading eigenvector entry")
    return axes


def spectrum_comparison_plot(axes, comparison, labels=None, *, bins: int = 40,
                             prediction=None):
    """Empirical against exact kernel (a :class:`lossless.spectra.SpectralComparison` of
    :func:`lossless.explore.compare_empirical_spectra`).

    Left: both spectra as densities on shared bins over the bulk (every eigenvalue but
    the largest of each), the largest eigenvalue of each marked by a triangle at the
    bottom; with ``prediction`` (a :class:`lossless.spectra.OutlierPrediction`), the
    eigenvalues of each spectrum beyond its threshold instead, and the predicted bulk
    edge dotted. Right (when ``labels`` are given): the leading eigenvectors, the exact
    one coloured by class, the empirical one (sign-aligned) as black dots on top.

    Parameters
    ----------
    axes : matplotlib.axes.Axes or sequence of two Axes
        One axis: spectra only.
    comparison : lossless.spectra.SpectralComparison
    labels : array_like of int, shape (n,), optional
        Class of each sample, for the eigenvector panel.
    bins : int
        Number of shared bins.
    prediction : lossless.spectra.OutlierPrediction, optional
        Predicted bulk edge and outlier threshold of the exact kernel.

    Returns
    -------
    the same axes
    """
    if isinstance(axes, (list, tuple, np.ndarray)):
        ax0, ax1 = _checks.axes(axes, "axes", 2)
    else:
        ax0 = _checks.axes(axes, "axes")
    _checks.has_attributes(comparison, "comparison", ("eigenvalues_a", "eigenvalues_b",
                                                      "vectors_a", "vectors_b"),
                           "a lossless.spectra.SpectralComparison")
    a = np.sort(_checks.real_array(comparison.eigenvalues_a, "eigenvalues_a", ndim=1))[::-1]
    b = np.sort(_checks.real_array(comparison.eigenvalues_b, "eigenvalues_b", ndim=1))[::-1]
    _marked_spectra_panel(ax0, a, b, ("exact", "empirical"), bins, prediction)
    if labels is not None and ax0 is not axes:
        ax1 = axes[1]
        u = np.asarray(comparison.vectors_a)[:, 0]
        v = np.asarray(comparison.vectors_b)[:, 0]
        v = v if u @ v >= 0 else -v
        labels = np.asarray(labels)
        eigenvector_plot(ax1, u, labels, markersize=3.0)
        order = np.argsort(labels, kind="stable")
        ax1.plot(np.arange(order.size), v[order], ".", color="k", ms=1.5, label="empirical")
        ax1.set_ylabel("leading eigenvector entry")
    return axes


def _marked_spectra_panel(ax, a, b, names, bins, prediction) -> None:
    """Two decreasing spectra on shared bins, the marked ones as triangles (see
    :func:`overlaid_spectra`); without a prediction the largest of each is marked."""
    ka, kb = _marked_counts(a, b, None, prediction)
    edges = np.histogram_bin_edges(np.concatenate([a[ka:], b[kb:]]), bins)
    spectrum_histogram(ax, a, bins=edges, color="C0", label=names[0])
    spectrum_histogram(ax, b, bins=edges, color="C1", label=names[1])
    if ka:
        ax.plot(a[:ka], np.zeros(ka), "v", color="C0", ms=7, clip_on=False)
    if kb:
        ax.plot(b[:kb], np.zeros(kb), "^", color="C1", ms=7, clip_on=False)
    marked = np.concatenate([a[:ka], b[:kb], [edges[0], edges[-1]]])
    if prediction is not None:
        ax.axvline(prediction.bulk.edge, color="0.3", ls=":", lw=1)
        marked = np.append(marked, prediction.bulk.edge)
    lo, hi = marked.min(), marked.max()
    ax.set_xlim(lo - 0.02 * (hi - lo), hi + 0.04 * (hi - lo))


def _marked_counts(a: np.ndarray, b: np.ndarray, n_spikes, prediction) -> tuple[int, int]:
    """How many leading eigenvalues of each (decreasing) spectrum are drawn as markers."""
    if prediction is not None:
        from lossless.spectra import OutlierPrediction

        if not isinstance(prediction, OutlierPrediction):
            raise TypeError("prediction must be a lossless.spectra.OutlierPrediction, got "
                            f"{type(prediction).__name__}")
        if n_spikes is not None:
            raise ValueError("pass n_spikes or prediction, not both")
        ka, kb = prediction.beyond(a), prediction.beyond(b)
    else:
        ka = kb = 1 if n_spikes is None else _checks.integer(n_spikes, "n_spikes", minimum=0)
    top = min(a.size, b.size) - 1
    if max(ka, kb) > top:
        raise ValueError(f"n_spikes must be an integer <= {top} (one eigenvalue at least "
                         f"stays in the histogram), got {max(ka, kb)}")
    return ka, kb


def overlaid_spectra(ax, eigvals, eigvals_other, *, bins: int = 50, n_spikes: int | None = None,
                     prediction=None,
                     labels: Sequence[str] = ("exact $K$", r"equivalent $\tilde K$"),
                     clip_atom: bool = True):
    """Two spectra as densities on shared bins, the outliers as triangles.

    With ``prediction`` (a :class:`lossless.spectra.OutlierPrediction`, e.g. from
    :func:`lossless.spectra.predict_outliers`) the eigenvalues of each spectrum above
    ``prediction.threshold`` are drawn as markers at the bottom (down: first spectrum,
    up: second) rather than in the histogram, and the predicted bulk edge as a dotted
    vertical line: only predicted outliers are singled out. Without it, the
    ``n_spikes`` largest eigenvalues of each (default 1, the largest, whether or not it
    is isolated). When one bin holds a large fraction of the eigenvalues (the atom of a
    kernel with rank-deficient Gram part, e.g. ``n - p`` eigenvalues at the identity
    shift when ``n > p``) and ``clip_atom`` is true, the vertical axis is cut at twice the
    90th percentile of the non-empty bars (when the tallest bar exceeds three times that)
    so that the bulk stays readable, and the cut is noted on the axis.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    eigvals, eigvals_other : array_like, shape (n,)
        Eigenvalues (any order).
    bins : int
        Number of shared bins.
    n_spikes : int, optional
        Leading eigenvalues drawn as markers when no prediction is given (default 1).
    prediction : lossless.spectra.OutlierPrediction, optional
        The predicted bulk edge and outlier threshold (not together with ``n_spikes``).
    labels : pair of str
        Legend entries.
    clip_atom : bool

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _checks.axes(ax, "ax")
    a = np.sort(_checks.real_array(eigvals, "eigvals", ndim=1))[::-1]
    b = np.sort(_checks.real_array(eigvals_other, "eigvals_other", ndim=1))[::-1]
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence) or len(labels) != 2:
        raise TypeError(f"labels must be a sequence of two legend entries, got "
                        f"{_checks.describe(labels)}")
    ka, kb = _marked_counts(a, b, n_spikes, prediction)
    bins = _checks.integer(bins, "bins", minimum=1)
    edges = np.histogram_bin_edges(np.concatenate([a[ka:], b[kb:]]), bins)
    spectrum_histogram(ax, a[ka:], bins=edges, color="C0", label=labels[0])
    spectrum_histogram(ax, b[kb:], bins=edges, color="C1", label=labels[1])
    if ka:
        ax.plot(a[:ka], np.zeros(ka), "v", color="C0", ms=7, clip_on=False)
    if kb:
        ax.plot(b[:kb], np.zeros(kb), "^", color="C1", ms=7, clip_on=False)
    lo, hi = edges[0], edges[-1]
    if ka or kb:
        marked = np.concatenate([a[:ka], b[:kb]])
        lo, hi = min(lo, marked.min()), max(hi, marked.max())
    if prediction is not None:
        ax.axvline(prediction.bulk.edge, color="0.3", ls=":", lw=1)
        lo, hi = min(lo, prediction.bulk.edge), max(hi, prediction.bulk.edge)
    if ka or kb or prediction is not None:
        ax.set_xlim(lo - 0.02 * (hi - lo), hi + 0.04 * (hi - lo))
    if clip_atom:
        heights = np.concatenate([np.histogram(a[ka:], edges, density=True)[0],
                                  np.histogram(b[kb:], edges, density=True)[0]])
        heights = heights[heights > 0]
        typical = float(np.percentile(heights, 90)) if heights.size else 0.0
        if typical > 0 and heights.max() > 3 * typical:
            ax.set_ylim(0, 2 * typical)
            ax.text(0.98, 0.72, "tallest bars cut", transform=ax.transAxes, fontsize=8,
                    ha="right", va="top", color="0.35")
    return ax


def equivalence_plot(axes, comparison, *, bins: int = 50, n_spikes: int | None = None,
                     prediction=None):
    """Exact K against K̃ (a :class:`lossless.spectra.SpectralComparison` of
    :func:`lossless.explore.compare_equivalent_spectra`).

    Left: both spectra by :func:`overlaid_spectra` (shared bins over the bulk; with
    ``prediction``, the eigenvalues of each beyond the predicted threshold as triangles,
    down: exact, up: equivalent, and the predicted bulk edge dotted; without it the
    ``n_spikes`` largest, default 1). Right: the leading eigenvector of K coloured by
    class, that of K̃ (sign-aligned) as black dots.

    Parameters
    ----------
    axes : sequence of two matplotlib.axes.Axes
    comparison : lossless.spectra.SpectralComparison
    bins : int
        Number of shared bins.
    n_spikes : int, optional
        Leading eigenvalues drawn as markers when no prediction is given (default 1).
    prediction : lossless.spectra.OutlierPrediction, optional
        From :func:`lossless.spectra.predict_outliers` for the same sample and network.

    Returns
    -------
    the same axes
    """
    ax0, ax1 = _checks.axes(axes, "axes", 2)
    _checks.has_attributes(comparison, "comparison", ("eigenvalues_a", "eigenvalues_b",
                                                      "vectors_a", "vectors_b", "labels"),
                           "a lossless.spectra.SpectralComparison")
    overlaid_spectra(ax0, comparison.eigenvalues_a, comparison.eigenvalues_b, bins=bins,
                     n_spikes=n_spikes, prediction=prediction)
    u = np.asarray(comparison.vectors_a, dtype=float)[:, 0]
    v = np.asarray(comparison.vectors_b, dtype=float)[:, 0]
    v = v if u @ v >= 0 else -v
    labels = np.asarray(comparison.labels)
    eigenvector_plot(ax1, u, labels, markersize=3.0)
    order = np.argsort(labels, kind="stable")
    ax1.plot(np.arange(order.size), v[order], ".", color="k", ms=1.2)
    ax1.set_ylabel("leading eigenvector entry")
    return axes


def _check_curves(curves, name: str, keys: tuple[str, ...]) -> None:
    """A dict label -> dict with ``keys`` (as built by accuracy_memory_curves)."""
    if not isinstance(curves, dict):
        raise TypeError(f"{name} must be a dict of curves (label -> dict with keys "
                        f"{', '.join(keys)}), got {_checks.describe(curves)}")
    for label, c in curves.items():
        if not isinstance(c, dict) or any(k not in c for k in keys):
            raise ValueError(f"{name}[{label!r}] must be a dict with keys {', '.join(keys)} "
                             f"(from accuracy_memory_curves), got {_checks.describe(c)}")


def accuracy_memory_plot(ax, curves, *, spread: str = "std", reference: str | None = "dense",
                         markers: str = "osD^v<>ph*", xlabel: str | None = None):
    """Test accuracy against memory (bits, log scale), one line per method.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    curves : dict
        ``label -> {"bits", "mean", "std", "min", "max"}`` (ndarrays), as returned by
        :func:`lossless.experiments.accuracy_memory_curves`.
    spread : {"std", "range"}
        Error bars: one standard deviation, or the min-max range over the seeds.
    reference : str or None
        Label of a curve drawn as a single point with a dotted horizontal line at its
        mean (the dense original), if present.
    markers : str
        Marker cycle, one per curve.
    xlabel : str, optional
        Default ``"memory of the hidden weights (bits)"``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _checks.axes(ax, "ax")
    spread = _checks.choice(spread, "spread", ("std", "range"))
    if reference is not None and not isinstance(reference, str):
        raise TypeError(f"reference must be a curve label (str) or None, got "
                        f"{_checks.describe(reference)}")
    _check_curves(curves, "curves", ("bits", "mean") + (("std",) if spread == "std"
                                                          else ("min", "max")))
    for i, (label, c) in enumerate(curves.items()):
        bits = np.asarray(c["bits"], dtype=float)
        mean = np.asarray(c["mean"], dtype=float)
        if spread == "std":
            err = np.nan_to_num(np.asarray(c["std"], dtype=float))
        else:
            err = np.vstack([mean - np.asarray(c["min"]), np.asarray(c["max"]) - mean])
        color = f"C{i % 10}"
        if label == reference:
            ax.axhline(float(mean[0]), color=color, ls=":", lw=1)
        ax.errorbar(bits, mean, yerr=err, marker=markers[i % len(markers)], ms=4, lw=1,
                    capsize=2, color=color, label=label)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel or "memory of the hidden weights (bits)")
    ax.set_ylabel("test accuracy")
    _legend_if_several(ax)
    return ax


def accuracy_memory_grid(axes, curves, *, row_labels: Sequence[str] | None = None,
                         column_labels: Sequence[str] | None = None,
                         clip: Sequence[str] = ("narrow dense",), margin: float = 0.02):
    """A grid of :func:`accuracy_memory_plot` panels (rows: data sets, columns: accountings).

    Each row shares its y-range, fitted to the curves whose label does not start with
    one of ``clip`` (so that a much worse baseline does not squash the others); points of
    the clipped curves below the frame are announced in the panel. The panels carry no
    legend: add one for the figure, e.g. from ``axes[0, 0].get_legend_handles_labels()``.

    Parameters
    ----------
    axes : 2-D array of matplotlib.axes.Axes, shape (rows, columns)
    curves : nested list, ``curves[i][j]`` a dict as taken by :func:`accuracy_memory_plot`
    row_labels : sequence of str, optional
        Written in the lower left corner of each panel of a row.
    column_labels : sequence of str, optional
        x-axis labels of the columns.
    clip : sequence of str
        Label prefixes left out of the y-range.
    margin : float
        Added below and above the fitted range.

    Returns
    -------
    the same axes
    """
    margin = _checks.real(margin, "margin", low=0.0)
    if isinstance(curves, (str, bytes, dict)) or not isinstance(curves, Sequence) or not all(
            isinstance(row, Sequence) and not isinstance(row, (str, bytes)) for row in curves):
        raise TypeError(f"curves must be a nested list, curves[i][j] a dict of curves, got "
                        f"{_checks.describe(curves)}")
    n_cols = max((len(row) for row in curves), default=0)
    grid = np.asarray(axes, dtype=object)
    if grid.ndim == 0 or grid.size != len(curves) * n_cols or len(curves) == 0:
        raise ValueError(f"axes must be a grid of len(curves) x len(curves[0]) = "
                         f"{len(curves)} x {n_cols} matplotlib Axes, got "
                         f"{_checks.describe(axes)}")
    _checks.axes(list(grid.ravel()), "axes", grid.size)
    for i, row in enumerate(curves):
        for j, cell in enumerate(row):
            _check_curves(cell, f"curves[{i}][{j}]", ("bits", "mean", "std"))
    axes = grid.reshape(len(curves), -1)
    for i, row in enumerate(curves):
        lo, hi = np.inf, -np.inf
        for j, cell in enumerate(row):
            ax = axes[i, j]
            accuracy_memory_plot(ax, cell)
            if column_labels is not None:
                ax.set_xlabel(column_labels[j])
            if row_labels is not None:
                ax.text(0.02, 0.04, row_labels[i], transform=ax.transAxes, fontsize=9)
            if ax.get_legend() is not None:
                ax.get_legend().remove()
            for label, c in cell.items():
                if not any(label.startswith(prefix) for prefix in clip):
                    err = np.nan_to_num(np.asarray(c["std"], dtype=float))
                    lo = min(lo, float(np.min(np.asarray(c["mean"]) - err)))
                    hi = max(hi, float(np.max(np.asarray(c["mean"]) + err)))
        if np.isfinite(lo):
            for j, cell in enumerate(row):
                ax = axes[i, j]
                ax.set_ylim(lo - margin, hi + margin)
                below = [label for label, c in cell.items()
                         if np.min(np.asarray(c["mean"])) < lo - margin]
                if below:
                    ax.text(0.98, 0.04, "below the frame: " + ", ".join(below),
                            transform=ax.transAxes, fontsize=7, ha="right", color="0.35")
    return axes
