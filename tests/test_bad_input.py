"""Property-based tests of the public API's argument checks (hypothesis).

For each public entry point, one valid call is built from small inputs; hypothesis then
replaces one argument at a time by a value of the wrong *kind* (a string, a complex
number, None, a bool, a float where an integer belongs, a tensor that requires grad, ...)
or of the wrong *value* (NaN, inf, a wrong shape, out of range). Every such call must
raise TypeError or ValueError whose message names the argument: never a silent result,
never an error from numpy/torch/scipy internals. Extreme but valid values (tiny or huge
scales) must give either a finite result or such an error.

Hypothesis runs derandomised (the same examples on every machine and every run) and
without its example database, so nothing is written to the repository.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossless import (activations, baselines, compress, data, dynamics, experiments, explore,
                      kernels, memory, networks, plotting, readout, spectra, theory, toolbox)

SETTINGS = settings(max_examples=30, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

# ---------------------------------------------------------------------------------
# small valid ingredients (built once)
RELU = activations.get("relu")
LAYERS2 = [RELU, activations.get("tanh")]
_RNG = np.random.default_rng(0)
X_SMALL = _RNG.standard_normal((6, 5)) / math.sqrt(5)
SAMPLE = data.preset("mixed", 8).sample(12, np.random.default_rng(1))
F_SMALL = _RNG.standard_normal((8, 4))
LABELS8 = np.array([0, 1] * 4)
TARGETS8 = np.eye(2)[LABELS8]
K_SYM = F_SMALL @ F_SMALL.T
K_SYM = (K_SYM + K_SYM.T) / 2
W_SMALL = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
MOMENTS_RELU = RELU.moments(1.0)


def tgen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# ---------------------------------------------------------------------------------
# bad values by kind of argument
class _Weird:
    def __repr__(self) -> str:
        return "<weird object>"


COMMON_BAD = [None, "1", "abc", b"1", 1 + 2j, np.complex128(1 + 1j), _Weird(), [1.0, "a"],
              {"a": 1}]
REAL_BAD = COMMON_BAD + [float("nan"), float("inf"), -float("inf"), np.float64("nan"),
                         True, np.array([1.0, 2.0]), torch.tensor([1.0, 2.0])]
INT_BAD = COMMON_BAD + [2.7, 3.0, float("nan"), float("inf"), True, np.float32(2.0), -1, -5,
                        np.array([1, 2])]
FLAG_BAD = [None, "no", "yes", 0, 1, 0.0, 2.5, _Weird()]
CHOICE_BAD = [None, "banana", "", 1, 2.5, _Weird(), ("ck",)]
TGEN_BAD = [None, 0, 1.5, "seed", np.random.default_rng(0), _Weird()]
NGEN_BAD = [None, 0, 1.5, "seed", torch.Generator(), _Weird()]
DTYPE_BAD = [None, torch.int64, torch.bool, torch.complex64, "float32", np.float64, 32]
LAYERS_BAD = [None, "relu", RELU, [], ["relu"], [None], [RELU, "tanh"], 3]


def array_bad(shape: tuple[int, ...], *, grad_ok: bool = False) -> st.SearchStrategy:
    """Arrays of the wrong kind or value for a real array of ``shape`` (a tensor that
    requires grad is a bad value unless ``grad_ok``: a network's input may require it)."""
    n = int(np.prod(shape))

    def with_bad_entry(args):
        index, value = args
        a = np.ones(shape)
        a.flat[index % n] = value
        return a

    nonfinite = st.tuples(st.integers(0, 10_000),
                          st.sampled_from([np.nan, np.inf, -np.inf])).map(with_bad_entry)
    fixed = [
        None, "X", np.ones(shape, dtype=complex), np.full(shape, "1.0"),
        np.empty(shape, dtype=object), np.ones(shape, dtype=bool),
        np.ones(shape + (1,)), np.ones((0,) + shape[1:]), np.ones(3),
        torch.ones(shape, dtype=torch.complex64),
    ]
    if not grad_ok:
        fixed.append(torch.ones(shape, requires_grad=True))
    fixed = st.sampled_from(fixed)
    return st.one_of(nonfinite, fixed)


@dataclass
class Entry:
    """A public entry point, a valid call, and the bad values of each argument."""

    name: str
    call: Callable[..., Any]
    valid: dict[str, Callable[[], Any]]
    bad: dict[str, st.SearchStrategy]
    edge: dict[str, st.SearchStrategy] = field(default_factory=dict)

    def kwargs(self, **override: Any) -> dict[str, Any]:
        out = {k: make() for k, make in self.valid.items()}
        out.update(override)
        return out


def s(values) -> st.SearchStrategy:
    return st.sampled_from(values)


def const(value):
    return lambda: value


POS = s(REAL_BAD + [0.0, -1.0, -1e-300])
FRAC = s(REAL_BAD + [-0.1, 1.0, 1.5])
INT1 = s(INT_BAD + [0])
POS_OPTIONAL = s([v for v in REAL_BAD if v is not None] + [0.0, -1.0])  # None = default

ENTRIES: list[Entry] = [
    # activations
    Entry("activations.moments", lambda act, tau: act.moments(tau),
          {"act": const(RELU), "tau": const(1.0)}, {"tau": POS},
          edge={"tau": s([1e-300, 1e-150, 1e-100, 5e-324, 1e100, 1e155, 1e300])}),
    Entry("activations.get(ternary)",
          lambda s_minus, s_plus, scale, odd: activations.get(
              "ternary", s_minus=s_minus, s_plus=s_plus, scale=scale, odd=odd),
          {"s_minus": const(-0.5), "s_plus": const(0.5), "scale": const(1.0), "odd": const(True)},
          {"s_minus": s(REAL_BAD), "s_plus": s(REAL_BAD), "scale": POS, "odd": s(FLAG_BAD)}),
    Entry("activations.__call__", lambda act, x: act(x),
          {"act": const(activations.get("ternary", s_minus=-0.5, s_plus=0.5)),
           "x": const(np.zeros(3))},
          {"x": s([None, "abc", np.ones(3, dtype=complex), np.full(3, "1"),
                   np.empty(3, dtype=object), np.ones(3, dtype=bool)])}),
    # data
    Entry("data.preset", lambda name, p, separation: data.preset(name, p, separation=separation),
          {"name": const("mean"), "p": const(8), "separation": const(3.0)},
          {"name": s(CHOICE_BAD), "p": INT1, "separation": s(REAL_BAD + [-1.0])}),
    Entry("GaussianMixture.sample", lambda n, rng: data.preset("mean", 8).sample(n, rng),
          {"n": const(10), "rng": lambda: np.random.default_rng(0)},
          {"n": INT1, "rng": s(NGEN_BAD)}),
    Entry("data.Sample.from_data", lambda X, labels: data.Sample.from_data(X, labels),
          {"X": const(np.random.default_rng(2).standard_normal((8, 3))), "labels": const(LABELS8)},
          {"X": array_bad((8, 3)), "labels": s([None, "a", np.full(8, 0.5), np.ones(7, int),
                                                  np.array([0, 1] * 4, dtype=complex)])}),
    Entry("data.normalize", lambda X: data.normalize(X),
          {"X": const(F_SMALL)}, {"X": array_bad((8, 4))}),
    Entry("explore.gram_spectrum_demo", lambda p, ratio, seed: explore.gram_spectrum_demo(
              p=p, ratio=ratio, seed=seed, grid_size=8),
          {"p": const(8), "ratio": const(1.0), "seed": const(0)},
          {"p": INT1, "ratio": POS, "seed": s(INT_BAD)}),
    # networks
    Entry("networks.ternary_weights",
          lambda shape, sparsity, generator, exact_zeros, dtype: networks.ternary_weights(
              shape, sparsity, generator, exact_zeros=exact_zeros, dtype=dtype),
          {"shape": const((3, 4)), "sparsity": const(0.5), "generator": tgen,
           "exact_zeros": const(False), "dtype": const(torch.float32)},
          {"shape": s([None, "3", (2.5, 3), (-1, 3), 1 + 1j]), "sparsity": FRAC,
           "generator": s(TGEN_BAD), "exact_zeros": s(FLAG_BAD), "dtype": s(DTYPE_BAD)}),
    Entry("networks.MLP",
          lambda p, widths, layers, tau0, sparsity, generator: networks.MLP(
              p, widths, layers, tau0, weights="ternary", sparsity=sparsity, generator=generator),
          {"p": const(5), "widths": const([4, 3]), "layers": const(LAYERS2), "tau0": const(1.0),
           "sparsity": const(0.5), "generator": tgen},
          {"p": INT1, "widths": s([None, "43", [4], [4, 2.7], [4, 0], [4, -3], 4]),
           "layers": s(LAYERS_BAD), "tau0": POS, "sparsity": FRAC, "generator": s(TGEN_BAD)}),
    Entry("networks.MLP.forward", lambda X: networks.MLP(
              5, [4, 3], LAYERS2, 1.0, generator=tgen())(X),
          {"X": const(X_SMALL)}, {"X": array_bad((6, 5), grad_ok=True)}),
    # kernels
    Entry("kernels.exact_ck", lambda X, layers, tau0: kernels.exact_ck(X, layers, tau0=tau0),
          {"X": const(X_SMALL), "layers": const(LAYERS2), "tau0": const(None)},
          {"X": array_bad((6, 5)), "layers": s(LAYERS_BAD), "tau0": POS_OPTIONAL}),
    Entry("kernels.exact_ntk",
          lambda X, layers, diagonal: kernels.exact_ntk(X, layers, diagonal=diagonal),
          {"X": const(X_SMALL), "layers": const(LAYERS2), "diagonal": const("raise")},
          {"X": array_bad((6, 5)), "diagonal": s(CHOICE_BAD)}),
    Entry("activations.layer_scales", lambda layers, tau0: activations.layer_scales(layers, tau0),
          {"layers": const(LAYERS2), "tau0": const(1.0)},
          {"layers": s(LAYERS_BAD), "tau0": POS}),
    Entry("kernels.empirical_ck",
          lambda X, widths, draws, generator, sparsity: kernels.empirical_ck(
              X, widths, LAYERS2, draws, generator, weights="ternary", sparsity=sparsity),
          {"X": const(X_SMALL), "widths": const([4, 3]), "draws": const(2), "generator": tgen,
           "sparsity": const(0.5)},
          {"X": array_bad((6, 5)), "widths": s([None, [4], [4, 2.7], [4, 0]]), "draws": INT1,
           "generator": s(TGEN_BAD), "sparsity": FRAC}),
    # theory
    Entry("theory.coefficients", lambda layers, tau0: theory.coefficients(layers, tau0),
          {"layers": const(LAYERS2), "tau0": const(1.0)},
          {"layers": s(LAYERS_BAD), "tau0": POS}),
    Entry("explore.compare_equivalent_spectra",
          lambda kernel, n_vectors: explore.compare_equivalent_spectra(
              SAMPLE, LAYERS2, kernel=kernel, n_vectors=n_vectors),
          {"kernel": const("ck"), "n_vectors": const(2)},
          {"kernel": s(CHOICE_BAD), "n_vectors": INT1}),
    Entry("explore.reference_comparison",
          lambda depth, p, seed: explore.reference_comparison(RELU, depth, p, seed=seed),
          {"depth": const(1), "p": const(8), "seed": const(0)},
          {"depth": INT1, "p": s(INT_BAD + [4]), "seed": s(INT_BAD)}),
    # spectra
    Entry("spectra.eigh_desc", lambda K: spectra.eigh_desc(K), {"K": const(K_SYM)},
          {"K": st.one_of(array_bad((8, 8)), s([np.triu(np.ones((3, 3))), np.ones((3, 4))]))}),
    Entry("spectra.opnorm", lambda A: spectra.opnorm(A), {"A": const(K_SYM)},
          {"A": array_bad((8, 8))}),
    Entry("spectra.relative_opnorm_error", lambda K, K_ref: spectra.relative_opnorm_error(K, K_ref),
          {"K": const(K_SYM), "K_ref": const(np.eye(8))},
          {"K": array_bad((8, 8)), "K_ref": array_bad((8, 8))}),
    Entry("spectra.eigenvector_alignment", lambda u, v: spectra.eigenvector_alignment(u, v),
          {"u": const(np.ones(4)), "v": const(np.arange(4.0))},
          {"u": array_bad((4,)), "v": st.one_of(array_bad((4,)), s([np.zeros(4)]))}),
    Entry("spectra.marchenko_pastur_support",
          lambda ratio, sigma2: spectra.marchenko_pastur_support(ratio, sigma2),
          {"ratio": const(2.0), "sigma2": const(1.0)}, {"ratio": POS, "sigma2": POS}),
    # compress
    Entry("compress.compress", lambda layers, tau0, tol: compress.compress(layers, tau0, tol=tol),
          {"layers": const([RELU, RELU]), "tau0": const(1.0), "tol": const(1e-10)},
          {"layers": s(LAYERS_BAD), "tau0": POS, "tol": POS}),
    Entry("compress.solve_layer", lambda target, tau_c, tol: compress.solve_layer(
              target, tau_c, tol=tol),
          {"target": const(MOMENTS_RELU), "tau_c": const(1.0), "tol": const(1e-10)},
          {"target": s([None, 1.0, "m", {"g1": 1.0}]), "tau_c": POS, "tol": POS}),
    Entry("memory.memory_report", lambda p, widths, sparsity: memory.memory_report(
              p, widths, sparsity),
          {"p": const(5), "widths": const([4, 3]), "sparsity": const(0.5)},
          {"p": INT1, "widths": s([None, [4, 2.7], [0], "4"]), "sparsity": FRAC}),
    Entry("compress.pack_ternary", lambda values: compress.pack_ternary(values),
          {"values": const(torch.tensor([[0.0, 1.0, -1.0]]))},
          {"values": s([None, "x", torch.tensor([[0.5, 1.0, -1.0]]),
                        torch.tensor([[float("nan"), 1.0, -1.0]]), np.ones((1, 3), complex)])}),
    # readout, baselines, experiments
    Entry("readout.ridge_readout", lambda F, targets, ridge: readout.ridge_readout(
              F, targets, ridge),
          {"F": const(F_SMALL), "targets": const(TARGETS8), "ridge": const(0.1)},
          # a ridge <= 0 is allowed while the system stays positive definite (documented)
          {"F": array_bad((8, 4)), "targets": array_bad((8, 2)), "ridge": s(REAL_BAD)}),
    Entry("readout.logistic_readout",
          lambda F, labels, n_classes, penalty: readout.logistic_readout(F, labels, n_classes,
                                                                         penalty),
          {"F": const(F_SMALL), "labels": const(LABELS8), "n_classes": const(2),
           "penalty": const(0.1)},
          {"F": array_bad((8, 4)), "labels": s([None, "a", np.full(8, 0.5), np.ones(7, int)]),
           "n_classes": s(INT_BAD + [0, 1]), "penalty": POS}),
    Entry("readout.kernel_ridge_predict",
          lambda K_train, K_cross, targets, ridge: readout.kernel_ridge_predict(
              K_train, K_cross, targets, ridge),
          {"K_train": const(K_SYM), "K_cross": const(K_SYM[:3]), "targets": const(TARGETS8),
           "ridge": const(0.1)},
          {"K_train": st.one_of(array_bad((8, 8)), s([np.triu(np.ones((8, 8)))])),
           "K_cross": array_bad((3, 8)), "targets": array_bad((8, 2)), "ridge": s(REAL_BAD)}),
    Entry("baselines.magnitude_prune", lambda W, kept_fraction: baselines.magnitude_prune(
              W, kept_fraction),
          {"W": const(W_SMALL), "kept_fraction": const(0.5)},
          {"W": st.one_of(array_bad((6, 5)), s([torch.zeros(6, 5)])),
           "kept_fraction": s(REAL_BAD + [0.0, -0.5, 1.5])}),
    Entry("baselines.naive_ternarize", lambda W, sparsity: baselines.naive_ternarize(W, sparsity),
          {"W": const(W_SMALL), "sparsity": const(0.5)},
          {"W": st.one_of(array_bad((6, 5)), s([torch.zeros(6, 5)])), "sparsity": FRAC}),
    Entry("memory.ternary_memory", lambda n_weights, sparsity: memory.ternary_memory(
              n_weights, sparsity),
          {"n_weights": const(100), "sparsity": const(0.5)},
          {"n_weights": INT1, "sparsity": FRAC}),
    Entry("experiments.mixture_task", lambda p, n_train, n_test, rng: experiments.mixture_task(
              p, n_train, n_test, rng),
          {"p": const(8), "n_train": const(10), "n_test": const(6),
           "rng": lambda: np.random.default_rng(0)},
          {"p": INT1, "n_train": INT1, "n_test": INT1, "rng": s(NGEN_BAD)}),
]

IDS = [e.name for e in ENTRIES]
PROBES: dict[str, dict[str, int]] = {}


def _count(entry: str, outcome: str) -> None:
    PROBES.setdefault(entry, {}).setdefault(outcome, 0)
    PROBES[entry][outcome] += 1


def _assert_clean(result: Any, where: str) -> None:
    """Every float in a result (arrays, tensors, dataclass fields one level deep) is finite
    (``inf`` is allowed only where documented: an NTK diagonal, q of a step)."""
    items = [result]
    if isinstance(result, tuple):
        items = list(result)
    elif hasattr(result, "__dict__") and not isinstance(result, (np.ndarray, torch.Tensor)):
        items = list(vars(result).values())
    for item in items:
        if isinstance(item, torch.Tensor):
            item = item.detach().numpy()
        if isinstance(item, (np.ndarray, float, np.floating)):
            arr = np.asarray(item)
            if arr.dtype.kind == "f":
                assert not np.any(np.isnan(arr)), f"{where}: NaN in a result"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_valid_call_works(entry):
    _assert_clean(entry.call(**entry.kwargs()), entry.name)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_bad_argument_raises_naming_it(entry, data):
    arg = data.draw(st.sampled_from(sorted(entry.bad)), label="argument")
    bad = data.draw(entry.bad[arg], label="bad value")
    try:
        result = entry.call(**entry.kwargs(**{arg: bad}))
    except (TypeError, ValueError) as err:
        _count(entry.name, type(err).__name__)
        message = str(err)
        assert arg in message or arg.split("_")[0] in message, (
            f"{entry.name}({arg}={bad!r}) raised {type(err).__name__} without naming "
            f"{arg!r}: {message}")
        return
    except Exception as err:  # noqa: BLE001 - the point of the test
        _count(entry.name, "other error")
        raise AssertionError(
            f"{entry.name}({arg}={bad!r}) raised {type(err).__name__} from the internals: {err}"
        ) from err
    _count(entry.name, "silently accepted")
    raise AssertionError(f"{entry.name}({arg}={bad!r}) returned {type(result).__name__} "
                         f"instead of raising")


EDGE_ENTRIES = [e for e in ENTRIES if e.edge]


@pytest.mark.parametrize("entry", EDGE_ENTRIES, ids=[e.name for e in EDGE_ENTRIES])
@SETTINGS
@given(data=st.data())
def test_edge_values_give_a_clean_result_or_a_named_error(entry, data):
    arg = data.draw(st.sampled_from(sorted(entry.edge)), label="argument")
    value = data.draw(entry.edge[arg], label="edge value")
    try:
        result = entry.call(**entry.kwargs(**{arg: value}))
    except (TypeError, ValueError) as err:
        _count(entry.name + " (edge)", type(err).__name__)
        assert arg in str(err), f"{entry.name}({arg}={value!r}): {err}"
        return
    _count(entry.name + " (edge)", "clean result")
    _assert_clean(result, f"{entry.name}({arg}={value!r})")


# ---------------------------------------------------------------------------------
# "Nothing silent": finite inputs that overflow, NaN parameters, shapes against the
# object, probability vectors, float labels, absurd sizes, user samplers of the wrong
# shape, plotting arguments, binary files, tau0 out of range. Each call must raise
# TypeError/ValueError naming the argument (or, for huge finite inputs, return an
# all-finite result).
def _raises_naming(call: Callable[[], Any], arg: str) -> str:
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert not isinstance(info.value, UnicodeDecodeError), info.value
    assert arg in str(info.value), f"error does not name {arg!r}: {info.value}"
    return str(info.value)


def _finite_or_named(call: Callable[[], Any], arg: str) -> None:
    try:
        result = call()
    except (TypeError, ValueError) as err:
        assert arg in str(err), f"error does not name {arg!r}: {err}"
        return
    items = list(result) if isinstance(result, tuple) else [result]
    if hasattr(result, "__dict__") and not isinstance(result, (np.ndarray, torch.Tensor)):
        items = list(vars(result).values())
    for item in items:
        if isinstance(item, torch.Tensor):
            item = item.detach().numpy()
        arr = np.asarray(item) if isinstance(item, (np.ndarray, float, np.floating)) else None
        if arr is not None and arr.dtype.kind == "f":
            assert np.all(np.isfinite(arr)), f"non-finite result without an error naming {arg}"


HUGE = st.floats(1e155, 1e300)
NET = networks.MLP(5, [4, 3], LAYERS2, 1.0, generator=tgen())
NET_RELU = networks.MLP(5, [4, 3], [RELU, RELU], 1.0, generator=tgen(), dtype=torch.float64)
FEATURES = baselines.dense_network(5, [4, 3], [RELU, RELU], 1.0, tgen())
LABELS12 = np.array([0, 1] * 6)


def _scaled(shape, v):
    return np.random.default_rng(5).standard_normal(shape) * v


OVERFLOW = {  # name -> (argument, call with a huge finite value v)
    "MLP.forward": ("X", lambda v: NET(_scaled((6, 5), v))),
    "MLP.features float64": ("X", lambda v: NET_RELU.features(_scaled((6, 5), v))),
    "MLP.pre_activations": ("X", lambda v: NET.pre_activations(_scaled((6, 5), v))),
    "FeatureNetwork.features": ("X", lambda v: FEATURES.features(_scaled((6, 5), v))),
    "Sample.tau0": ("X", lambda v: data.Sample(_scaled((12, 5), v), LABELS12).tau0),
    "Sample.from_data": ("X", lambda v: data.Sample.from_data(_scaled((12, 5), v), LABELS12)),
    "GaussianMixture means": ("means", lambda v: data.GaussianMixture(
        np.full((2, 4), v), np.ones(2)).sample(6, np.random.default_rng(0)).tau0),
    "preset separation": ("separation", lambda v: data.preset(
        "mean", 8, separation=v).sample(10, np.random.default_rng(0)).tau0),
    "preset trace_gap": ("trace_gap", lambda v: data.preset("trace", 8, trace_gap=v)),
    "gram_spectrum_demo": ("separation", lambda v: explore.gram_spectrum_demo(
        p=8, separation=v, grid_size=8)),
    "gram_spectrum_demo ratio": ("ratio", lambda v: explore.gram_spectrum_demo(
        p=8, ratio=v, grid_size=8)),
    "normalize": ("X", lambda v: data.normalize(_scaled((6, 5), v))),
    "mehler_series": ("zeta_f", lambda v: toolbox.mehler_series(np.full(3, v), np.ones(3), 0.5)),
    "marchenko_pastur_support": ("sigma2", lambda v: spectra.marchenko_pastur_support(2.0, v)),
    "ridge_readout": ("F", lambda v: readout.ridge_readout(_scaled((8, 4), v), TARGETS8, 0.1)),
    "kernel_agreement": ("F", lambda v: experiments.kernel_agreement(_scaled((8, 4), v),
                                                                     np.eye(8))),
    "linearized_loss_curve": ("residual0", lambda v: dynamics.linearized_loss_curve(
        np.eye(4), np.full(4, v), 0.1, 3)),
    "theory.coefficients": ("tau0", lambda v: theory.coefficients(LAYERS2, v)),
}


@pytest.mark.parametrize("case", sorted(OVERFLOW))
@SETTINGS
@given(v=HUGE)
def test_huge_finite_input_is_never_silent(case, v):
    arg, call = OVERFLOW[case]
    _finite_or_named(lambda: call(v), arg)


@pytest.mark.parametrize("case", ["MLP.forward", "FeatureNetwork.features", "Sample.tau0",
                                  "preset separation", "gram_spectrum_demo", "mehler_series",
                                  "marchenko_pastur_support", "ridge_readout", "normalize",
                                  "theory.coefficients", "linearized_loss_curve"])
def test_overflow_near_float_max_raises_naming_the_input(case):
    arg, call = OVERFLOW[case]
    _raises_naming(lambda: call(1.7e308), arg)


TAU_OUT = st.one_of(st.floats(1.01e100, 1e308), st.floats(5e-324, 0.99e-100))
TAU0_CALLS = {
    "theory.coefficients": lambda t: theory.coefficients(LAYERS2, t),
    "theory.hermite_twin": lambda t: theory.hermite_twin(LAYERS2, t),
    "theory.authors_ntk_shift": lambda t: theory.authors_ntk_shift(LAYERS2, t),
    "theory.equivalent_ck": lambda t: theory.equivalent_ck(SAMPLE, LAYERS2, tau0=t),
    "activations.layer_scales": lambda t: activations.layer_scales(LAYERS2, t),
    "kernels.exact_ck": lambda t: kernels.exact_ck(X_SMALL, LAYERS2, tau0=t),
    "networks.MLP": lambda t: networks.MLP(5, [4, 3], LAYERS2, t, generator=tgen()),
}


@pytest.mark.parametrize("case", sorted(TAU0_CALLS))
@SETTINGS
@given(t=TAU_OUT)
def test_tau0_out_of_range_names_tau0(case, t):
    message = _raises_naming(lambda: TAU0_CALLS[case](t), "tau0")
    assert "OverflowError" not in message


DUAL_ACTS = [RELU, activations.get("tanh"), activations.get("erf"), activations.get("sin"),
             activations.get("quadratic")]


@pytest.mark.parametrize("act", DUAL_ACTS, ids=[a.name for a in DUAL_ACTS])
@SETTINGS
@given(arg=st.sampled_from(["centre", "max_correlation"]),
       bad=st.sampled_from([float("nan"), float("inf"), -float("inf"), "0", None]))
def test_dual_refuses_nan_parameters(act, arg, bad):
    _raises_naming(lambda: act.dual(np.ones(3), **{arg: bad}), arg)


@SETTINGS
@given(bad=st.sampled_from([-0.1, 1.5, float("nan")]))
def test_dual_max_correlation_is_a_correlation(bad):
    _raises_naming(lambda: RELU.dual(np.ones(3), max_correlation=bad), "max_correlation")


TERMS = theory.ck_terms(SAMPLE, LAYERS2)


@SETTINGS
@given(p=st.integers(1, 30).filter(lambda q: q != SAMPLE.p))
def test_equivalent_terms_matrix_checks_p(p):
    _raises_naming(lambda: TERMS.matrix(np.ones((SAMPLE.n, p))), "X")


PROPORTIONS_BAD = st.one_of(
    st.lists(st.floats(0.0, 1.0), min_size=3, max_size=5),           # wrong length
    st.tuples(st.floats(1.01, 3.0)).map(lambda t: [t[0], 1.0 - t[0]]),  # a negative entry
    st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)).filter(
        lambda t: abs(sum(t) - 1.0) > 1e-6).map(list),                 # sum != 1
)


@SETTINGS
@given(bad=PROPORTIONS_BAD)
def test_probability_vectors_are_checked(bad):
    mixture = data.preset("mixed", 8)
    _raises_naming(lambda: mixture.growth_statistics(bad), "proportions")
    _raises_naming(lambda: spectra.gram_spike_predictions(np.ones((8, 2)), bad, 2.0),
                   "proportions")


@SETTINGS
@given(labels=st.lists(st.sampled_from([0.0, 1.0, 0.5]), min_size=12, max_size=12))
def test_float_labels_are_refused(labels):
    X = np.random.default_rng(0).standard_normal((12, 3))
    _raises_naming(lambda: data.Sample(X, np.array(labels)), "labels")
    _raises_naming(lambda: data.Sample.from_data(X, np.array(labels)), "labels")


def test_mismatched_counts_name_counts():
    _raises_naming(lambda: spectra.gram_bulk_edge(np.ones(2), [5, 5, 5], 4), "counts")


ABSURD = st.integers(10**12, 10**15)
SIZE_CALLS = {  # absurd sizes are refused before allocating, naming the argument
    "MLP widths": ("widths", lambda w: networks.MLP(5, [w, 3], LAYERS2, 1.0, generator=tgen())),
    "MLP p": ("p", lambda w: networks.MLP(w, [4, 3], LAYERS2, 1.0, generator=tgen())),
    "gaussian_weights": ("shape", lambda w: networks.gaussian_weights((w, 10**7), tgen())),
    "ternary_weights": ("shape", lambda w: networks.ternary_weights((10**7, w), 0.5, tgen())),
    "empirical_ck": ("widths", lambda w: kernels.empirical_ck(X_SMALL, [w, 3], LAYERS2, 1,
                                                              tgen())),
    "dense_network": ("widths", lambda w: baselines.dense_network(5, [w, 3], [RELU, RELU], 1.0,
                                                                  tgen())),
    "preset p": ("p", lambda w: data.preset("mean", w)),
    "sample n": ("n", lambda w: data.preset("mean", 8).sample(w, np.random.default_rng(0))),
    "gram_spectrum_demo grid_size": ("grid_size", lambda w: explore.gram_spectrum_demo(
        p=8, grid_size=w)),
    "linearized_residuals": ("steps", lambda w: dynamics.linearized_residuals(
        np.eye(4), np.ones(4), 0.1, w)),
    "mixture_task": ("n_train", lambda w: experiments.mixture_task(8, w, 6,
                                                                   np.random.default_rng(0))),
    "class_targets": ("n_classes", lambda w: readout.class_targets(np.array([0, 1]), w)),
}


@pytest.mark.parametrize("case", sorted(SIZE_CALLS))
@settings(max_examples=5, derandomize=True, database=None, deadline=None)
@given(w=ABSURD)
def test_absurd_sizes_are_refused_before_allocating(case, w):
    arg, call = SIZE_CALLS[case]
    message = _raises_naming(lambda: call(w), arg)
    assert "GiB" in message


def test_ten_million_squared_names_widths():
    _raises_naming(lambda: networks.MLP(10**7, [10**7, 4], LAYERS2, 1.0, generator=tgen()),
                   "widths")
    _raises_naming(lambda: networks.MLP(10**8, [10**6, 4], LAYERS2, 1.0, generator=tgen()), "p")
    _raises_naming(lambda: networks.gaussian_weights((10**7, 10**7), tgen()), "shape")


SAMPLERS_BAD = [
    lambda shape, g, dt, eps: torch.ones(3, 3, dtype=dt),
    lambda shape, g, dt, eps: torch.ones(shape[::-1] + (1,), dtype=dt),
    lambda shape, g, dt, eps: np.ones(shape),
    lambda shape, g, dt, eps: torch.ones(shape, dtype=torch.float64 if dt == torch.float32
                                         else torch.float32),
    lambda shape, g, dt, eps: torch.full(shape, float("nan"), dtype=dt),
    lambda shape, g, dt, eps: None,
]


@pytest.mark.parametrize("sampler", SAMPLERS_BAD)
def test_user_sampler_of_the_wrong_shape_names_weights(sampler):
    _raises_naming(lambda: networks.MLP(5, [4, 3], LAYERS2, 1.0, weights=sampler,
                                        generator=tgen()), "weights")
    _raises_naming(lambda: kernels.empirical_ck(X_SMALL, [4, 3], LAYERS2, 1, tgen(),
                                                weights=sampler), "weights")


NOT_AXES = st.sampled_from([None, "ax", 3, [], {}, _Weird(), np.zeros(2)])


@SETTINGS
@given(bad=NOT_AXES)
def test_plotting_refuses_what_is_not_axes(bad):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        _raises_naming(lambda: plotting.spectrum_histogram(bad, np.ones(5)), "ax")
        _raises_naming(lambda: plotting.density_curve(bad, np.ones(3), np.ones(3)), "ax")
        _raises_naming(lambda: plotting.eigenvector_plot(bad, np.ones(4), LABELS8[:4]), "ax")
        _raises_naming(lambda: plotting.error_vs_size(bad, [1, 2], [1, 0.5]), "ax")
        _raises_naming(lambda: plotting.overlaid_spectra(bad, np.ones(5), np.ones(5)), "ax")
        _raises_naming(lambda: plotting.accuracy_memory_plot(bad, {}), "ax")
        _raises_naming(lambda: plotting.gram_demo_plot(bad, None), "axes")
        _raises_naming(lambda: plotting.equivalence_plot(bad, None), "axes")
        _raises_naming(lambda: plotting.compression_overlay_plot(bad, None), "axes")
        # objects of the wrong kind
        _raises_naming(lambda: plotting.gram_demo_plot([ax, ax, ax], bad), "demo")
        _raises_naming(lambda: plotting.equivalence_plot([ax, ax], bad), "comparison")
        _raises_naming(lambda: plotting.compression_overlay_plot([ax, ax], bad), "overlay")
        _raises_naming(lambda: plotting.spectrum_comparison_plot(ax, bad), "comparison")
        if bad is not None and not isinstance(bad, dict):
            _raises_naming(lambda: plotting.accuracy_memory_plot(ax, bad), "curves")
    finally:
        plt.close(fig)


def test_plotting_bad_lengths_and_curves():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        _raises_naming(lambda: plotting.eigenvector_plot(
            ax, np.ones(4), np.array([0, 1, 2, 1]), class_names=["a"]), "class_names")
        _raises_naming(lambda: plotting.eigenvector_plot(
            ax, np.ones(4), np.array([0.0, 1.0, 0.0, 1.0])), "labels")
        _raises_naming(lambda: plotting.overlaid_spectra(ax, np.ones(5), np.ones(5),
                                                         labels="ab"), "labels")
        _raises_naming(lambda: plotting.accuracy_memory_plot(ax, {"dense": 3}), "curves")
        _raises_naming(lambda: plotting.accuracy_memory_plot(ax, {}, reference=3), "reference")
        _raises_naming(lambda: plotting.accuracy_memory_grid(np.array([[ax]]), {}), "curves")
        _raises_naming(lambda: plotting.accuracy_memory_grid(np.array([[ax]]), [[{}, {}]]),
                       "axes")
        _raises_naming(lambda: plotting.error_vs_size(ax, [1, 2], [1, 0.5, 0.2]), "sizes")
    finally:
        plt.close(fig)


@SETTINGS
@given(blob=st.binary(min_size=1, max_size=200))
def test_read_csv_of_binary_garbage_names_path(tmp_path, blob):
    path = tmp_path / "garbage.csv"
    path.write_bytes(b"\xff\xfe\xfa" + blob)  # not UTF-8
    _raises_naming(lambda: experiments.read_csv(path), "path")



def test_zz_report_probe_counts(capsys):
    """Runs last in this module: prints how many probes each entry point received."""
    total = sum(sum(v.values()) for v in PROBES.values())
    with capsys.disabled():
        if PROBES:
            outcomes: dict[str, int] = {}
            for v in PROBES.values():
                for k, c in v.items():
                    outcomes[k] = outcomes.get(k, 0) + c
            print(f"\n[bad-input probes] {total} calls over {len(PROBES)} entry points: "
                  + ", ".join(f"{k} {c}" for k, c in sorted(outcomes.items())))
    assert all("silently accepted" not in v and "other error" not in v for v in PROBES.values())
