"""lossless: companion package of the book on "lossless" compression of deep networks.

Submodules are imported explicitly (``from lossless import data, activations``); this
file imports none of them, so each can be used on its own.

- ``lossless.data``: k-class Gaussian mixtures, samples and their statistics; IDX loader.
- ``lossless.activations``: activation objects, their Gaussian moments, the τ recursion.
- ``lossless.toolbox``: Gaussian quadrature, Hermite coefficients, Mehler series.
- ``lossless.kernels``: exact (infinite-width) and empirical CK/NTK matrices.
- ``lossless.networks``: the torch MLP of the book, its forward pass and weight distributions.
- ``lossless.theory``: the asymptotic equivalents of the CK/NTK.
- ``lossless.compress``: the ternary compression construction (a package: solver, plan,
  last layer, reach, the packed network, its engines and its file).
- ``lossless.memory``: the memory model (formats, entropy bound, the authors' count).
- ``lossless.dynamics``: gradient descent on the NTK, predicted and measured.
- ``lossless.explore``: the book's explorers (client-side) and live widgets, one module
  per chapter, with the comparisons they draw (``compare_*_spectra``).
- ``lossless.readout``: ridge, shift-corrected, validated, kernel ridge, logistic readouts.
- ``lossless.baselines``: the networks compared at equal memory.
- ``lossless.experiments``: tasks, trial runs, fine-tuning, width laws, tables, CSV.
- ``lossless.spectra``: spectral helpers, the operator norm, and ``SpectralComparison``
  (one kernel against a reference kernel).
- ``lossless.plotting``: figures.
- ``lossless.display``: text/HTML tables and progress bars.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
