"""Tests of the CompressedMLP file format (version 2): a header with the format version and
the SHA-256 of the payload, range checks on load, and clear errors naming the file for
corrupted, truncated or out-of-range files."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch

from lossless import activations, compress

TAU0 = 1.0


@pytest.fixture(scope="module")
def net():
    plan = compress.compress([activations.get("relu")] * 2, TAU0)
    return compress.CompressedMLP.from_plan(plan, 12, [10, 6], sparsity=0.5,
                                            generator=torch.Generator().manual_seed(3))


def _inputs(n=9, p=12):
    X = torch.randn(n, p, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return X * TAU0 / math.sqrt(p)


def _split(data: bytes) -> tuple[bytes, dict, bytes]:
    magic = b"lossless.CompressedMLP\n"
    assert data.startswith(magic)
    end = data.index(b"\n", len(magic))
    return magic, json.loads(data[len(magic):end]), data[end + 1:]


def _write_state(path, state, header_changes=None):
    """A file with a valid checksum for an arbitrary state (to test the range checks)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    data = compress._pack_file(buf.getvalue())
    if header_changes:
        magic, header, payload = _split(data)
        header.update(header_changes)
        data = magic + json.dumps(header).encode() + b"\n" + payload
    path.write_bytes(data)
    return path


def test_round_trip_is_exact(net, tmp_path):
    path = tmp_path / "net.lossless"
    nbytes = net.save(path)
    assert nbytes == path.stat().st_size == len(net.to_bytes())
    loaded = compress.CompressedMLP.load(path)
    X = _inputs()
    assert torch.equal(loaded(X), net(X))
    for i in range(net.depth):
        assert torch.equal(loaded.codes(i), net.codes(i))
    assert torch.equal(loaded.readout, net.readout)
    assert loaded.layers == net.layers or all(
        (a.s_minus, a.s_plus, a.scale, a.odd) == (b.s_minus, b.s_plus, b.scale, b.odd)
        for a, b in zip(loaded.layers, net.layers))
    assert (loaded.p, loaded.widths, loaded.tau0, loaded.sparsity) == \
        (net.p, net.widths, net.tau0, net.sparsity)
    # from_bytes is the same reader
    assert torch.equal(compress.CompressedMLP.from_bytes(net.to_bytes())(X), net(X))


def test_header_has_version_size_and_sha256(net):
    import hashlib

    _, header, payload = _split(net.to_bytes())
    assert header["format"] == "lossless.CompressedMLP" and header["version"] == 2
    assert header["payload_bytes"] == len(payload)
    assert header["sha256"] == hashlib.sha256(payload).hexdigest()


@pytest.mark.parametrize("where", ["header", "payload start", "payload middle", "payload end"])
def test_a_flipped_byte_is_refused_naming_the_file(net, tmp_path, where):
    data = bytearray(net.to_bytes())
    magic, _, payload = _split(bytes(data))
    start = len(data) - len(payload)
    index = {"header": len(magic) + 5, "payload start": start,
             "payload middle": start + len(payload) // 2, "payload end": len(data) - 1}[where]
    data[index] ^= 0x01
    path = tmp_path / "flipped.lossless"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="flipped.lossless"):
        compress.CompressedMLP.load(path)


def test_a_flipped_byte_in_the_readout_is_caught_by_the_checksum(net, tmp_path):
    """The issue's case: one flipped exponent bit of the readout changed outputs by 6e37."""
    data = bytearray(net.to_bytes())
    raw = net.readout.numpy().tobytes()
    index = bytes(data).index(raw) + 3  # high byte of the first float32 (sign/exponent)
    data[index] ^= 0x40
    path = tmp_path / "readout.lossless"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"readout\.lossless.*(corrupted|SHA-256)"):
        compress.CompressedMLP.load(path)


@pytest.mark.parametrize("keep", [0, 10, 40, 0.5, -1])
def test_a_truncated_file_is_refused_naming_the_file(net, tmp_path, keep):
    data = net.to_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) - 1)
    path = tmp_path / "cut.lossless"
    path.write_bytes(data[:n])
    with pytest.raises(ValueError, match="cut.lossless"):
        compress.CompressedMLP.load(path)


def test_trailing_bytes_are_refused(net, tmp_path):
    path = tmp_path / "long.lossless"
    path.write_bytes(net.to_bytes() + b"\0")
    with pytest.raises(ValueError, match="long.lossless.*longer"):
        compress.CompressedMLP.load(path)


@pytest.mark.parametrize("version", [1, 3, "2", None, True])
def test_another_format_version_is_refused(net, tmp_path, version):
    path = _write_state(tmp_path / "v.lossless", net.state(), {"version": version})
    with pytest.raises(ValueError, match=r"v\.lossless.*version"):
        compress.CompressedMLP.load(path)


def test_an_old_unversioned_file_is_refused_with_a_hint(net, tmp_path):
    state = dict(net.state(), format="lossless.CompressedMLP/1")
    del state["version"]
    path = tmp_path / "old.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"old\.pt.*not a saved CompressedMLP.*older"):
        compress.CompressedMLP.load(path)


def _bad_states(net):
    state = net.state()
    nan_readout = state["readout"].clone()
    nan_readout[1] = float("nan")
    inf_readout = state["readout"].clone()
    inf_readout[0] = float("inf")
    code3 = state["packed"][0].clone()
    code3[0] = 255
    short = state["packed"][1][:-1].clone()
    layers_nan = [dict(d) for d in state["layers"]]
    layers_nan[0]["s_plus"] = float("nan")
    layers_scale = [dict(d) for d in state["layers"]]
    layers_scale[1]["scale"] = -1.0
    layers_order = [dict(d) for d in state["layers"]]
    layers_order[0]["s_minus"], layers_order[0]["s_plus"] = 5.0, -5.0
    return {
        "NaN in readout": (dict(state, readout=nan_readout), "readout.*finite"),
        "inf in readout": (dict(state, readout=inf_readout), "readout.*finite"),
        "float64 readout": (dict(state, readout=state["readout"].double()), "readout"),
        "short readout": (dict(state, readout=state["readout"][:-1].clone()), "readout"),
        "code 3": (dict(state, packed=[code3, state["packed"][1]]), "code 3"),
        "short packed": (dict(state, packed=[state["packed"][0], short]), "packed"),
        "missing layer": (dict(state, packed=state["packed"][:1]), "packed"),
        "NaN threshold": (dict(state, layers=layers_nan), "s_plus"),
        "negative scale": (dict(state, layers=layers_scale), "scale"),
        "swapped thresholds": (dict(state, layers=layers_order), "s_minus|s_plus"),
        "NaN tau0": (dict(state, tau0=float("nan")), "tau0"),
        "sparsity 1": (dict(state, sparsity=1.0), "sparsity"),
        "float p": (dict(state, p=12.0), "p"),
        "wrong p": (dict(state, p=13), "packed"),
        "float width": (dict(state, widths=[10.0, 6]), "widths"),
        "missing key": ({k: v for k, v in state.items() if k != "tau0"}, "missing"),
        "not a dict": ([1, 2, 3], "dict"),
    }


BAD_STATES = ["NaN in readout", "inf in readout", "float64 readout", "short readout", "code 3",
              "short packed", "missing layer", "NaN threshold", "negative scale",
              "swapped thresholds", "NaN tau0", "sparsity 1", "float p", "wrong p",
              "float width", "missing key", "not a dict"]


@pytest.mark.parametrize("case", BAD_STATES)
def test_out_of_range_state_is_refused_naming_the_file(net, tmp_path, case):
    state, match = _bad_states(net)[case]
    path = _write_state(tmp_path / "bad.lossless", state)
    with pytest.raises(ValueError, match="bad.lossless") as err:
        compress.CompressedMLP.load(path)
    assert err.match(match)


def test_load_and_save_refuse_bad_paths(net, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        compress.CompressedMLP.load(tmp_path / "missing.lossless")
    with pytest.raises(TypeError, match="path"):
        compress.CompressedMLP.load(3)
    with pytest.raises(TypeError, match="path"):
        net.save(None)
    with pytest.raises(TypeError, match="data"):
        compress.CompressedMLP.from_bytes("not bytes")
    with pytest.raises(ValueError, match="not a saved CompressedMLP"):
        compress.CompressedMLP.from_bytes(b"")
