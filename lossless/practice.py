"""Compression in practice (Chapter 5), one name for its three modules.

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

from lossless.readout import (  # noqa: F401
    class_targets,
    Readout,
    ridge_readout,
    shift_corrected_readout,
    RIDGE_GRID,
    validated_ridge_readout,
    kernel_ridge_predict,
    logistic_readout,
    ConvergenceError,
)
from lossless.baselines import (  # noqa: F401
    ACCOUNTINGS,
    binary_entropy,
    MemoryCost,
    dense_memory,
    ternary_memory,
    sparse_float_memory,
    matched_kept_fraction,
    magnitude_prune,
    naive_ternarize,
    random_sparsify,
    FeatureNetwork,
    dense_network,
    compressed_network,
    pruned_network,
    naive_ternary_network,
    random_sparse_network,
    narrow_widths,
    narrow_dense_network,
    DENSE_BITS,
)
from lossless.experiments import (  # noqa: F401
    Task,
    mixture_task,
    fashion_mnist_task,
    KernelAgreement,
    kernel_agreement,
    BASELINES,
    run_trial,
    summarize,
    curve_label,
    accuracy_memory_curves,
    format_table,
    FinetuneResult,
    finetune,
    run_finetune_trial,
    write_csv,
    read_csv,
    Table,
    PowerLaw,
    fit_power_law,
    kernel_target_alignment,
)

__all__ = [
    "Task",
    "mixture_task",
    "fashion_mnist_task",
    "class_targets",
    "Readout",
    "ridge_readout",
    "shift_corrected_readout",
    "RIDGE_GRID",
    "validated_ridge_readout",
    "kernel_ridge_predict",
    "logistic_readout",
    "ConvergenceError",
    "ACCOUNTINGS",
    "binary_entropy",
    "MemoryCost",
    "dense_memory",
    "ternary_memory",
    "sparse_float_memory",
    "matched_kept_fraction",
    "magnitude_prune",
    "naive_ternarize",
    "random_sparsify",
    "FeatureNetwork",
    "dense_network",
    "compressed_network",
    "pruned_network",
    "naive_ternary_network",
    "random_sparse_network",
    "narrow_widths",
    "narrow_dense_network",
    "KernelAgreement",
    "kernel_agreement",
    "BASELINES",
    "run_trial",
    "summarize",
    "curve_label",
    "accuracy_memory_curves",
    "format_table",
    "FinetuneResult",
    "finetune",
    "run_finetune_trial",
    "write_csv",
    "read_csv",
    "Table",
    "PowerLaw",
    "fit_power_law",
    "kernel_target_alignment",
]
