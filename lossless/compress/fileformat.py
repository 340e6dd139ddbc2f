"""The saved file of a :class:`~lossless.compress.CompressedMLP`: 2-bit packed codes in
memory, entropy-coded sections on disk, a JSON header, a checksum and a format version."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lossless import _checks
from lossless.compress import codec

# =====================================================================================
# the packed network
# =====================================================================================

# 2-bit codes: 0 -> 0, 1 -> +1, 2 -> -1 (3 unused); four codes per byte, low bits first


def pack_ternary(values: torch.Tensor) -> torch.Tensor:
    """Pack a tensor with entries in {-1, 0, +1} (any sign-like values) into 2 bits each.

    Parameters
    ----------
    values : Tensor or array_like, any shape
        Entries in ``{-c, 0, c}`` for one magnitude ``c > 0`` (e.g. the ``±1/sqrt(1 − ε)``
        of :func:`ternary_weights`); only the sign of each entry is kept, so values of
        several magnitudes (which would be lost) and NaN/inf are refused.

    Returns
    -------
    Tensor, dtype uint8, shape (ceil(numel / 4),)
        Codes ``0 -> 0, +1 -> 1, -1 -> 2``, four per byte, first entry in the low bits.
    """
    arr = _checks.real_array(values, "values", nonempty=False, dtype=None)
    mags = np.abs(arr[arr != 0]).astype(np.float64)
    if mags.size and mags.min() < (1.0 - 1e-6) * mags.max():
        raise ValueError(f"values must be ternary, in {{-c, 0, c}} for one magnitude c (only "
                         f"the signs are packed), got non-zero magnitudes from "
                         f"{mags.min():.6g} to {mags.max():.6g}")
    arr = np.require(arr, requirements=["C", "W"])
    s = torch.sign(torch.from_numpy(arr)).reshape(-1).to(torch.int8)
    codes = torch.where(s < 0, torch.tensor(2, dtype=torch.uint8),
                        s.to(torch.uint8))  # -1 -> 2, 0 -> 0, 1 -> 1
    pad = (-codes.numel()) % 4
    if pad:
        codes = torch.cat([codes, torch.zeros(pad, dtype=torch.uint8)])
    c = codes.reshape(-1, 4)
    return c[:, 0] | (c[:, 1] << 2) | (c[:, 2] << 4) | (c[:, 3] << 6)


def unpack_ternary(packed: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`pack_ternary`: int8 tensor of ``shape`` with entries in {-1, 0, 1}.

    Raises
    ------
    TypeError
        If ``packed`` is not a torch.Tensor or ``shape`` not a sequence of integers.
    ValueError
        If ``packed`` is not a 1-D uint8 tensor of the right length or holds the unused
        code 3, or ``shape`` has a negative entry.
    """
    if not isinstance(packed, torch.Tensor):
        raise TypeError(f"packed must be a 1-D uint8 torch.Tensor (from pack_ternary), got "
                        f"{_checks.describe(packed)}")
    shape = _check_shape(shape)
    numel = math.prod(shape)
    if packed.dtype != torch.uint8 or packed.ndim != 1 or packed.numel() != -(-numel // 4):
        raise ValueError(f"packed must be a 1-D uint8 tensor of length ceil({numel}/4) = "
                         f"{-(-numel // 4)}, got dtype {packed.dtype}, shape {tuple(packed.shape)}")
    fields = torch.stack([(packed >> (2 * k)) & 3 for k in range(4)], dim=1).reshape(-1)[:numel]
    if bool((fields == 3).any()):
        raise ValueError("packed holds the unused 2-bit code 3: not a pack_ternary output")
    lut = torch.tensor([0, 1, -1, 0], dtype=torch.int8)
    return lut[fields.long()].reshape(shape)


def _check_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (Sequence, np.ndarray)):
        raise TypeError(f"shape must be a sequence of integers >= 0, got {_checks.describe(shape)}")
    return tuple(_checks.integer(d, f"shape[{i}]", minimum=0) for i, d in enumerate(shape))


#: Saved-file layout: ``_MAGIC``, one line of JSON header (format, version, payload size
#: and its SHA-256), then the payload. Version 3 (written): one line of JSON metadata
#: (sizes, thresholds, codec, the sections' shapes and byte counts), then each layer's
#: weight codes entropy-coded by :mod:`lossless.compress.codec` (at the entropy bound), then
#: the fp32 readout (little-endian). Version 2 (still read): a ``torch.save`` of
#: :meth:`CompressedMLP.state`, 2 bits per weight.
_FORMAT = "lossless.CompressedMLP"
_FORMAT_VERSION = 3
_READ_VERSIONS = (2, 3)
_MAGIC = b"lossless.CompressedMLP\n"
_MAX_HEADER = 4096


def pack_file(payload: bytes, version: int = _FORMAT_VERSION) -> bytes:
    """A saved file: the magic line, a JSON header (format, version, payload size, SHA-256 of
    the payload) and the payload."""
    header = {"format": _FORMAT, "version": version, "payload_bytes": len(payload),
              "sha256": hashlib.sha256(payload).hexdigest()}
    return _MAGIC + json.dumps(header, sort_keys=True).encode("ascii") + b"\n" + payload


def unpack_file(data: bytes, where: str) -> tuple[int, bytes]:
    """The format version and checked payload of a saved file (``where`` names it in the
    errors)."""
    if not data.startswith(_MAGIC):
        hint = (" (a zip archive: an unversioned file of an older lossless, format 1 without "
                "checksum, or another torch.save file; re-save the model)"
                if data[:2] == b"PK" else "")
        raise ValueError(f"{where} is not a saved CompressedMLP: it does not start with the "
                         f"line {_MAGIC.decode().strip()!r}{hint}")
    end = data.find(b"\n", len(_MAGIC), len(_MAGIC) + _MAX_HEADER)
    if end < 0:
        raise ValueError(f"{where} is not a valid CompressedMLP file: its header line is "
                         "missing or truncated")
    try:
        header = json.loads(data[len(_MAGIC):end].decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{where} has a corrupted header: {err}") from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"{where} has a corrupted header: {header!r}")
    version = header.get("version")
    if version not in _READ_VERSIONS or isinstance(version, bool):
        raise ValueError(f"{where} has format version {version!r}; this version of lossless "
                         f"reads CompressedMLP files of versions {list(_READ_VERSIONS)}")
    size, digest = header.get("payload_bytes"), header.get("sha256")
    if not (isinstance(size, int) and not isinstance(size, bool) and size >= 0
            and isinstance(digest, str) and len(digest) == 64):
        raise ValueError(f"{where} has a corrupted header: {header!r}")
    payload = data[end + 1:]
    if len(payload) != size:
        what = "truncated" if len(payload) < size else "longer than its header says"
        raise ValueError(f"{where} is {what}: the header announces {size} payload bytes, the "
                         f"file holds {len(payload)}")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise ValueError(f"{where} is corrupted: the SHA-256 of its payload does not match "
                         "the one in its header")
    return version, payload


def _encode_payload(state: dict[str, Any], codes: Sequence[np.ndarray]) -> bytes:
    """Version-3 payload: a JSON line (``state`` without tensors, the codec, the sections)
    then the entropy-coded codes of each layer and the fp32 readout."""
    blobs = [codec.encode_ternary(c) for c in codes]
    readout = state["readout"].detach().cpu().numpy().astype("<f4").tobytes()
    meta = {k: v for k, v in state.items() if k not in ("packed", "readout")}
    meta["codec"] = codec.CODEC
    meta["sections"] = ([{"name": f"codes_{i + 1}", "shape": list(c.shape), "bytes": len(b)}
                         for i, (c, b) in enumerate(zip(codes, blobs))]
                        + [{"name": "readout", "dtype": "<f4",
                            "shape": [int(state["readout"].numel())], "bytes": len(readout)}])
    line = json.dumps(meta, sort_keys=True, allow_nan=False).encode("ascii")
    return line + b"\n" + b"".join(blobs) + readout


def _decode_payload(payload: bytes) -> dict[str, Any]:
    """Inverse of :func:`_encode_payload`: the :meth:`CompressedMLP.state` dict (codes
    packed to 2 bits again), for :meth:`CompressedMLP._from_state`'s range checks."""
    end = payload.find(b"\n")
    if end < 0:
        raise ValueError("its metadata line is missing")
    try:
        meta = json.loads(payload[:end].decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"its metadata line does not parse ({err})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"its metadata must be a JSON object, got {_checks.describe(meta)}")
    if meta.get("codec") != codec.CODEC:
        raise ValueError(f"its codes are coded with {meta.get('codec')!r}; this version of "
                         f"lossless reads {codec.CODEC!r}")
    sections = meta.pop("sections", None)
    meta.pop("codec")
    if not isinstance(sections, list) or not sections or not all(
            isinstance(sec, dict) and isinstance(sec.get("bytes"), int)
            and not isinstance(sec.get("bytes"), bool) and sec["bytes"] >= 0
            and isinstance(sec.get("shape"), list) for sec in sections):
        raise ValueError(f"its sections are malformed: {sections!r}")
    if sum(sec["bytes"] for sec in sections) != len(payload) - end - 1:
        raise ValueError(f"its sections announce {sum(sec['bytes'] for sec in sections)} bytes, "
                         f"the payload holds {len(payload) - end - 1}")
    offset, packed = end + 1, []
    for sec in sections[:-1]:
        blob = payload[offset:offset + sec["bytes"]]
        offset += sec["bytes"]
        codes = codec.decode_ternary(blob, sec["shape"])
        packed.append(pack_ternary(codes))
    last = sections[-1]
    if last.get("name") != "readout" or last.get("dtype") != "<f4" or len(last["shape"]) != 1 \
            or last["bytes"] != 4 * last["shape"][0]:
        raise ValueError(f"its last section must be the fp32 readout, got {last!r}")
    readout = np.frombuffer(payload, dtype="<f4", count=last["shape"][0], offset=offset)
    meta["packed"] = packed
    meta["readout"] = torch.from_numpy(readout.astype(np.float32))
    meta["_shapes"] = [tuple(sec["shape"]) for sec in sections[:-1]]
    return meta
