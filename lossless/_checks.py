"""Argument checks shared by every public entry point of :mod:`lossless`.

One message style everywhere: ``"<name> must be <what is allowed>, got <what came>"``.
A wrong *kind* of value (a string, a complex number, a float where an integer belongs, a
tensor that requires grad) raises :class:`TypeError`; a value of the right kind outside
what is allowed (NaN, inf, a wrong shape, a number out of range) raises
:class:`ValueError`. Nothing here converts silently: numeric strings are refused, float
widths are not truncated, complex parts are not dropped, ``np.float32`` scalars are
promoted to Python floats (float64) before any computation.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any, Callable, Iterable, Sequence

import numpy as np

__all__ = [
    "describe",
    "is_torch",
    "feature_matrix",
    "real",
    "positive",
    "fraction",
    "integer",
    "flag",
    "choice",
    "tolerance",
    "seed",
    "numpy_generator",
    "torch_generator",
    "float_dtype",
    "real_array",
    "square_symmetric",
    "symmetrize",
    "finite_output",
    "no_overflow",
    "magnitude",
    "SCALE_RANGE",
    "input_scale",
    "allocation",
    "probability_vector",
    "axes",
    "has_attributes",
    "int_sequence",
    "layer_widths",
    "path",
]


def describe(value: Any) -> str:
    """A short, safe description of ``value`` for an error message."""
    if is_torch(value):
        return f"a torch.Tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        if value.size <= 6:
            return f"array({value.tolist()!r}, dtype={value.dtype})"
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return text


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch when it is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


# ----------------------------------------------------------------------------------
# scalars
# ----------------------------------------------------------------------------------
def _real_scalar(value: Any, name: str, what: str) -> float:
    """``value`` as a Python float if it is a real number (not bool, str, complex)."""
    if is_torch(value) or isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise TypeError(f"{name} must be {what}, got {describe(value)}")
        if is_torch(value):
            if value.is_complex() or value.dtype == sys.modules["torch"].bool:
                raise TypeError(f"{name} must be {what}, got {describe(value)}")
            value = value.item()
        else:
            if value.dtype.kind not in "iuf":
                raise TypeError(f"{name} must be {what}, got {describe(value)}")
            value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {what}, got {describe(value)}")
    try:
        return float(value)
    except OverflowError:  # a Python int too large for a float
        raise ValueError(f"{name} must be {what}, got {describe(value)}") from None


def real(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number, optionally in an interval, as a Python float."""
    lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
    what = "a finite real number" + (f" in {lo or '(-inf'}, {hi or 'inf)'}" if lo or hi else "")
    x = _real_scalar(value, name, what)
    ok = math.isfinite(x)
    if ok and low is not None:
        ok = x > low if low_open else x >= low
    if ok and high is not None:
        ok = x < high if high_open else x <= high
    if not ok:
        raise ValueError(f"{name} must be {what}, got {describe(value)}")
    return x


def positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (>= 0 with ``allow_zero``) as a Python float."""
    what = "a finite real number " + (">= 0" if allow_zero else "> 0")
    x = _real_scalar(value, name, what)
    if not (math.isfinite(x) and (x >= 0.0 if allow_zero else x > 0.0)):
        raise ValueError(f"{name} must be {what}, got {describe(value)}")
    return x


def fraction(value: Any, name: str, *, low_open: bool = False, high_open: bool = True) -> float:
    """A real number in [0, 1] with the stated open ends (default [0, 1))."""
    return real(value, name, low=0.0, high=1.0, low_open=low_open, high_open=high_open)


def tolerance(value: Any, name: str = "tol") -> float:
    """A finite tolerance > 0."""
    return positive(value, name)


def integer(
    value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """An integer (Python or NumPy; not bool, not a float) in [minimum, maximum]."""
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum}")
    if maximum is not None:
        bounds.append(f"<= {maximum}")
    what = "an integer" + (" " + " and ".join(bounds) if bounds else "")
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu":
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {what}, got {describe(value)}")
    out = int(value)
    if (minimum is not None and out < minimum) or (maximum is not None and out > maximum):
        raise ValueError(f"{name} must be {what}, got {out}")
    return out


def seed(value: Any, name: str = "seed") -> int:
    """A non-negative integer seed (below 2**63)."""
    return integer(value, name, minimum=0, maximum=2**63 - 1)


def flag(value: Any, name: str) -> bool:
    """A bool (Python or NumPy); anything else, 'no' or 1 included, is a TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {describe(value)}")
    return bool(value)


def choice(value: Any, name: str, allowed: Iterable[Any]) -> Any:
    """One of ``allowed`` (compared with ``==`` after a hashability check)."""
    allowed = tuple(allowed)
    try:
        ok = any(type(value) is type(a) and value == a for a in allowed)
    except Exception:  # noqa: BLE001 - an object whose == raises is not allowed
        ok = False
    if not ok:
        listed = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {listed}, got {describe(value)}")
    return value


def int_sequence(value: Any, name: str, *, minimum: int = 1, length: int | None = None) -> tuple[int, ...]:
    """A non-empty sequence of integers >= ``minimum`` (optionally of a given length)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of integers >= {minimum}, got {describe(value)}")
    items = list(value)
    if length is not None and len(items) != length:
        raise ValueError(f"{name} must have {length} entries, got {len(items)}: {describe(value)}")
    if not items:
        raise ValueError(f"{name} must be a non-empty sequence of integers >= {minimum}, got {describe(value)}")
    return tuple(integer(v, f"{name}[{i}]", minimum=minimum) for i, v in enumerate(items))


def layer_widths(value: Any, depth: int, name: str = "widths") -> tuple[int, ...]:
    """One positive integer width per layer (``depth`` of them)."""
    dims = int_sequence(value, name, minimum=1)
    if len(dims) != depth:
        raise ValueError(
            f"{name} must have one entry per layer (len(layers) = {depth}), got {len(dims)}: "
            f"{describe(value)}"
        )
    return dims


def path(value: Any, name: str = "path") -> Any:
    """A file-system path (str or os.PathLike, not bytes) as a :class:`pathlib.Path`."""
    import os
    from pathlib import Path

    if not isinstance(value, (str, os.PathLike)) or isinstance(value, bytes):
        raise TypeError(f"{name} must be a str or os.PathLike, got {describe(value)}")
    return Path(value)


# ----------------------------------------------------------------------------------
# generators and dtypes
# ----------------------------------------------------------------------------------
def numpy_generator(rng: Any, name: str = "rng") -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name} must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
            f"got {type(rng).__name__}"
        )
    return rng


def torch_generator(generator: Any, name: str = "generator") -> Any:
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{name} must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), "
            f"got {type(generator).__name__}"
        )
    return generator


def float_dtype(dtype: Any, name: str = "dtype", *, allow_none: bool = False) -> Any:
    """torch.float32 or torch.float64 (or None where allowed)."""
    import torch

    if dtype is None and allow_none:
        return None
    if dtype not in (torch.float32, torch.float64) or not isinstance(dtype, torch.dtype):
        raise TypeError(
            f"{name} must be torch.float32 or torch.float64"
            + (" or None" if allow_none else "")
            + f", got {describe(dtype)}"
        )
    return dtype


# ----------------------------------------------------------------------------------
# arrays
# ----------------------------------------------------------------------------------
def real_array(
    value: Any,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    shape: tuple[int | None, ...] | None = None,
    nonempty: bool = True,
    finite: bool = True,
    dtype: Any = np.float64,
    shape_hint: str | None = None,
) -> np.ndarray:
    """A real NumPy array (float64 by default) from an array, list or tensor.

    Refuses, with a message naming ``name``: None, strings, bytes, object and string
    arrays, complex values, booleans, tensors that require grad, wrong ``ndim`` or
    ``shape`` (``None`` in ``shape`` matches any length), empty arrays (``nonempty``),
    and NaN/inf (``finite``).
    """
    hint = f" {shape_hint}" if shape_hint else ""
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a real array{hint}, got {describe(value)}")
    if is_torch(value):
        if value.requires_grad:
            raise TypeError(
                f"{name} must not require grad (pass {name}.detach()), got {describe(value)}"
            )
        if value.is_complex():
            raise TypeError(f"{name} must be real, got {describe(value)}")
        value = value.detach().cpu().numpy()
    if isinstance(value, (numbers.Number, np.generic)) and not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be real, got {describe(value)}")
    try:
        arr = np.asarray(value)
    except Exception as err:  # ragged lists and the like
        raise TypeError(f"{name} must be a real array{hint}, got {describe(value)} ({err})") from None
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    if arr.dtype.kind == "b":
        raise TypeError(f"{name} must be a real array{hint}, got a boolean array")
    if arr.dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must be a real numeric array{hint}, got dtype {arr.dtype} "
            f"({describe(value)})"
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(
                f"{name} must have {' or '.join(str(a) for a in allowed)} dimension(s){hint}, "
                f"got shape {arr.shape}"
            )
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}{hint}, got shape {arr.shape}")
    if nonempty and arr.size == 0:
        raise ValueError(f"{name} must not be empty{hint}, got shape {arr.shape}")
    if dtype is not None:
        arr = np.asarray(arr, dtype=dtype)
    if finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} must be finite, got {bad} non-finite entries (NaN or inf)")
    return arr


def square_symmetric(
    value: Any, name: str, *, rtol: float = 1e-10, atol: float = 0.0
) -> np.ndarray:
    """A finite, real, square matrix equal to its transpose within ``rtol`` (relative to
    its largest entry), returned exactly symmetric (``(A + A.T) / 2``)."""
    arr = real_array(value, name, ndim=2, shape_hint="(n, n)")
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be square, got shape {arr.shape}")
    scale = float(np.max(np.abs(arr))) if arr.size else 0.0
    gap = float(np.max(np.abs(arr - arr.T))) if arr.size else 0.0
    if gap > atol + rtol * scale:
        raise ValueError(
            f"{name} must be symmetric, got max |{name} - {name}.T| = {gap:.3g} "
            f"(largest entry {scale:.3g}, allowed {atol + rtol * scale:.3g})"
        )
    return symmetrize(arr)


def symmetrize(A: Any) -> Any:
    """``(A + A^T) / 2``: exactly symmetric (floating-point addition commutes).

    Works on NumPy arrays and torch tensors (last two axes).
    """
    if is_torch(A):
        return (A + A.transpose(-1, -2)) * 0.5
    A = np.asarray(A)
    return (A + np.swapaxes(A, -1, -2)) * 0.5


def finite_output(values: Any, name: str, what: str = "values") -> Any:
    """Raise if a user-supplied callable returned NaN/inf (naming the callable)."""
    arr = values.detach().cpu().numpy() if is_torch(values) else np.asarray(values)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} returned {bad} non-finite {what} (NaN or inf)")
    return values


def check_callable(fn: Any, name: str) -> Callable:
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {describe(fn)}")
    return fn


# ----------------------------------------------------------------------------------
# overflow, sizes, probabilities, labels, plotting arguments
# ----------------------------------------------------------------------------------
def _largest(value: Any) -> str:
    """``max |value|`` (or the value itself for a scalar), for an overflow message."""
    try:
        arr = value.detach().cpu().numpy() if is_torch(value) else np.asarray(value, dtype=float)
        with np.errstate(all="ignore"):
            return f"{float(np.max(np.abs(arr))):.3g}" if arr.size else "n/a"
    except Exception:  # noqa: BLE001 - only for a message
        return describe(value)


def no_overflow(result: Any, name: str, value: Any, what: str = "the result") -> Any:
    """Raise ValueError if ``result`` (array, tensor or number) has NaN/inf entries although
    the input ``name`` (of value ``value``) was finite: the computation overflowed.

    The message names the input, its size (largest magnitude) and what is allowed.
    Inside ``torch.func`` transforms, where no value is readable, nothing is checked.
    """
    if is_torch(result):
        try:
            finite = bool(sys.modules["torch"].isfinite(result.detach()).all())
        except RuntimeError:  # vmap/grad transforms: values are not readable
            return result
        bad = 0 if finite else int((~sys.modules["torch"].isfinite(result.detach())).sum())
    else:
        arr = np.asarray(result)
        if arr.dtype.kind not in "fc":
            return result
        finite = bool(np.all(np.isfinite(arr)))
        bad = 0 if finite else int(np.count_nonzero(~np.isfinite(arr)))
    if not finite:
        size = "|" + name + "|" if np.ndim(value) == 0 and not is_torch(value) else f"max |{name}|"
        raise ValueError(
            f"{name} is too large: {what} overflows float64 ({bad} non-finite entries) with "
            f"{size} = {_largest(value)}; {name} must be small enough for the computation to "
            f"stay finite (inputs of order one are expected)"
        )
    return result


def magnitude(arr: Any, name: str, limit: float = 1e100) -> Any:
    """Raise ValueError if a finite array has an entry larger than ``limit`` in magnitude
    (its squares and products would overflow float64 in later statistics)."""
    a = np.asarray(arr)
    if a.size and a.dtype.kind in "iuf":
        big = float(np.max(np.abs(a)))
        if big > limit:
            raise ValueError(
                f"{name} must have entries of magnitude at most {limit:g} (larger ones "
                f"overflow float64 in the statistics computed from them), got max |{name}| = "
                f"{big:.3g}"
            )
    return arr


#: Input scales ``tau`` for which every Gaussian moment of an activation is representable
#: in float64 (``lossless.activations.TAU_RANGE``).
SCALE_RANGE = (1e-100, 1e100)


def input_scale(value: Any, name: str = "tau0") -> float:
    """A positive finite scale inside :data:`SCALE_RANGE` (an input scale ``tau0``)."""
    x = positive(value, name)
    lo, hi = SCALE_RANGE
    if not lo <= x <= hi:
        raise ValueError(
            f"{name} must be in [{lo:g}, {hi:g}] (the range where the Gaussian moments are "
            f"representable in float64), got {x:g}"
        )
    return x


def _memory_bytes() -> float:
    """Physical memory of this machine (bytes), or 2**40 if unknown."""
    import os

    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return float(2**40)


def allocation(shape: Any, name: str, value: Any, itemsize: int = 8,
               what: str = "an array") -> None:
    """Raise ValueError before allocating ``shape`` (or a number of entries) of
    ``itemsize`` bytes if it cannot fit in this machine's memory; the message names the
    argument ``name`` (of value ``value``) that asked for it."""
    entries = (math.prod(float(d) for d in shape) if isinstance(shape, (tuple, list))
               else float(shape))
    need = entries * itemsize
    have = _memory_bytes()
    if need > have:
        raise ValueError(
            f"{name} = {describe(value)} is too large: it needs {what} of {entries:.3g} entries "
            f"({need / 2**30:.3g} GiB), more than this machine's {have / 2**30:.3g} GiB of "
            f"memory; {name} must be smaller"
        )


def probability_vector(value: Any, name: str, length: int | None = None,
                       atol: float = 1e-8) -> np.ndarray:
    """A finite 1-D vector of non-negative entries summing to one (of ``length`` entries)."""
    arr = real_array(value, name, ndim=1, shape_hint="(K,) of proportions")
    if length is not None and arr.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},) (one entry per class), "
                         f"got shape {arr.shape}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative (a probability vector), got "
                         f"{describe(arr)}")
    total = float(arr.sum())
    if abs(total - 1.0) > atol:
        raise ValueError(f"{name} must sum to one (a probability vector), got sum {total:.10g}")
    return arr


def axes(value: Any, name: str = "ax", count: int | None = None) -> Any:
    """A matplotlib Axes (``count=None``) or a sequence/array of ``count`` Axes."""
    from matplotlib.axes import Axes

    if count is None:
        if not isinstance(value, Axes):
            raise TypeError(f"{name} must be a matplotlib Axes (e.g. from plt.subplots()), "
                            f"got {describe(value)}")
        return value
    if isinstance(value, Axes) or isinstance(value, (str, bytes)) or not isinstance(
            value, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of {count} matplotlib Axes (e.g. from "
                        f"plt.subplots(1, {count})), got {describe(value)}")
    items = list(np.ravel(np.asarray(value, dtype=object))) if isinstance(value, np.ndarray) \
        else list(value)
    if len(items) != count or not all(isinstance(a, Axes) for a in items):
        raise ValueError(f"{name} must be a sequence of {count} matplotlib Axes (e.g. from "
                         f"plt.subplots(1, {count})), got {describe(value)}")
    return items


def has_attributes(value: Any, name: str, attributes: Sequence[str], what: str) -> Any:
    """``value`` if it has every attribute in ``attributes`` (duck typing), else TypeError."""
    missing = [a for a in attributes if not hasattr(value, a)]
    if missing:
        raise TypeError(f"{name} must be {what}, got {describe(value)} (no attribute "
                        f"{missing[0]!r})")
    return value


def feature_matrix(value: Any, name: str = "F") -> np.ndarray:
    """Features or a design matrix: a real 2-D array, samples in rows."""
    return real_array(value, name, ndim=2, shape_hint="(n, d) (samples in rows)")
