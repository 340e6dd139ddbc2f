"""Chapter 4's explorer and widget: the exact kernel against its equivalent K̃ (ours, the authors')."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from lossless import _checks
from lossless.explore._vega import (Explorer, _activation, _cache_key, _pair_state, _radio, _range,
                                    _select, _spectrum_chart, _subsample, cached_states,
                                    significant)
from lossless.spectra import SpectralComparison, compare_kernels, opnorm

__all__ = ["compare_equivalent_spectra", "reference_comparison", "equivalence_states",
           "equivalence_explorer", "equivalence_widget", "EQUIVALENCE_ACTIVATIONS",
           "EQUIVALENCE_DEPTHS", "EQUIVALENCE_SIZES"]


# ---------------------------------------------------------------------------------
# the computation: exact K against K̃ on one sample


def compare_equivalent_spectra(sample: Any, layers: Sequence[Any], *, kernel: str = "ck",
                               surrogates: Sequence[Any | Callable | None] | None = None,
                               n_vectors: int = 2, exact: np.ndarray | None = None,
                               first_layer_m4: float = 3.0) -> SpectralComparison:
    """Exact expected kernel against its asymptotic equivalent, spectrum and vectors.

    Parameters
    ----------
    sample : lossless.data.Sample
    layers : list of Activation
    kernel : {"ck", "ntk"}
    surrogates : list, optional
        NTK only, as in :func:`lossless.theory.equivalent_ntk` (a jump without surrogate
        raises).
    n_vectors : int
        Number k of leading eigenvectors kept (≥ 1).
    exact : ndarray, shape (n, n), optional
        The exact kernel, if already computed (``lossless.kernels.exact_ck``/``exact_ntk``
        at the same τ_0 and ``first_layer_m4``); computed here otherwise.
    first_layer_m4 : float, default 3.0
        E w⁴ of the first layer's weights, passed to both the exact kernel and K̃
        (eq-first-layer-kappa4, eq-first-layer-equivalent).

    Returns
    -------
    lossless.spectra.SpectralComparison
        ``a`` the exact kernel K, ``b`` the equivalent K̃ (``names`` ``("exact",
        "equivalent")``).
    """
    from lossless import kernels, theory
    from lossless.activations import check_positive

    _checks.choice(kernel, "kernel", ("ck", "ntk"))
    n_vectors = _checks.integer(n_vectors, "n_vectors", minimum=1)
    missing = [a for a in ("X", "V", "t", "T", "tau0") if not hasattr(sample, a)]
    if missing:
        raise TypeError("sample must be a lossless.data.Sample (with X, V, t, T, tau0), got "
                        f"{type(sample).__name__} lacking {', '.join(missing)}")
    X = _checks.real_array(sample.X, "sample.X", ndim=2, shape_hint="(n, p)")
    tau0 = check_positive(sample.tau0, "sample.tau0")
    m4 = {"first_layer_m4": first_layer_m4}
    if kernel == "ck":
        K_eq = theory.equivalent_ck(sample, layers, tau0=tau0, **m4)
        K = kernels.exact_ck(X, layers, tau0=tau0, **m4) if exact is None else exact
    else:
        K_eq = theory.equivalent_ntk(sample, layers, surrogates=surrogates, tau0=tau0, **m4)
        K = (kernels.exact_ntk(X, layers, surrogates=surrogates, tau0=tau0, **m4)
             if exact is None else exact)
    K = _checks.square_symmetric(K, "exact")
    if K.shape != K_eq.shape:
        raise ValueError(f"exact must have shape {K_eq.shape}, got {K.shape}")
    labels = getattr(sample, "labels", None)
    return compare_kernels(K, K_eq, names=("exact", "equivalent"), kernel=kernel, labels=labels,
                           n_vectors=n_vectors)


def reference_comparison(activation: Any, depth: int, p: int, *, kernel: str = "ck",
                         seed: int = 0, n_vectors: int = 2) -> SpectralComparison:
    """The chapter's widget computation: ``depth`` layers of ``activation`` on the
    book's reference mixture (two classes, n = 2p), exact kernel against K̃
    (:func:`compare_equivalent_spectra`).

    Parameters
    ----------
    activation : Activation
        Used in every layer.
    depth : int
        L ≥ 1.
    p : int
        Dimension (≥ 8); n = 2p samples.
    kernel : {"ck", "ntk"}
    seed : int
        Seed of the ``numpy.random.Generator`` that draws the sample.

    Returns
    -------
    lossless.spectra.SpectralComparison
    """
    from lossless import data
    from lossless.activations import Activation

    if not isinstance(activation, Activation):
        raise TypeError(f"activation must be an Activation, got {activation!r}")
    depth = _checks.integer(depth, "depth", minimum=1)
    p = _checks.integer(p, "p", minimum=8)
    _checks.choice(kernel, "kernel", ("ck", "ntk"))
    rng = np.random.default_rng(_checks.seed(seed))
    sample = data.preset("reference", int(p)).sample(2 * int(p), rng)
    return compare_equivalent_spectra(sample, [activation] * int(depth), kernel=kernel,
                                      n_vectors=n_vectors)


# ---------------------------------------------------------------------------------
# the explorer: a grid of states, drawn by Vega-Lite


EQUIVALENCE_ACTIVATIONS = ("relu", "leaky_relu", "abs", "tanh", "erf", "quadratic", "ternary")
EQUIVALENCE_DEPTHS = (1, 2, 3)
EQUIVALENCE_SIZES = (64, 128, 256)


def equivalence_states(*, activations: Sequence[str] = EQUIVALENCE_ACTIVATIONS,
                       depths: Sequence[int] = EQUIVALENCE_DEPTHS,
                       sizes: Sequence[int] = EQUIVALENCE_SIZES, seed: int = 0) -> list[dict]:
    """Grid of chapter-4 states: exact CK against K̃ and the authors' K̃.

    For every activation × depth × p, on the reference mixture (``n = 2p``, drawn
    with ``numpy.random.default_rng(seed)``), the exact CK
    (:func:`lossless.kernels.exact_ck`), the equivalent
    (:func:`lossless.theory.equivalent_ck`) and the authors' version
    (:func:`lossless.theory.authors_equivalent_ck`).

    Returns
    -------
    list of dict
        Keys ``act, depth, p, which`` (``"ours"`` or ``"authors"``), histograms,
        eigenvectors, ``error``, ``alignment``, ``readout``.
    """
    from lossless import data, kernels, theory

    states = []
    for p in sizes:
        sample = data.preset("reference", int(p)).sample(2 * int(p), np.random.default_rng(seed))
        idx = _subsample(sample.n, 128)
        for name in activations:
            act = _activation(name)
            for depth in depths:
                layers = [act] * depth
                K = kernels.exact_ck(sample.X, layers, tau0=sample.tau0)
                vals, vecs = np.linalg.eigh(K)
                norm = float(np.max(np.abs(vals)))
                tilde = {"ours": theory.equivalent_ck(sample, layers),
                         "authors": theory.authors_equivalent_ck(sample, layers)}
                errors = {k: opnorm(v - K) / norm for k, v in tilde.items()}
                for which, Kt in tilde.items():
                    tvals, tvecs = np.linalg.eigh(Kt)
                    align = abs(float(tvecs[:, -1] @ vecs[:, -1]))
                    state = _pair_state(vals, vecs[:, -1], tvals, tvecs[:, -1], idx)
                    state.update({
                        "act": name, "depth": int(depth), "p": int(p), "which": which,
                        "error": significant(errors[which]), "alignment": significant(align),
                        "readout": (f"{name}, L = {depth}, p = {p}, n = {2 * p}: "
                                    f"||K - K~|| / ||K|| = {significant(errors[which], 3)} "
                                    f"({'our' if which == 'ours' else 'the authors'} K~; "
                                    f"{'authors' if which == 'ours' else 'ours'}: "
                                    f"{significant(errors['authors' if which == 'ours' else 'ours'], 3)})\n"
                                    f"leading eigenvector alignment {significant(align, 4)}"),
                    })
                    states.append(state)
    return states


def equivalence_explorer(*, seed: int = 0, name: str = "equivalence", cache: bool = True
                         ) -> Explorer:
    """Chapter 4's explorer: activation × depth × p, K against K̃ (ours or the authors').

    The grid (:func:`equivalence_states`) is read or stored by :func:`cached_states`.

    Returns
    -------
    Explorer
    """
    key = _cache_key(seed, EQUIVALENCE_ACTIVATIONS, EQUIVALENCE_DEPTHS, EQUIVALENCE_SIZES)
    states = cached_states("equivalence", key, lambda: equivalence_states(seed=seed), cache=cache)
    params = [
        _select("act", EQUIVALENCE_ACTIVATIONS, "relu", "activation "),
        _range("depth", min(EQUIVALENCE_DEPTHS), max(EQUIVALENCE_DEPTHS), 1, 3, "depth L "),
        _radio("p", EQUIVALENCE_SIZES, 256, "p "),
        _radio("which", ["ours", "authors"], "ours", "equivalent "),
    ]
    where = "datum.act == act && datum.depth == depth && datum.p == p && datum.which == which"
    spec = _spectrum_chart(states, params, where, ("exact K", "equivalent K~"), name=name,
                           fields=("act", "depth", "p", "which"))
    controls = [
        {"name": "act", "values": ["tanh", "abs"], "context": {}},
        {"name": "depth", "values": [1, 2], "context": {}},
        {"name": "p", "values": [64, 128], "context": {}},
        {"name": "which", "values": ["authors", "ours"], "context": {}},
    ]
    return Explorer(name, spec, states, controls)


def equivalence_widget(activations: dict, *, seed: int = 0) -> Any:
    """Chapter 4's live widget (JupyterLab): ``activations`` maps labels to Activation.

    Returns
    -------
    ipywidgets.interactive
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from lossless import plotting

    def show(activation, depth=3, p=256, kernel="ck"):
        act = activations[activation]
        if kernel == "ntk" and act.has_jumps:
            print(f"{activation} has jumps: its NTK diagonal is infinite (see chapter 3); "
                  "showing the CK")
            kernel = "ck"
        comp = reference_comparison(act, depth, p, kernel=kernel, seed=seed)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
        plotting.equivalence_plot(axes, comp)
        plt.tight_layout()
        plt.show()
        print(f"{kernel.upper()}: error {comp.error:.3f}, alignment {comp.alignment[0]:.3f}")

    return widgets.interactive(
        show,
        activation=widgets.Dropdown(options=list(activations), value=next(iter(activations))),
        depth=widgets.IntSlider(value=3, min=1, max=4),
        p=widgets.SelectionSlider(options=[64, 128, 256, 512], value=256),
        kernel=widgets.ToggleButtons(options=["ck", "ntk"], value="ck"),
    )
