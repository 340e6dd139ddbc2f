"""Compression in practice (chapter 7, ``05_practice``), one name for its three modules.

The paper's protocol (random hidden weights, a trained readout on the last-layer
features) and the comparison at equal memory live in three modules, each named for
what a reader looks for:

- :mod:`lossless.readout`: ridge (plain, shift-corrected, validated), kernel ridge and
  logistic readouts;
- :mod:`lossless.baselines`: the networks compared (dense, compressed, pruned, naive
  ternary, randomly sparsified, narrower) and their memory under both accountings;
- :mod:`lossless.experiments`: tasks, trials, fine-tuning, summaries, tables and
  results files.

This module re-exports their public names, so ``practice.ridge_readout`` and the like
keep working.
"""

from __future__ import annotations

from lossless import baselines as _baselines
from lossless import experiments as _experiments
from lossless import readout as _readout
from lossless.baselines import *  # noqa: F401,F403
from lossless.experiments import *  # noqa: F401,F403
from lossless.readout import *  # noqa: F401,F403

__all__ = [*_readout.__all__, *_baselines.__all__, *_experiments.__all__]
