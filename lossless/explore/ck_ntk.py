"""Chapter 3's explorer and widget: one random network's empirical kernel against the exact one."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from lossless import _checks
from lossless.explore._vega import (Explorer, _activation, _cache_key, _pair_state, _radio, _range,
                                    _select, _spectrum_chart, _subsample, cached_states,
                                    significant)
from lossless.spectra import SpectralComparison, compare_kernels, opnorm

__all__ = ["compare_empirical_spectra", "kernel_states", "kernel_explorer", "kernel_widget",
           "KERNEL_ACTIVATIONS", "KERNEL_DEPTHS", "KERNEL_WIDTHS"]


# ---------------------------------------------------------------------------------
# the computation of the live widget


def compare_empirical_spectra(
    X: np.ndarray,
    width: int,
    layers: Sequence[Any],
    generator: Any,
    *,
    kernel: str = "ntk",
    weights: str | Callable = "gaussian",
    sparsity: float = 0.0,
    surrogates: Sequence[Any] | None = None,
    n_vectors: int = 2,
    labels: Any = None,
) -> SpectralComparison:
    """Spectra of the empirical and exact CK or NTK of one random network.

    Draws one :class:`lossless.networks.MLP` (all hidden widths equal to ``width``),
    computes its empirical kernel (:func:`lossless.kernels.empirical_ck` with one draw,
    or :func:`lossless.kernels.empirical_ntk`) and the exact one
    (:func:`lossless.kernels.exact_ck`, :func:`lossless.kernels.exact_ntk`), and compares
    eigenvalues and leading eigenvectors (:func:`lossless.spectra.compare_kernels`).

    Parameters
    ----------
    X : ndarray, shape (n, p)
    width : int
        Common width ``d_1 = ... = d_L``.
    layers : sequence of Activation, length L
    generator : torch.Generator
    kernel : {"ck", "ntk"}, default "ntk"
    weights, sparsity : see :class:`lossless.networks.MLP`
    surrogates : optional
        Straight-through derivatives, passed to both NTKs (``kernel="ntk"``).
    n_vectors : int, default 2
        Number of leading eigenvectors compared.
    labels : array_like, shape (n,), optional
        Class of each sample (recorded for the eigenvector panel).

    Returns
    -------
    lossless.spectra.SpectralComparison
        ``a`` the exact kernel, ``b`` the empirical one; ``width`` and ``sparsity``
        recorded.
    """
    import torch

    from lossless.activations import check_layers
    from lossless.kernels import empirical_ck, empirical_ntk, exact_ck, exact_ntk
    from lossless.networks import MLP

    X = _checks.real_array(X, "X", ndim=2, shape_hint="of shape (n, p) (samples in rows)")
    layers = check_layers(layers)
    width = _checks.integer(width, "width", minimum=1)
    _checks.torch_generator(generator, "generator")
    kernel = _checks.choice(kernel, "kernel", ("ck", "ntk"))
    sparsity = _checks.fraction(sparsity, "sparsity")
    n_vectors = _checks.integer(n_vectors, "n_vectors", minimum=1, maximum=X.shape[0])
    widths = [width] * len(layers)
    if kernel == "ck":
        K_emp = empirical_ck(X, widths, layers, 1, generator, weights=weights, sparsity=sparsity)
        K = exact_ck(X, layers)
    else:
        tau0 = math.sqrt(float(np.mean(np.einsum("ij,ij->i", X, X))))
        net = MLP(X.shape[1], widths, layers, tau0, weights=weights, sparsity=sparsity,
                  generator=generator, dtype=torch.float64)
        K_emp = empirical_ntk(net, X, surrogates=surrogates)
        K = exact_ntk(X, layers, surrogates=surrogates)
    return compare_kernels(K, K_emp, names=("exact", "empirical"), kernel=kernel, labels=labels,
                           n_vectors=n_vectors, width=width, sparsity=sparsity)


# ---------------------------------------------------------------------------------
# the explorer: a grid of states, drawn by Vega-Lite


KERNEL_ACTIVATIONS = ("relu", "tanh", "erf", "abs", "leaky_relu")
KERNEL_DEPTHS = (1, 2, 3, 4)
KERNEL_WIDTHS = (256, 1024, 4096)


def kernel_states(X: np.ndarray, labels: np.ndarray, tau0: float, *, kernel: str = "ck",
                  activations: Sequence[str] = KERNEL_ACTIVATIONS,
                  depths: Sequence[int] = KERNEL_DEPTHS, widths: Sequence[int] = KERNEL_WIDTHS,
                  seed: int = 0) -> list[dict]:
    """Grid of chapter-3 states: one random network per activation × depth × width
    against the exact kernel (as :func:`compare_empirical_spectra`).

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Samples ordered by class.
    labels : ndarray, shape (n,)
    tau0 : float
        Input scale (centring of the first layer).
    kernel : {"ck", "ntk"}
    activations : sequence of str
        Names for :func:`lossless.activations.get` (``leaky_relu`` with slope 0.1).
    depths, widths : sequence of int
    seed : int
        Each network is drawn from ``torch.Generator().manual_seed(seed)``.

    Returns
    -------
    list of dict
        Keys ``act, depth, width``, the histograms, eigenvectors, ``error``,
        ``alignment`` and ``readout``.
    """
    import torch

    from lossless import kernels

    X = np.asarray(X, dtype=float)
    idx = _subsample(X.shape[0], 128)
    states = []
    for name in activations:
        act = _activation(name)
        for depth in depths:
            exact = (kernels.exact_ck(X, [act] * depth, tau0=tau0) if kernel == "ck"
                     else kernels.exact_ntk(X, [act] * depth, tau0=tau0))
            vals, vecs = np.linalg.eigh(exact)
            norm = float(np.max(np.abs(vals)))
            for width in widths:
                net_layers = [act] * depth
                gen = torch.Generator().manual_seed(seed)
                if kernel == "ck":
                    emp = kernels.empirical_ck(X, [width] * depth, net_layers, 1, gen, tau0=tau0,
                                               dtype=torch.float32)
                else:
                    from lossless.networks import MLP

                    net = MLP(X.shape[1], [width] * depth, net_layers, tau0, generator=gen,
                              dtype=torch.float32)
                    emp = kernels.empirical_ntk(net, X)
                evals, evecs = np.linalg.eigh(emp)
                err = opnorm(emp - exact) / norm
                align = abs(float(evecs[:, -1] @ vecs[:, -1]))
                state = _pair_state(vals, vecs[:, -1], evals, evecs[:, -1], idx)
                state.update({
                    "act": name, "depth": int(depth), "width": int(width),
                    "error": significant(err), "alignment": significant(align),
                    "readout": (f"{name}, L = {depth}, width {width}: relative operator-norm error "
                                f"||K_emp - K|| / ||K|| = {significant(err, 3)}\n"
                                f"leading eigenvector alignment {significant(align, 3)}; largest "
                                f"eigenvalue exact {significant(vals[-1])}, empirical "
                                f"{significant(evals[-1])}"),
                })
                states.append(state)
    return states


def kernel_explorer(X: np.ndarray, labels: np.ndarray, tau0: float, *, kernel: str = "ck",
                    seed: int = 0, name: str = "kernels", cache: bool = True) -> Explorer:
    """Chapter 3's explorer: activation × depth × width, empirical against exact kernel.

    Parameters
    ----------
    X, labels, tau0, kernel, seed : see :func:`kernel_states`
    name : str
    cache : bool
        Read or store the grid with :func:`cached_states` (about a minute to compute).

    Returns
    -------
    Explorer
    """
    key = _cache_key(np.asarray(X), float(tau0), kernel, seed, KERNEL_ACTIVATIONS, KERNEL_DEPTHS,
                     KERNEL_WIDTHS)
    states = cached_states("kernels", key, lambda: kernel_states(X, labels, tau0, kernel=kernel,
                                                                 seed=seed), cache=cache)
    params = [
        _select("act", KERNEL_ACTIVATIONS, "relu", "activation "),
        _range("depth", min(KERNEL_DEPTHS), max(KERNEL_DEPTHS), 1, 3, "depth L "),
        _radio("d", KERNEL_WIDTHS, 1024, "width d "),
    ]
    where = "datum.act == act && datum.depth == depth && datum.width == d"
    spec = _spectrum_chart(states, params, where, (f"exact {kernel.upper()}", f"empirical {kernel.upper()}"),
                           name=name, fields=("act", "depth", "width"))
    controls = [
        {"name": "act", "values": ["tanh", "abs"], "context": {}},
        {"name": "depth", "values": [1, 4], "context": {}},
        {"name": "d", "values": [256, 4096], "context": {}},
    ]
    return Explorer(name, spec, states, controls)


def kernel_widget(X: np.ndarray, labels: np.ndarray, *, seed: int = 0, depth: int = 3,
                  width: int = 1024) -> Any:
    """Chapter 3's live widget (JupyterLab): any activation, depth, width and kernel.

    Returns
    -------
    ipywidgets.interactive
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    import torch

    from lossless import plotting

    names = ("relu", "tanh", "erf", "abs", "sin", "leaky_relu")

    def show(activation="relu", depth=depth, width=width, kernel="ntk"):
        comparison = compare_empirical_spectra(X, width, [_activation(activation)] * depth,
                                               torch.Generator().manual_seed(seed), kernel=kernel,
                                               labels=labels)
        fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.6), layout="constrained")
        plotting.spectrum_comparison_plot(axes, comparison, labels)
        plt.show()
        print(f"relative operator-norm error {comparison.error:.3f}, "
              f"leading eigenvector alignment {comparison.alignment[0]:.3f}")

    return widgets.interactive(
        show,
        activation=widgets.Dropdown(options=list(names), value="relu"),
        depth=widgets.IntSlider(value=depth, min=1, max=5),
        width=widgets.SelectionSlider(options=[64, 128, 256, 512, 1024, 2048, 4096], value=width),
        kernel=widgets.ToggleButtons(options=["ck", "ntk"], value="ntk"),
    )
