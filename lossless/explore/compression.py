"""The compression chapter's explorer and widget: the original network's kernel against a compressed network's."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from lossless import _checks
from lossless.activations import layer_moments, layer_scales
from lossless.networks import propagate
from lossless.explore._vega import (Explorer, _cache_key, _close, _pair_state, _radio, _range,
                                    _spectrum_chart, _subsample, cached_states, significant)
from lossless.spectra import SpectralComparison, compare_kernels, opnorm

__all__ = ["layer_mismatch", "compare_compressed_spectra", "coupled_ternary",
           "compression_states", "compression_explorer", "compression_widget",
           "COMPRESSION_OFFSETS", "COMPRESSION_SCALES", "COMPRESSION_SPARSITIES",
           "COMPRESSION_WIDTHS"]


# ---------------------------------------------------------------------------------
# the computation of the live widget: original against compressed spectra


def _label(act: Any) -> str:
    return str(getattr(act, "name", type(act).__name__))


def _relative(achieved: float, target: float, scale: float) -> float:
    den = abs(target) if abs(target) > 1e-12 * scale else scale
    return abs(achieved - target) / den


def layer_mismatch(original_layers: Sequence[Any], compressed_layers: Sequence[Any],
                   tau0: float) -> list[dict]:
    """Relative mismatch of the invariants of two networks, layer by layer.

    For each layer ℓ: ``|x_c − x| / |x|`` (or relative to ``g1² + τ_c² g2²`` when
    ``x`` vanishes) for ``x = g1², g2² τ_c², h`` (original at τ_{ℓ−1}, compressed at
    τ^c_{ℓ−1}; ``h`` is None at the last layer, where it does not enter), and the
    two output scales.

    Parameters
    ----------
    original_layers, compressed_layers : list of Activation, same length L
    tau0 : float

    Returns
    -------
    list of dict
        Keys ``layer, g1^2, g2^2, h, tau, tau_c``.
    """
    from lossless.activations import check_layers

    original_layers = check_layers(original_layers, "original_layers")
    compressed_layers = check_layers(compressed_layers, "compressed_layers")
    if len(original_layers) != len(compressed_layers):
        raise ValueError(f"the two networks must have the same depth, got "
                         f"{len(original_layers)} and {len(compressed_layers)}")
    tau0 = _checks.positive(tau0, "tau0")
    moments_o = layer_moments(original_layers, tau0)
    moments_c = layer_moments(compressed_layers, tau0)
    tau_c = tau0
    out = []
    L = len(original_layers)
    for ell, (a, c, mo, mc) in enumerate(zip(original_layers, compressed_layers, moments_o,
                                             moments_c), start=1):
        for which, act, mom in (("original_layers", a, mo), ("compressed_layers", c, mc)):
            bad = [k for k in ("g1", "g2", "h", "v") if not math.isfinite(getattr(mom, k))]
            if bad:
                raise ValueError(f"{which}[{ell - 1}] ({_label(act)}) returned non-finite "
                                 f"moments ({', '.join(bad)}) at its input scale")
        scale = mo.g1**2 + tau_c**2 * mo.g2**2
        row = {
            "layer": ell,
            "g1^2": _relative(mc.g1**2, mo.g1**2, scale),
            "g2^2": _relative(mc.g2**2 * tau_c**2, mo.g2**2 * tau_c**2, scale),
            "h": None if ell == L else _relative(mc.h, mo.h, scale),
        }
        tau, tau_c = math.sqrt(mo.v), math.sqrt(mc.v)
        row["tau"], row["tau_c"] = tau, tau_c
        out.append(row)
    return out


def _check_kernel(K: Any, name: str, n: int) -> np.ndarray:
    """A finite symmetric (n, n) kernel matrix, returned exactly symmetric."""
    arr = _checks.real_array(K, name, ndim=2, shape_hint=f"({n}, {n})")
    if arr.shape != (n, n):
        raise ValueError(f"{name} must have shape ({n}, {n}), got {arr.shape}")
    return _checks.square_symmetric(arr, name)


def compare_compressed_spectra(sample: Any, original_layers: Sequence[Any],
                               compressed_layers: Sequence[Any], *, width: int | None = None,
                               sparsity: float = 0.0, generator: Any = None,
                               shift_corrected: bool = False,
                               K_original: np.ndarray | None = None,
                               eigh_original: tuple[np.ndarray, np.ndarray] | None = None,
                               K_compressed: np.ndarray | None = None,
                               dtype: Any = None, n_vectors: int = 2) -> SpectralComparison:
    """Spectra of the original network's exact CK and of a compressed network's CK.

    The compressed kernel is the exact CK of ``compressed_layers`` (``width=None``) or
    the empirical CK of one compressed network of that width with sparse ternary
    weights (``sparsity``, drawn from ``generator``). The original is always the
    exact CK (pass ``K_original`` to reuse it between calls). The chapter's widget
    calls this on every redraw.

    Parameters
    ----------
    sample : lossless.data.Sample
        Data ``X`` (n, p), ``labels``, ``tau0``.
    original_layers, compressed_layers : list of Activation, length L
    width : int, optional
        Width of every hidden layer of the compressed network (finite-width kernel).
    sparsity : float
        ε of the ternary weights (only used with ``width``).
    generator : torch.Generator, optional
        Required with ``width``.
    shift_corrected : bool
        Subtract ``shift · I`` from the compressed kernel before comparing.
    K_original : ndarray, shape (n, n), optional
        ``kernels.exact_ck(sample.X, original_layers, tau0=sample.tau0)``.
    eigh_original : (ndarray, ndarray), optional
        ``numpy.linalg.eigh(K_original)`` (ascending), to reuse between calls.
    K_compressed : ndarray, shape (n, n), optional
        The compressed kernel, if already computed (then ``width``, ``sparsity`` and
        ``generator`` are only recorded).
    dtype : torch.dtype, default float32
        Precision of the finite-width network (its fluctuations, of order
        ``sqrt(n/width)``, dwarf float32 rounding; float32 halves the redraw time).
    n_vectors : int, default 2
        Number of leading eigenvectors compared.

    Returns
    -------
    lossless.spectra.SpectralComparison
        ``a`` the original network's exact CK, ``b`` the compressed one (``names``
        ``("original", "compressed")``), with the ``shift``, both errors, the per-layer
        ``mismatch`` (:func:`layer_mismatch`), ``width`` and ``sparsity``.
    """
    import torch

    from lossless import kernels
    from lossless.activations import check_layers

    if not (hasattr(sample, "X") and hasattr(sample, "tau0")):
        raise TypeError(f"sample must be a lossless.data.Sample (with X and tau0), got "
                        f"{_checks.describe(sample)}")
    X = _checks.real_array(sample.X, "sample.X", ndim=2, shape_hint="(n, p)")
    tau0 = _checks.positive(sample.tau0, "sample.tau0")
    original_layers = check_layers(original_layers, "original_layers")
    compressed_layers = check_layers(compressed_layers, "compressed_layers")
    eps = _checks.fraction(sparsity, "sparsity")
    shift_corrected = _checks.flag(shift_corrected, "shift_corrected")
    dtype = _checks.float_dtype(torch.float32 if dtype is None else dtype)
    if width is not None:
        width = _checks.integer(width, "width", minimum=1)
        if K_compressed is None:
            _checks.torch_generator(generator, "generator")
    n = X.shape[0]
    if K_original is None:
        K_original = kernels.exact_ck(X, original_layers, tau0=tau0)
    K = _check_kernel(K_original, "K_original", n)
    if eigh_original is not None:
        if not isinstance(eigh_original, (tuple, list)) or len(eigh_original) != 2:
            raise TypeError("eigh_original must be the pair (eigenvalues, eigenvectors) of "
                            f"numpy.linalg.eigh(K_original), got {_checks.describe(eigh_original)}")
        eigh_original = (_checks.real_array(eigh_original[0], "eigh_original[0]", shape=(n,)),
                         _checks.real_array(eigh_original[1], "eigh_original[1]",
                                            shape=(n, n)))
    if K_compressed is not None:
        Kc = _check_kernel(K_compressed, "K_compressed", n)
    elif width is None:
        Kc = kernels.exact_ck(X, compressed_layers, tau0=tau0)
    else:
        Kc = kernels.empirical_ck(X, [int(width)] * len(compressed_layers), compressed_layers, 1,
                                  generator, weights="ternary", sparsity=eps, tau0=tau0,
                                  dtype=dtype)
    mismatch = layer_mismatch(original_layers, compressed_layers, tau0)
    shift = mismatch[-1]["tau_c"] ** 2 - mismatch[-1]["tau"] ** 2
    n_vectors = _checks.integer(n_vectors, "n_vectors", minimum=1, maximum=n)
    return compare_kernels(K, Kc, names=("original", "compressed"), kernel="ck",
                           labels=getattr(sample, "labels", None), n_vectors=n_vectors,
                           shift=shift, shift_corrected=shift_corrected, eigh_a=eigh_original,
                           width=width, sparsity=eps, mismatch=mismatch)


# ---------------------------------------------------------------------------------
# the explorer: a grid of states, drawn by Vega-Lite


COMPRESSION_OFFSETS = (-0.5, -0.25, 0.0, 0.25, 0.5)
COMPRESSION_SCALES = (0.8, 1.0, 1.25)
COMPRESSION_SPARSITIES = (0.0, 0.5, 0.9, 0.99)
COMPRESSION_WIDTHS = (512, 2048)


def coupled_ternary(sparsity: float) -> Callable:
    """A weight sampler for :class:`lossless.networks.MLP`: Gaussian draws, ternarised.

    Draws ``W`` exactly as the Gaussian sampler does (same generator calls), then
    returns ``sign(W) 1[|W| > Φ⁻¹((1 + sparsity)/2)] / sqrt(1 - sparsity)``, the cut-off
    being the quantile with ``P(|W| > cut-off) = 1 - sparsity``: i.i.d. sparse ternary weights with zero mean and unit variance
    (the distribution of :func:`lossless.compress.ternary_weights`), coupled to the dense
    network drawn from the same seed: the compressed network is the ternarisation of
    that dense network.

    Parameters
    ----------
    sparsity : float
        In ``[0, 1)``.

    Returns
    -------
    callable
        ``sampler(shape, generator, dtype, sparsity)``.
    """
    eps = float(sparsity)
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")

    def sampler(shape, generator, dtype, _sparsity=None):
        from lossless.networks import gaussian_weights

        return _ternarise(gaussian_weights(shape, generator, dtype=dtype), eps)

    return sampler


def _ternarise(W: Any, eps: float) -> Any:
    """``sign(W) 1[|W| > cut] / sqrt(1 - eps)``, ``cut = Φ⁻¹((1 + eps)/2)`` so that
    ``P(|xi| > cut) = 1 - eps`` for xi ~ N(0, 1)."""
    import torch
    from scipy.special import ndtri

    q = float(ndtri(1.0 - (1.0 - eps) / 2.0)) if eps > 0 else 0.0
    return torch.sign(W) * (W.abs() > q).to(W.dtype) / math.sqrt(1.0 - eps)


def _perturbed(plan_layers: Sequence[Any], layer: int, ds_minus: float, ds_plus: float,
               scale: float, flip: bool) -> list:
    from lossless.activations import Ternary

    out = list(plan_layers)
    t = out[layer - 1]
    lo, hi = sorted((t.s_minus + ds_minus, t.s_plus + ds_plus))
    out[layer - 1] = Ternary(lo, hi, t.scale * scale, (not t.odd) if flip else t.odd)
    return out


def _mismatch_rows(original: Sequence[Any], compressed: Sequence[Any], tau0: float) -> list:
    rows = layer_mismatch(list(original), list(compressed), tau0)
    return [[significant(r["g1^2"], 3), significant(r["g2^2"], 3),
             None if r["h"] is None else significant(r["h"], 3)] for r in rows]


def _features(X: Any, layers: Sequence[Any], weights: Sequence[Any], tau0: float,
              start: int = 0, H: Any = None) -> tuple[Any, list]:
    """Forward pass of the book's MLP from layer ``start`` (``H``: input of that layer).

    Returns the last features and the list of every layer's input (for reuse).
    """
    centres = [m.m for m in layer_moments(layers, tau0)]
    H = X if H is None else H
    inputs = []
    for ell in range(start, len(layers)):
        inputs.append(H)
        W = weights[ell]
        H = propagate(H, [W.shape[0]], [layers[ell]], [W], [centres[ell]])
    return H, inputs


def _compression_state(K: np.ndarray, eig: tuple, Kc: np.ndarray, shift: float, idx: np.ndarray
                       ) -> dict:
    vals, vecs = eig
    norm = float(np.max(np.abs(vals)))
    D = Kc - K
    raw = opnorm(D)
    D[np.diag_indices_from(D)] -= shift
    corrected = opnorm(D)
    cvals, cvecs = np.linalg.eigh(Kc)
    cvals = cvals - shift
    spectral = float(np.max(np.abs(cvals - vals)))
    align = abs(float(cvecs[:, -1] @ vecs[:, -1]))
    state = _pair_state(vals, vecs[:, -1], cvals, cvecs[:, -1], idx)
    state.update({"error": significant(corrected / norm), "error_raw": significant(raw / norm),
                  "spectral": significant(spectral / norm), "alignment": significant(align),
                  "shift": significant(shift), "shift_rel": significant(shift / norm)})
    return state


def _compression_readout(s: dict, width: Any, eps: Any) -> str:
    where = ("infinite width: exact CK of the compressed network against the original one"
             if width == "exact" else
             f"width {width}, {int(round(100 * eps))} % zero weights: one compressed network "
             f"against the dense original drawn from the same seed")
    mm = " | ".join(f"layer {k + 1}: " + ", ".join(
        "-" if v is None else "0" if abs(v) < 1e-9 else f"{v:.2g}" for v in row)
                    for k, row in enumerate(s["mismatch"]))
    return (f"{where}\n"
            f"relative error after the identity shift {s['error']:.3g} (raw {s['error_raw']:.3g}), "
            f"spectral distance {s['spectral']:.3g}\nleading eigenvector alignment "
            f"{s['alignment']:.3g}; "
            f"identity shift (tau_c_L^2 - tau_L^2) {s['shift']:.3g} = {s['shift_rel']:.3g} ||K||\n"
            f"invariant mismatch (g1^2, g2^2, h): {mm}")


def compression_states(sample: Any, original: Sequence[Any], *, seed: int = 0,
                       offsets: Sequence[float] = COMPRESSION_OFFSETS,
                       scales: Sequence[float] = COMPRESSION_SCALES,
                       sparsities: Sequence[float] = COMPRESSION_SPARSITIES,
                       widths: Sequence[int] = COMPRESSION_WIDTHS,
                       finite: bool = True) -> list[dict]:
    """Grid of chapter-5 states: the original network against compressed ones.

    The compressed network is :func:`lossless.compress.compress` of ``original``, with
    one layer's activation moved: thresholds ``s_-, s_+`` offset by ``offsets``, scale
    ``b`` multiplied by ``scales``, sign pattern kept or flipped. Like with like:

    - **exact** (infinite width): the exact CK of the compressed network minus the
      predicted identity shift ``(tau^c_L)^2 - tau_L^2`` of *that* network, against
      the exact CK of the original: every layer × offsets² × scales × patterns;
    - **finite width** ``d`` and sparsity ``eps``: the CK of one compressed network
      whose weights are the ternarisation (:func:`coupled_ternary`) of the dense
      original of the same width drawn from the same seed, against that dense
      original's CK: every layer × offsets² (scale and pattern at their solved
      values) × ``sparsities`` × ``widths``.

    Parameters
    ----------
    sample : lossless.data.Sample
    original : sequence of Activation
    seed : int
        Seed of the ``torch.Generator`` of each width.
    offsets, scales, sparsities, widths : sequences
    finite : bool
        Include the finite-width states.

    Returns
    -------
    list of dict
        Keys ``w`` (``"exact"`` or the width as a string), ``e`` (ε, -1 for exact),
        ``l`` (the moved layer, 0 for the solved network), ``dm, dp, bf, pt``
        (offsets, scale factor, ``"solved"``/``"flipped"``), histograms (``lo, hi,
        ha, hb``), leading eigenvalues (``sa, sb``) and eigenvectors (``i, ua, ub``),
        ``error`` (after the shift), ``error_raw``, ``spectral`` (largest eigenvalue
        difference), ``alignment``, ``shift``, ``mismatch`` and ``readout``; numbers
        rounded to 4 significant digits.
    """
    import torch

    from lossless import compress, kernels

    original = list(original)
    X = np.asarray(sample.X, dtype=float)
    tau0 = float(sample.tau0)
    plan = compress.compress(original, tau0)
    depth = len(original)
    idx = _subsample(X.shape[0], 64)
    tau_L = layer_scales(original, tau0)[-1]

    keys = [(0, 0.0, 0.0, 1.0, False)]
    for layer in range(1, depth + 1):
        for dm in offsets:
            for dp in offsets:
                for bf in scales:
                    for flip in (False, True):
                        if (dm, dp, bf, flip) != (0.0, 0.0, 1.0, False):
                            keys.append((layer, float(dm), float(dp), float(bf), flip))

    def layers_of(key):
        layer, dm, dp, bf, flip = key
        return list(plan.layers) if layer == 0 else _perturbed(plan.layers, layer, dm, dp, bf, flip)

    def record(state, key, w, e, layers):
        layer, dm, dp, bf, flip = key
        state.update({"w": w, "e": e, "l": layer, "dm": dm, "dp": dp, "bf": bf,
                      "pt": "flipped" if flip else "solved",
                      "mismatch": _mismatch_rows(original, layers, tau0)})
        state["readout"] = _compression_readout(state, w, e)
        return state

    states = []
    K = kernels.exact_ck(X, original, tau0=tau0)
    eig = np.linalg.eigh(K)
    for key in keys:
        layers = layers_of(key)
        shift = layer_scales(layers, tau0)[-1] ** 2 - tau_L**2
        Kc = kernels.exact_ck(X, layers, tau0=tau0)
        states.append(record(_compression_state(K, eig, Kc, shift, idx), key, "exact", -1, layers))
    if not finite:
        return states

    finite_keys = [k for k in keys if k[3] == 1.0 and not k[4]]
    Xt = torch.tensor(X, dtype=torch.float32)
    with torch.no_grad():
        for width in widths:
            dims = [X.shape[1]] + [int(width)] * depth
            gen = torch.Generator().manual_seed(seed)
            from lossless.networks import gaussian_weights

            gauss = [gaussian_weights((dims[i + 1], dims[i]), gen, dtype=torch.float32)
                     for i in range(depth)]
            F, _ = _features(Xt, original, gauss, tau0)
            K_w = (F @ F.T).double().numpy()
            eig_w = np.linalg.eigh(K_w)
            for eps in sparsities:
                eps = float(eps)
                tern = [_ternarise(G, eps) for G in gauss]
                _, inputs = _features(Xt, list(plan.layers), tern, tau0)
                for key in finite_keys:
                    layers = layers_of(key)
                    start = max(key[0] - 1, 0)
                    Fc, _ = _features(Xt, layers, tern, tau0, start=start, H=inputs[start])
                    Kc = (Fc @ Fc.T).double().numpy()
                    shift = layer_scales(layers, tau0)[-1] ** 2 - tau_L**2
                    states.append(record(_compression_state(K_w, eig_w, Kc, shift, idx), key,
                                         str(int(width)), eps, layers))
    return states


def compression_explorer(sample: Any, original: Sequence[Any], *, seed: int = 0,
                         name: str = "compression", cache: bool = True) -> Explorer:
    """The compression chapter's explorer: move one layer's thresholds, scale and pattern, the
    sparsity and the width, and watch the two spectra (see :func:`compression_states`).

    The states take minutes to compute; they are cached by :func:`cached_states`.

    Returns
    -------
    Explorer
    """
    grid = dict(offsets=COMPRESSION_OFFSETS, scales=COMPRESSION_SCALES,
                sparsities=COMPRESSION_SPARSITIES, widths=COMPRESSION_WIDTHS)
    key = _cache_key(np.asarray(sample.X), [repr(a) for a in original], seed, grid)
    states = cached_states("compression", key,
                           lambda: compression_states(sample, original, seed=seed, **grid),
                           cache=cache)
    return _compression_chart(states, name)


_COMPRESSION_READOUT = (
    "(datum.w == 'exact' ? 'infinite width: exact CK of the compressed network against the "
    "original one' : 'width ' + datum.w + ', ' + format(100 * datum.e, '.0f') + ' % zero weights: "
    "one compressed network against the dense original drawn from the same seed') + '\\n' + "
    "'relative error after the identity shift ' + format(datum.error, '.3g') + ' (raw ' + "
    "format(datum.error_raw, '.3g') + '), spectral distance ' + format(datum.spectral, '.3g') + "
    "'\\nleading eigenvector alignment ' + format(datum.alignment, '.3g') + '; ' + "
    "'identity shift (tau_c_L^2 - tau_L^2) ' + format(datum.shift, '.3g') + ' = ' + "
    "format(datum.shift_rel, '.3g') + ' ||K||\\ninvariant mismatch (g1^2, g2^2, h): layer 1: ' + "
    "format(datum.mm[0], '.2g') + ', ' + format(datum.mm[1], '.2g') + ', ' + format(datum.mm[2], '.2g') + "
    "' | layer 2: ' + format(datum.mm[3], '.2g') + ', ' + format(datum.mm[4], '.2g') + ', ' + "
    "format(datum.mm[5], '.2g') + ' | layer 3: ' + format(datum.mm[6], '.2g') + ', ' + "
    "format(datum.mm[7], '.2g')"
)


def _compression_chart(states: list, name: str) -> Explorer:
    offsets = COMPRESSION_OFFSETS
    widths = ["exact"] + [str(w) for w in COMPRESSION_WIDTHS]
    params = [
        _radio("wd", widths, "exact", "width "),
        _radio("eps", COMPRESSION_SPARSITIES, 0.9, "sparsity ε (finite width) "),
        _radio("layer", [1, 2, 3], 1, "layer "),
        _range("dsm", min(offsets), max(offsets), offsets[1] - offsets[0], 0.0, "s₋ offset "),
        _range("dsp", min(offsets), max(offsets), offsets[1] - offsets[0], 0.0, "s₊ offset "),
        _radio("bf", COMPRESSION_SCALES, 1.0, "scale 𝔟 × "),
        _radio("pattern", ["solved", "flipped"], "solved", "sign pattern "),
    ]
    where = " && ".join([
        "datum.w == wd",
        "(wd == 'exact' || abs(datum.e - eps) < 1e-6)",
        "(datum.l == 0 ? (abs(dsm) < 1e-6 && abs(dsp) < 1e-6 && (wd != 'exact' || "
        "(abs(bf - 1) < 1e-6 && pattern == 'solved'))) : datum.l == layer)",
        _close("dm", "dsm"), _close("dp", "dsp"),
        f"(wd != 'exact' || ({_close('bf', 'bf')} && datum.pt == pattern))",
    ])
    note = ("wd != 'exact' && (abs(bf - 1) > 1e-6 || pattern != 'solved') ? "
            "'[finite widths are precomputed at the solved b and pattern] ' : ''")
    for st in states:  # the invariant mismatches as one flat list (tiny values as 0)
        st["readout"] = _compression_readout(st, st["w"], st["e"])
        st["mm"] = [0.0 if v is None or abs(v) < 1e-9 else significant(v, 2)
                    for row in st["mismatch"] for v in row]
    text = f"({note}) + " + _COMPRESSION_READOUT
    spec = _spectrum_chart(states, params, where, ("original CK", "compressed CK − shift"),
                           name=name, text=text,
                           fields=("w", "e", "l", "dm", "dp", "bf", "pt", "error", "error_raw",
                                   "spectral", "alignment", "shift", "shift_rel", "mm"))
    controls = [
        {"name": "wd", "values": ["512", "2048"], "context": {}},
        {"name": "eps", "values": [0.5, 0.99], "context": {"wd": "2048"}},
        {"name": "layer", "values": [2, 3], "context": {"dsp": 0.5}},
        {"name": "dsm", "values": [-0.5, 0.5], "context": {}},
        {"name": "dsp", "values": [0.25, 0.5], "context": {}},
        {"name": "bf", "values": [0.8, 1.25], "context": {}},
        {"name": "pattern", "values": ["flipped", "solved"], "context": {"dsp": 0.25}},
    ]
    return Explorer(name, spec, states, controls)


def compression_widget(sample: Any, original: Sequence[Any], *, seed: int = 0) -> Any:
    """The compression chapter's live widget (JupyterLab): any thresholds, scale, pattern, ε, width.

    Each redraw is one :func:`compare_compressed_spectra` call (the finite
    networks with independent sparse ternary weights).

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets
    import torch
    from IPython.display import display
    from matplotlib.figure import Figure

    from lossless import activations, compress, kernels, plotting

    original = list(original)
    plan = compress.compress(original, sample.tau0)
    K = kernels.exact_ck(sample.X, original, tau0=sample.tau0)
    eig = np.linalg.eigh(K)
    widths = {"exact": None, "512": 512, "2048": 2048}
    state = {"layers": list(plan.layers), "busy": False}
    style = {"description_width": "70px"}
    layer_box = widgets.Dropdown(options=list(range(1, len(original) + 1)), value=1,
                                 description="layer", style=style)
    pattern = widgets.ToggleButtons(options=["odd", "even"], description="pattern", style=style)
    s_minus = widgets.FloatSlider(min=-3, max=3, step=0.01, description="s₋", style=style)
    s_plus = widgets.FloatSlider(min=-3, max=3, step=0.01, description="s₊", style=style)
    scale = widgets.FloatSlider(min=0.05, max=4, step=0.01, description="𝔟", style=style)
    sparsity = widgets.FloatSlider(value=0.9, min=0, max=0.99, step=0.01, description="ε",
                                   style=style)
    width = widgets.Dropdown(options=list(widths), value="exact", description="width", style=style)
    corrected = widgets.Checkbox(value=True, description="shift-corrected")
    snap = widgets.Button(description="snap to solved values")
    out = widgets.Output()

    def show_layer():
        t = state["layers"][layer_box.value - 1]
        state["busy"] = True
        pattern.value = "odd" if t.odd else "even"
        s_minus.value, s_plus.value, scale.value = t.s_minus, t.s_plus, t.scale
        state["busy"] = False

    def redraw(*_):
        # The kernel may deliver a slider's next value while a redraw is still computing
        # (ipykernel handles widget messages while busy): one redraw at a time, then once
        # more with the latest values. Values are compared at the sliders' resolution, so
        # the float noise of a slider echoing its value back does not recompute anything.
        if state["busy"]:
            return
        if state.get("drawing"):
            state["pending"] = True
            return
        state["drawing"] = True
        try:
            while True:
                state["pending"] = False
                _draw()
                if not state["pending"]:
                    break
        finally:
            state["drawing"] = False

    def _draw():
        lo, hi = sorted((round(s_minus.value, 2), round(s_plus.value, 2)))
        current = state["layers"][layer_box.value - 1]
        moved = (max(abs(lo - current.s_minus), abs(hi - current.s_plus),
                     abs(round(scale.value, 2) - current.scale)) > 0.006
                 or (pattern.value == "odd") != current.odd)
        if moved:
            state["layers"][layer_box.value - 1] = activations.Ternary(
                lo, hi, round(scale.value, 2), pattern.value == "odd")
        key = (repr(state["layers"]), round(sparsity.value, 2), width.value, corrected.value)
        if key == state.get("drawn"):
            return
        ov = compare_compressed_spectra(
            sample, original, state["layers"], width=widths[width.value],
            sparsity=round(sparsity.value, 2), generator=torch.Generator().manual_seed(seed),
            shift_corrected=corrected.value, K_original=K, eigh_original=eig)
        fig = Figure(figsize=(10, 3.4))        # not pyplot: no state shared between redraws
        axes = fig.subplots(1, 2)
        plotting.compression_overlay_plot(axes, ov)
        fig.tight_layout()
        with out:
            out.clear_output(wait=True)
            display(fig)
            print(ov.report())
        state["drawn"] = key

    def on_layer(_):
        show_layer()
        redraw()

    def on_snap(_):
        state["layers"] = list(plan.layers)
        show_layer()
        redraw()

    show_layer()
    layer_box.observe(on_layer, names="value")
    for control in (pattern, s_minus, s_plus, scale, sparsity, width, corrected):
        control.observe(redraw, names="value")
    snap.on_click(on_snap)
    redraw()
    return widgets.VBox([widgets.HBox([layer_box, pattern, snap]),
                         widgets.HBox([s_minus, s_plus, scale]),
                         widgets.HBox([sparsity, width, corrected]), out])
