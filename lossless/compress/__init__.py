"""The ternary compression construction of the book's compression chapter
(eq-compress-ternary, eq-compress-equations), one idea per module:

- :mod:`~lossless.compress.solver`: one layer's moment equations for a two-threshold
  ternary activation σ^t (closed-form Gaussian moments, the matched-ratio curve,
  :func:`solve_layer`);
- :mod:`~lossless.compress.plan`: every layer in turn, :func:`compress` ->
  :class:`CompressionPlan`;
- :mod:`~lossless.compress.last_layer`: the last layer's limit (Hermite energy, richer
  level families);
- :mod:`~lossless.compress.reach`: what the construction can and cannot reach
  (:func:`low_order_share`, :func:`two_threshold_share_bound`, :func:`root_paths`,
  :func:`ntk_diagonal_slopes`);
- :mod:`~lossless.compress.network`: the packed network :class:`CompressedMLP` and its
  float, int8 and CSR paths; :mod:`~lossless.compress.int8` its int8 engine;
  :mod:`~lossless.compress.ternary_engine` the bit-plane/zero-skipping engine (numba);
- :mod:`~lossless.compress.fileformat` and :mod:`~lossless.compress.codec`: the saved
  file and its entropy coder.

The first layer's weight law enters the limit through its fourth cumulant (the book's
section sec-first-layer-law). Memory is counted by :mod:`lossless.memory`;
:func:`lossless.networks.ternary_weights` is re-exported here.
"""

from lossless.compress.fileformat import pack_ternary, unpack_ternary
from lossless.compress.last_layer import (
                                     LevelsSolution,
                                     hermite_energy,
                                     last_layer_levels,
)
from lossless.compress.network import CompressedMLP
from lossless.compress.plan import CompressionPlan, compress
from lossless.compress.reach import (
                                     RootPath,
                                     ShareBound,
                                     low_order_share,
                                     ntk_diagonal_slopes,
                                     root_paths,
                                     two_threshold_share_bound,
)
from lossless.compress.solver import (
                                     Candidate,
                                     CompressionError,
                                     LayerSolution,
                                     solve_layer,
                                     ternary_shape_moments,
)
from lossless.networks import ternary_weights

__all__ = [
    "ternary_weights",
    "CompressionError",
    "Candidate",
    "LayerSolution",
    "CompressionPlan",
    "solve_layer",
    "compress",
    "ternary_shape_moments",
    "hermite_energy",
    "LevelsSolution",
    "last_layer_levels",
    "low_order_share",
    "ShareBound",
    "two_threshold_share_bound",
    "RootPath",
    "root_paths",
    "ntk_diagonal_slopes",
    "pack_ternary",
    "unpack_ternary",
    "CompressedMLP",
]
