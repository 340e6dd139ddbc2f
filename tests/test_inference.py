"""The compressed network's integer inference path gives the reference's outputs."""

import numpy as np
import pytest
import torch

from lossless import activations, compress


@pytest.fixture(scope="module")
def net():
    plan = compress.compress([activations.get("relu")] * 3, 4.0)
    return compress.CompressedMLP.from_plan(plan, 40, [48, 32, 24], sparsity=0.5,
                                            generator=torch.Generator().manual_seed(3))


def test_int8_path_gives_the_float_paths_codes_and_the_references_outputs(net):
    if net._fast_path() is None:
        pytest.skip("this torch build has no oneDNN quantized linear")
    X = np.random.default_rng(1).standard_normal((37, 40)) * 4.0 / np.sqrt(40)
    fast = net.activation_codes(X, backend="int8")
    ref = net.activation_codes(X, backend="float")
    assert all(torch.equal(a, b) for a, b in zip(fast, ref))
    assert torch.allclose(net(X), net.to_reference()(X).detach(), atol=1e-12)
    one = net(X[:1], backend="int8")
    assert torch.allclose(one, net(X[:1], backend="float"), atol=1e-12)


def test_inputs_on_a_threshold_are_decided_as_in_float64(net):
    if net._fast_path() is None:
        pytest.skip("this torch build has no oneDNN quantized linear")
    # a sample whose first-layer pre-activation sits exactly on a threshold of neuron 0
    C = net.codes(0).to(torch.float64)
    k = int(torch.nonzero(C[0])[0])
    X = np.zeros((2, 40))
    X[:, k] = float(net.upper_0[0]) * float(C[0, k])
    X[1, k] = np.nextafter(X[1, k], np.inf) if C[0, k] > 0 else np.nextafter(X[1, k], -np.inf)
    fast = net.activation_codes(X, backend="int8")[0]
    ref = net.activation_codes(X, backend="float")[0]
    assert torch.equal(fast, ref)


def test_backend_is_checked(net):
    with pytest.raises(ValueError, match="backend"):
        net.activation_codes(np.zeros((1, 40)), backend="gpu")
    assert net.runtime_bytes()["packed"] == sum(
        getattr(net, f"packed_{i}").numel() for i in range(3))
