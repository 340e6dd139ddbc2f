"""lossless.compress.codec: exact round trips at the entropy bound, and refusals."""

import numpy as np
import pytest
import torch

from lossless.compress.codec import decode_ternary, encode_ternary, entropy_bound_bits


def _ternary(rng, shape, eps):
    return rng.choice(np.array([0, 1, -1], dtype=np.int8), size=shape,
                      p=[eps, (1 - eps) / 2, (1 - eps) / 2])


@pytest.mark.parametrize("eps", [0.0, 0.5, 0.9, 0.99])
def test_round_trip_exact_and_at_the_entropy_bound(eps):
    rng = np.random.default_rng(3)
    W = _ternary(rng, (400, 500), eps)
    blob = encode_ternary(W)
    assert np.array_equal(decode_ternary(blob, W.shape), W)
    bound = entropy_bound_bits(W) / 8
    # 36 header bytes, plus ANS's final words and the model's fixed-point rounding
    assert len(blob) <= 1.002 * bound + 64, (len(blob), bound)
    # and far below the 2-bit packing as soon as there are zeros
    if eps >= 0.5:
        assert len(blob) < 0.8 * W.size / 4


def test_entropy_bound_is_the_binary_entropy_plus_the_sign_bit():
    rng = np.random.default_rng(0)
    eps = 0.9
    W = _ternary(rng, (1000, 1000), eps)
    h = -(eps * np.log2(eps) + (1 - eps) * np.log2(1 - eps)) + (1 - eps)
    assert entropy_bound_bits(W) / W.size == pytest.approx(h, rel=5e-3)


@pytest.mark.parametrize("codes", [np.zeros(0), np.zeros(17), np.ones(5), -np.ones((3, 4)),
                                   np.array([1, -1]), torch.tensor([[0, 1], [-1, 0]])])
def test_edge_arrays_round_trip(codes):
    arr = np.asarray(codes)
    got = decode_ternary(encode_ternary(codes), arr.shape)
    assert got.dtype == np.int8 and np.array_equal(got, arr)


def test_float_sign_values_are_accepted_as_codes():
    W = np.array([[0.0, 1.0], [-1.0, 1.0]])
    assert np.array_equal(decode_ternary(encode_ternary(W), (2, 2)), W.astype(np.int8))


@pytest.mark.parametrize("bad, match", [
    (np.array([0, 2]), "entries in"), (np.array([0.5]), "entries in"),
    (np.array([np.nan]), "finite"), (np.array([True]), "integer or float"),
    ("101", "integer or float")])
def test_bad_codes_are_refused(bad, match):
    with pytest.raises((TypeError, ValueError), match=match):
        encode_ternary(bad)


def test_damaged_blobs_are_refused():
    rng = np.random.default_rng(1)
    W = _ternary(rng, (50, 60), 0.9)
    blob = encode_ternary(W)
    with pytest.raises(ValueError, match="announces"):
        decode_ternary(blob[:-4], W.shape)
    with pytest.raises(ValueError, match="announces"):
        decode_ternary(blob + b"\0\0\0\0", W.shape)
    with pytest.raises(ValueError, match="truncated"):
        decode_ternary(blob[:10], W.shape)
    with pytest.raises(ValueError, match="has 3000 entries"):
        decode_ternary(encode_ternary(W[:, :-1]), (50, 60))
    with pytest.raises(ValueError, match="does not start"):
        decode_ternary(b"XXXX" + blob[4:], W.shape)
    with pytest.raises(TypeError, match="blob must be bytes"):
        decode_ternary("abc", W.shape)
    with pytest.raises(TypeError, match="shape must be"):
        decode_ternary(blob, "50x60")
