"""Tests of the CompressedMLP file format (version 3, entropy-coded codes; version 2 still
read): a header with the format version and the SHA-256 of the payload, range checks on
load, and clear errors naming the file for corrupted, truncated or out-of-range files."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch

from lossless import activations, compress
from lossless.compress import fileformat

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
    """A version-2 file (a torch.save of the state) with a valid checksum for an arbitrary
    state (to test the range checks, which both versions share)."""
    if isinstance(state, dict) and "version" in state:
        state = dict(state, version=2)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = fileformat.pack_file(buf.getvalue(), version=2)
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
    assert header["format"] == "lossless.CompressedMLP" and header["version"] == 3
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


@pytest.mark.parametrize("version", [1, 4, "2", None, True])
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


def test_version_2_files_still_load(net, tmp_path):
    path = _write_state(tmp_path / "v2.lossless", net.state())
    loaded = compress.CompressedMLP.load(path)
    X = _inputs()
    assert torch.equal(loaded(X), net(X))


@pytest.mark.parametrize("eps", [0.5, 0.9, 0.99])
def test_saved_codes_are_at_the_entropy_bound(eps):
    from lossless.compress import codec

    plan = compress.compress([activations.get("relu")] * 2, TAU0)
    big = compress.CompressedMLP.from_plan(plan, 300, [400, 200], sparsity=eps,
                                           generator=torch.Generator().manual_seed(1))
    data = big.to_bytes()
    loaded = compress.CompressedMLP.from_bytes(data)
    for i in range(big.depth):
        assert torch.equal(loaded.codes(i), big.codes(i))
    bound = sum(codec.entropy_bound_bits(big.codes(i).numpy())
                for i in range(big.depth)) / 8
    overhead = 4 * big.widths[-1] + 2048  # fp32 readout, headers and metadata
    assert len(data) <= 1.01 * bound + overhead, (len(data), bound)
    rep = big.memory_bits()
    assert rep.bits("saved file") == 8 * len(data)
    assert rep.bits("entropy bound of these") <= rep.bits("entropy-coded") \
        <= 1.01 * rep.bits("entropy bound of these") + 8 * 64 * big.depth


def _v3_parts(net):
    magic, header, payload = _split(net.to_bytes())
    end = payload.index(b"\n")
    return json.loads(payload[:end]), payload[end + 1:]


def _write_v3(path, meta, body):
    payload = json.dumps(meta).encode() + b"\n" + body
    path.write_bytes(fileformat.pack_file(payload, version=3))
    return path


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(codec="zlib/1"), "coded with"),
    (lambda m: m["sections"][0].update(shape=m["sections"][0]["shape"][::-1]), "shapes"),
    (lambda m: m["sections"][0].update(bytes=m["sections"][0]["bytes"] + 4), "announce"),
    (lambda m: m.update(sections="none"), "sections"),
    (lambda m: m.update(version=2), "version"),
    (lambda m: m["sections"][-1].update(dtype="<f8"), "readout"),
])
def test_damaged_version_3_metadata_is_refused(net, tmp_path, change, match):
    meta, body = _v3_parts(net)
    change(meta)
    path = _write_v3(tmp_path / "meta.lossless", meta, body)
    with pytest.raises(ValueError, match="meta.lossless") as err:
        compress.CompressedMLP.load(path)
    assert err.match(match)
