"""The fast closed-form paths of the exact kernels (lossless._fastkernels) against the
generic duals of lossless._dual, and the properties of the fused recursion: exact
symmetry, independence of strips, threads and block sizes (to rounding, since BLAS may
sum the Gram matrix in another order), the torch backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lossless import _fastkernels as F
from lossless import activations as A
from lossless import kernels


def fast_activations():
    return [
        A.get("relu"),
        A.get("leaky_relu", slope=0.1),
        A.get("abs"),
        A.get("linear"),
        A.PiecewiseLinear([0.0], [0.3, -1.2], offset=0.5),
        A.get("sign"),
        A.get("step"),
        A.PiecewiseConstant([0.0], [1.5], base=0.2),
        A.get("erf"),
        A.get("erf", sharpness=3.0),
    ]


def data(n, p, seed=0):
    X = np.random.default_rng(seed).standard_normal((n, p)) / math.sqrt(p)
    X[1] = 0.9 * X[0] + 0.1 * X[1]  # a strongly correlated pair
    return X


def test_fast_path_is_chosen_by_the_activation():
    for act in fast_activations():
        assert isinstance(act.fast_kernel(), F.FastStep), act
    for act in (A.get("tanh"), A.get("sigmoid"), A.get("step", r=0.4), A.get("sin"),
                A.get("quadratic"), A.get("ternary", s_minus=-0.3, s_plus=0.5),
                A.PiecewiseLinear([0.0], [0.5, 1.0], jumps=[0.3]),
                A.Custom(np.tanh, name="custom_tanh")):
        assert act.fast_kernel() is None, act


@pytest.mark.parametrize("act", fast_activations(), ids=repr)
def test_fast_dual_matches_generic_dual(act):
    """Values, derivative kernels and diagonals, |rho| up to 0.999, to 1e-13."""
    rng = np.random.default_rng(1)
    s = rng.uniform(0.3, 2.0, size=12)
    rho = np.clip(rng.uniform(-1, 1, size=(12, 12)), -0.999, 0.999)
    rho = (rho + rho.T) / 2
    np.fill_diagonal(rho, 0.0)
    centre = 0.37
    fast = act.fast_kernel().dual(s, centre)
    generic = act.dual(s, centre=centre, max_correlation=1.0)
    full = slice(None)
    np.testing.assert_allclose(fast.values(full, full, rho), generic.values(full, full, rho),
                               rtol=1e-13, atol=1e-14)
    off = ~np.eye(12, dtype=bool)
    np.testing.assert_allclose(fast.derivatives(full, full, rho)[off],
                               generic.derivatives(full, full, rho)[off], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(fast.diagonal_values(), generic.diagonal_values(), rtol=1e-13)
    np.testing.assert_array_equal(np.isinf(fast.diagonal_derivatives()), act.has_jumps)
    if not act.has_jumps:
        np.testing.assert_allclose(fast.diagonal_derivatives(), generic.diagonal_derivatives(),
                                   rtol=1e-13)


@pytest.mark.parametrize("names", [["relu"] * 3, ["erf", "abs", "leaky_relu"],
                                   ["sign", "relu"], ["linear", "erf", "step"]])
def test_fused_recursion_matches_the_generic_recursion(names):
    """Three layers, CK and NTK (off-diagonal with jumps), to 1e-12 relative."""
    X = data(40, 25)
    layers = [A.get(n) for n in names]
    ck, ntk = kernels.exact_kernels(X, layers, diagonal="nan")
    taus = A.layer_scales(layers, math.sqrt(np.mean(np.sum(X * X, 1))))
    centres = [a.moments(t).m for a, t in zip(layers, taus)]
    # the generic layer-by-layer loop with the activations' generic duals
    orig = kernels._fast_step
    kernels._fast_step = lambda act: None
    try:
        ck_ref, ntk_ref = kernels._generic_recursion(X, layers, [None] * len(layers), centres,
                                                     True, None)
    finally:
        kernels._fast_step = orig
    scale = np.abs(ck_ref).max()
    np.testing.assert_allclose(ck, ck_ref, rtol=1e-12, atol=1e-14 * scale)
    off = ~np.eye(40, dtype=bool)
    np.testing.assert_allclose(ntk[off], ntk_ref[off], rtol=1e-12,
                               atol=1e-14 * np.abs(ntk_ref[off]).max())
    if any(a.has_jumps for a in layers):
        assert np.all(np.isnan(np.diag(ntk)))
    else:
        np.testing.assert_allclose(np.diag(ntk), np.diag(ntk_ref), rtol=1e-13)


def test_mixed_stack_uses_fast_duals_in_the_generic_loop():
    """relu, tanh, erf: the loop runs layer by layer; same result as the Monte Carlo-checked
    generic duals to 1e-12."""
    X = data(30, 20, seed=2)
    layers = [A.get("relu"), A.get("tanh"), A.get("erf")]
    ck, ntk = kernels.exact_kernels(X, layers)
    orig = kernels._fast_step
    kernels._fast_step = lambda act: None
    try:
        ck_ref, ntk_ref = kernels.exact_kernels(X, layers)
    finally:
        kernels._fast_step = orig
    np.testing.assert_allclose(ck, ck_ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ntk, ntk_ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(ck, ck.T)
    np.testing.assert_array_equal(ntk, ntk.T)


@pytest.mark.parametrize("names", [["relu"] * 3, ["erf"] * 2, ["sign", "abs"]])
def test_fused_kernels_exactly_symmetric_and_independent_of_strips_and_threads(names):
    X = data(300, 40, seed=3)
    layers = [A.get(n) for n in names]
    ck, ntk = kernels.exact_kernels(X, layers, diagonal="nan")
    np.testing.assert_array_equal(ck, ck.T)
    np.testing.assert_array_equal(ntk, ntk.T)
    again = kernels.exact_kernels(X, layers, diagonal="nan")  # same call: bitwise
    np.testing.assert_array_equal(again[0], ck)
    np.testing.assert_array_equal(again[1], ntk)
    off = ~np.eye(300, dtype=bool)
    steps = [a.fast_kernel() for a in layers]
    taus = A.layer_scales(layers, math.sqrt(np.mean(np.sum(X * X, 1))))
    centres = [a.moments(t).m for a, t in zip(layers, taus)]
    for block_rows, threads in ((1, 1), (7, 2), (300, 3)):
        ck2, ntk2 = F.recursion(X, steps, centres, ntk=True, block_rows=block_rows,
                                threads=threads)
        # the Gram entries may round differently: compare with a tolerance
        np.testing.assert_allclose(ck2, ck, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(ntk2[off], ntk[off], rtol=1e-13, atol=1e-15)
        np.testing.assert_array_equal(ck2, ck2.T)
    np.testing.assert_allclose(kernels.exact_ck(X, layers, block_size=5), ck, rtol=1e-13,
                               atol=1e-15)


def test_fused_recursion_memory_stays_near_two_matrices():
    import tracemalloc

    X = data(1024, 30, seed=4)
    tracemalloc.start()
    kernels.exact_kernels(X, [A.get("relu")] * 3)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2.2 * 1024 * 1024 * 8 + 16 * 2**20, f"peak {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("names", [["relu"] * 3, ["erf", "leaky_relu"], ["sign", "relu"]])
def test_torch_backend_matches_numpy(names):
    torch = pytest.importorskip("torch")
    X = data(50, 20, seed=5)
    layers = [A.get(n) for n in names]
    ck, ntk = kernels.exact_kernels(X, layers, diagonal="nan")
    ck_t, ntk_t = kernels.exact_kernels(X, layers, diagonal="nan", backend="torch")
    assert isinstance(ck_t, np.ndarray) and ck_t.dtype == np.float64
    np.testing.assert_allclose(ck_t, ck, rtol=1e-12, atol=1e-15)
    off = ~np.eye(50, dtype=bool)
    np.testing.assert_allclose(ntk_t[off], ntk[off], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(np.isnan(np.diag(ntk_t)), np.isnan(np.diag(ntk)))
    np.testing.assert_array_equal(ck_t, ck_t.T)
    # a CPU tensor input stays on the NumPy backend by default
    ck_in = kernels.exact_ck(torch.as_tensor(X), layers)
    np.testing.assert_allclose(ck_in, ck, rtol=1e-14, atol=1e-16)


def test_torch_backend_refuses_layers_without_fast_path():
    pytest.importorskip("torch")
    X = data(10, 5)
    with pytest.raises(ValueError, match=r"backend='torch'.*layers\[1\] = tanh"):
        kernels.exact_ck(X, [A.get("relu"), A.get("tanh")], backend="torch")
    with pytest.raises(ValueError, match="backend must be one of"):
        kernels.exact_ck(X, [A.get("relu")], backend="jax")
    with pytest.raises(ValueError, match="device"):
        kernels.exact_ck(X, [A.get("relu")], backend="torch", device="nowhere")
    with pytest.raises(TypeError, match="device"):
        kernels.exact_ck(X, [A.get("relu")], backend="torch", device=3.5)


def test_blas_thread_count_is_restored():
    """The Gram blocks run on our threads with a one-thread OpenBLAS; its setting comes back."""
    blas = F._SingleThreadedBlas()
    if not blas.available:
        pytest.skip("no BLAS whose thread count threadpoolctl can set")
    get = F._SingleThreadedBlas.num_threads
    before = get()
    X = data(600, 30, seed=6)
    ck = kernels.exact_ck(X, [A.get("relu")] * 2)
    assert get() == before
    with blas:
        assert get() == 1
        with blas:  # nested (or concurrent) users: restored only when the last one leaves
            assert get() == 1
        assert get() == 1
    assert get() == before
    # the Gram by our threads equals the Gram by BLAS threads, to rounding
    ck1 = F.recursion(X, [A.get("relu").fast_kernel()] * 2,
                      [A.get("relu").moments(t).m for t in
                       A.layer_scales([A.get("relu")] * 2, math.sqrt(np.mean(np.sum(X * X, 1))))[:2]],
                      ntk=False, threads=1)[0]
    np.testing.assert_allclose(ck1, ck, rtol=1e-13, atol=1e-15)
