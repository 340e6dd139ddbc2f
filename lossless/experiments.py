"""Experiment runs of the practice chapter: tasks, trials, fine-tuning, summaries and results files.

A :class:`Task` holds train and test samples (a Gaussian mixture of chapter 1 or
classes of Fashion-MNIST); :func:`run_trial` builds every network of
:mod:`lossless.baselines` for one seed and fits every readout of
:mod:`lossless.readout` (the paper's protocol: random hidden weights, a trained
readout); :func:`run_finetune_trial` trains all layers (a second protocol);
:func:`summarize`, :func:`accuracy_memory_curves` and :func:`format_table` turn the
rows into curves and tables, :func:`write_csv` / :func:`read_csv` store them.
"""

from __future__ import annotations

import csv
import html
import math
import numbers
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossless import _checks, compress, data, kernels, networks, spectra
from lossless.display import progress as progress_bar
from lossless.activations import Activation, check_layers
from lossless.baselines import (FeatureNetwork, _n_weights, _nonzero_fraction,
                                compressed_network, dense_network, naive_ternary_network,
                                narrow_dense_network, pruned_network, random_sparse_network)
from lossless.memory import (ACCOUNTINGS, DENSE_BITS, matched_kept_fraction,
                             ternary_memory)
from lossless.readout import (Readout, _check_labels,
                              class_targets, logistic_readout, ridge_readout,
                              shift_corrected_readout, validated_ridge_readout)

__all__ = [
    "Task",
    "mixture_task",
    "fashion_mnist_task",
    "KernelAgreement",
    "kernel_agreement",
    "BASELINES",
    "run_trial",
    "summarize",
    "curve_label",
    "accuracy_memory_curves",
    "format_table",
    "Table",
    "FinetuneResult",
    "finetune",
    "weights_accuracy",
    "run_finetune_trial",
    "write_csv",
    "read_csv",
    "PowerLaw",
    "fit_power_law",
    "kernel_target_alignment",
]


# =====================================================================================
# data: train/test tasks
# =====================================================================================


@dataclass(frozen=True, eq=False)
class Task:
    """A classification task: train and test samples (rows), labels in ``[0, K)``.

    Attributes
    ----------
    name : str
    X_train : ndarray, shape (n_train, p)
    y_train : ndarray of int, shape (n_train,)
    X_test : ndarray, shape (n_test, p)
    y_test : ndarray of int, shape (n_test,)
    K : int
        Number of classes.
    class_names : tuple of str
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    class_names: tuple = ()

    @property
    def p(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.X_test.shape[0])

    @property
    def tau0(self) -> float:
        """``sqrt(mean_i ||x_i||^2)`` over the training samples (used by every network)."""
        return float(np.sqrt(np.mean(np.einsum("ij,ij->i", self.X_train, self.X_train))))

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string, got {_checks.describe(self.name)}")
        K = _checks.integer(self.n_classes, "n_classes", minimum=2)
        X = _checks.real_array(self.X_train, "X_train", ndim=2, dtype=None,
                               shape_hint="(n_train, p)")
        _checks.real_array(self.X_test, "X_test", shape=(None, X.shape[1]), dtype=None,
                           shape_hint=f"(n_test, {X.shape[1]})")
        _check_labels(self.y_train, X.shape[0], K)
        _check_labels(self.y_test, np.shape(self.X_test)[0], K)

    def __repr__(self) -> str:
        return (f"Task({self.name!r}, p={self.p}, k={self.n_classes}, n_train={self.n_train}, "
                f"n_test={self.n_test}, tau0={self.tau0:.4g})")


def mixture_task(p: int, n_train: int, n_test: int, rng: np.random.Generator, *,
                 preset: str = "mixed", **params: Any) -> Task:
    """Train and test samples from a preset Gaussian mixture of :mod:`lossless.data`.

    Parameters
    ----------
    p : int
        Dimension.
    n_train, n_test : int
        Sample sizes (split into classes by :meth:`GaussianMixture.class_sizes`).
    rng : numpy.random.Generator
        Draws the training sample first, then the test sample.
    preset : str, default "mixed"
        Name passed to :func:`lossless.data.preset` (chapter 1's "mixed" mixture:
        means, traces and shapes all differ).
    **params
        Parameters of the preset (e.g. ``K``).

    Returns
    -------
    Task
    """
    n_train = _checks.integer(n_train, "n_train", minimum=1)
    n_test = _checks.integer(n_test, "n_test", minimum=1)
    rng = _checks.numpy_generator(rng, "rng")
    mixture = data.preset(preset, p, **params)
    _checks.allocation((n_train, mixture.p), "n_train", n_train, what="the training set")
    _checks.allocation((n_test, mixture.p), "n_test", n_test, what="the test set")
    train = mixture.sample(n_train, rng)
    test = mixture.sample(n_test, rng)
    return Task(name=f"gmm-{preset}", X_train=train.X, y_train=train.labels, X_test=test.X,
                y_test=test.labels, n_classes=mixture.n_classes,
                class_names=tuple(f"C{a + 1}" for a in range(mixture.n_classes)))


def fashion_mnist_task(classes: Sequence[int], n_train_per_class: int,
                       n_test_per_class: int | None, rng: np.random.Generator, *,
                       directory: Any = None) -> Task:
    """Fashion-MNIST classes with the split as shipped, normalised as in chapter 1.

    Training images are drawn from the ``train`` split and test images from the
    ``t10k`` split, without replacement. The training selection is centred by its mean
    image and scaled so that ``mean_i ||x_i||^2 = 1`` (:func:`lossless.data.normalize`,
    as chapter 1 does); the test images are transformed with the *training* mean and
    scale, so nothing about the test set leaks into the networks.

    Parameters
    ----------
    classes : sequence of int
        Distinct classes in 0..9; ``classes[k]`` gets label ``k``.
    n_train_per_class : int
        Training images per class.
    n_test_per_class : int or None
        Test images per class; None takes all of them (1000 per class).
    rng : numpy.random.Generator
        Draws the training images (class by class), then the test images.
    directory : str or Path, optional
        See :func:`lossless.data.load_fashion_mnist`.

    Returns
    -------
    Task
    """
    classes = list(_checks.int_sequence(classes, "classes", minimum=0))
    if len(classes) < 2 or len(set(classes)) != len(classes) or max(classes) > 9:
        raise ValueError(f"classes must be at least two distinct integers in 0..9, got {classes}")
    n_train_per_class = _checks.integer(n_train_per_class, "n_train_per_class", minimum=1)
    if n_test_per_class is not None:
        n_test_per_class = _checks.integer(n_test_per_class, "n_test_per_class", minimum=1)
    rng = _checks.numpy_generator(rng, "rng")
    parts = {}
    for split, per_class in (("train", n_train_per_class), ("test", n_test_per_class)):
        images, labels = data.load_fashion_mnist(split, directory)
        rows, y = [], []
        for k, c in enumerate(classes):
            idx = np.flatnonzero(labels == c)
            m = idx.size if per_class is None else per_class
            if m > idx.size:
                raise ValueError(f"{split} split has {idx.size} images of class {c}, "
                                 f"asked for {m} per class")
            rows.append(np.sort(rng.choice(idx, size=m, replace=False)))
            y.append(np.full(m, k, dtype=np.int64))
        rows = np.concatenate(rows)
        y = np.concatenate(y)
        parts[split] = (images[rows].astype(np.float64), y)
    raw_train, y_train = parts["train"]
    raw_test, y_test = parts["test"]
    mean = raw_train.mean(axis=0)
    centred = raw_train - mean
    scale = float(np.sqrt(np.mean(np.einsum("ij,ij->i", centred, centred))))
    X_train = data.normalize(raw_train, mean=mean, scale=scale)
    X_test = data.normalize(raw_test, mean=mean, scale=scale)
    names = tuple(data.FASHION_MNIST_CLASSES[c] for c in classes)
    return Task(name=f"fashion-mnist-{len(classes)}", X_train=X_train, y_train=y_train,
                X_test=X_test, y_test=y_test, n_classes=len(classes), class_names=names)


# =====================================================================================
# kernel-level agreement
# =====================================================================================


@dataclass(frozen=True)
class KernelAgreement:
    """Empirical CK ``F F^T`` of one network against a reference (expected) CK.

    Attributes
    ----------
    error : float
        ``||F F^T - K|| / ||K||`` (operator norm).
    error_corrected : float
        ``||F F^T - shift I - K|| / ||K||`` (equal to ``error`` when shift = 0).
    alignment : float
        ``|<u_1, v_1>|`` of the leading eigenvectors of ``F F^T`` and ``K``.
    """

    error: float
    error_corrected: float
    alignment: float


def kernel_agreement(F: Any, K_reference: Any, shift: float = 0.0) -> KernelAgreement:
    """Compare the empirical CK of features ``F`` (n, d) with ``K_reference`` (n, n).

    Parameters
    ----------
    F : array_like, shape (n, d)
    K_reference : array_like, shape (n, n)
        Typically :func:`lossless.kernels.exact_ck` of the *original* network.
    shift : float
        Identity shift subtracted for ``error_corrected``.
    """
    F = _checks.feature_matrix(F)
    n = F.shape[0]
    K = _checks.real_array(K_reference, "K_reference", ndim=2, shape_hint=f"({n}, {n})")
    if K.shape != (n, n):
        raise ValueError(f"K_reference must have shape (n, n) = ({n}, {n}), got {K.shape}")
    K = _checks.square_symmetric(K, "K_reference")
    shift = _checks.real(shift, "shift")
    with np.errstate(over="ignore", invalid="ignore"):
        G = F @ F.T
    G = _checks.symmetrize(_checks.no_overflow(G, "F", F, "its Gram matrix F F^T"))
    err = spectra.relative_opnorm_error(G, K)
    err_c = err if shift == 0 else spectra.relative_opnorm_error(G - shift * np.eye(n), K)
    _, U = np.linalg.eigh(G)
    _, V = np.linalg.eigh(K)
    return KernelAgreement(err, err_c, spectra.eigenvector_alignment(U[:, -1], V[:, -1]))


# =====================================================================================
# one trial of the paper's protocol
# =====================================================================================


def _kernel_subset(n: int, size: int) -> np.ndarray:
    size = min(size, n)
    return np.unique(np.linspace(0, n - 1, size).round().astype(int))


#: Baselines of :func:`run_trial`: ``name -> (matched to a budget?, builder)``; a matched
#: builder is called as ``builder(p, widths, layers, tau0, budget_bits, accounting,
#: generator)``, the others as ``builder(p, widths, layers, tau0, sparsity, generator)``.
BASELINES: dict[str, tuple[bool, Any]] = {
    "naive ternary": (False, lambda p, w, l, t, eps, g: naive_ternary_network(p, w, l, t, eps, g)),
    "magnitude pruning": (True, lambda p, w, l, t, bits, acc, g: pruned_network(
        p, w, l, t, matched_kept_fraction(bits / _n_weights(p, w), acc), g, matched=acc)),
    "random sparsification": (True, lambda p, w, l, t, bits, acc, g: random_sparse_network(
        p, w, l, t, matched_kept_fraction(bits / _n_weights(p, w), acc), g, matched=acc)),
    "narrow dense": (True, lambda p, w, l, t, bits, acc, g: narrow_dense_network(
        p, w, l, t, bits, g, matched=acc)),
}


def _network_builders(task: Task, widths: list[int], layers: list, seed: int,
                      sparsities: Sequence[float], baselines: Sequence[str],
                      matchings: Sequence[str]) -> list:
    """Callables building the networks of :func:`run_trial`, in order (dense first)."""
    tau0, p = task.tau0, task.p
    n_w = _n_weights(p, widths)
    plan = compress.compress(layers, tau0) if sparsities else None
    smallest = min(a * b for a, b in zip([p] + widths[:-1], widths))

    def gen() -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    builders: list = [lambda: dense_network(p, widths, layers, tau0, gen())]
    for eps in sparsities:
        builders.append(lambda eps=eps: compressed_network(plan, p, widths, eps, gen()))
        budget = ternary_memory(n_w, eps)
        for name in baselines:
            matched, build = BASELINES[name]
            if not matched:
                builders.append(lambda eps=eps, build=build: build(p, widths, layers, tau0, eps,
                                                                   gen()))
                continue
            for acc in matchings:
                bits = budget.bits(acc)
                if name == "narrow dense":
                    if bits < DENSE_BITS * _n_weights(p, [1] * len(widths)):
                        continue
                elif round(bits / DENSE_BITS / n_w * smallest) < 1:
                    continue
                builders.append(lambda bits=bits, acc=acc, build=build: build(
                    p, widths, layers, tau0, bits, acc, gen()))
    return builders


def _row_base(task: Task, label: str, widths: list[int], layers: list, seed: int,
              net: FeatureNetwork) -> dict:
    full_bits = DENSE_BITS * _n_weights(task.p, widths)
    return {
        "dataset": task.name, "activation": label, "depth": len(layers),
        "widths": "x".join(map(str, widths)), "n_train": task.n_train,
        "n_test": task.n_test, "seed": seed, "method": net.method,
        "sparsity": net.sparsity, "matched": net.matched,
        "net_widths": "x".join(map(str, net.widths)),
        "kept_fraction": net.kept_fraction,
        "bits_entropy": net.memory.entropy_bits, "bits_authors": net.memory.authors_bits,
        "ratio_entropy": full_bits / net.memory.entropy_bits,
        "ratio_authors": full_bits / net.memory.authors_bits,
    }


def _check_trial_args(task, layers, widths, sparsities, baselines, matchings):
    if not isinstance(task, Task):
        raise TypeError(f"task must be a Task, got {type(task).__name__}")
    layers = check_layers(layers)
    widths = list(_checks.int_sequence(widths, "widths", minimum=1))
    if len(widths) != len(layers):
        raise ValueError(f"widths must have one entry per layer ({len(layers)}), got {widths}")
    sparsities = [_checks.fraction(e, f"sparsities[{i}]")
                  for i, e in enumerate(_sequence(sparsities, "sparsities"))]
    baselines = [_checks.choice(b, f"baselines[{i}]", BASELINES)
                 for i, b in enumerate(_sequence(baselines, "baselines"))]
    matchings = [_checks.choice(m, f"matchings[{i}]", sorted(ACCOUNTINGS))
                 for i, m in enumerate(_sequence(matchings, "matchings"))]
    return layers, widths, sparsities, baselines, matchings


def _sequence(value: Any, name: str) -> list:
    """A list from a sequence (not a string): for arguments holding several entries."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence (list or tuple), got {_checks.describe(value)}")
    return list(value)


def _check_label(activation: Any) -> str | None:
    if activation is not None and not isinstance(activation, str):
        raise TypeError(f"activation must be a string label or None, got "
                        f"{_checks.describe(activation)}")
    return activation


def run_trial(task: Task, widths: Sequence[int], layers: Sequence[Activation], *, seed: int,
              ridges: Sequence[float | None] = (None,),
              shift_ridges: Sequence[float] = (),
              sparsities: Sequence[float] = (0.0, 0.5, 0.9, 0.95, 0.99),
              baselines: Sequence[str] = tuple(BASELINES),
              matchings: Sequence[str] = ("entropy",), logistic_penalty: float | None = None,
              n_kernel: int = 0, activation: str | None = None,
              progress: bool = False) -> list[dict]:
    """Every network of the comparison on one task and one seed, every readout.

    Networks, each drawn from ``torch.Generator().manual_seed(seed)`` (so the dense
    network and the baselines derived from it share their Gaussian draw):

    - ``dense``: the original (fp32, 32 bits per weight);
    - for each ε in ``sparsities``: ``compressed`` (:func:`compressed_network`, its
      plan solved at the training data's ``tau0``) and the ``baselines``:
      ``naive ternary`` at the same ε (same bits), and, for each accounting in
      ``matchings``, ``magnitude pruning``, ``random sparsification`` and
      ``narrow dense`` whose bits under that accounting equal the compressed
      network's (budgets too small to keep one weight per matrix, or a network of
      width 1, are skipped).

    Readouts (:class:`Readout`), for each ridge penalty ``gamma`` (the book's ``γ``) in
    ``ridges``: ``ridge`` at ``gamma`` (every network) and ``shift-corrected ridge`` at
    ``gamma - shift``
    (compressed networks; an infeasible correction is recorded with NaN accuracy and
    the reason in ``note``); then ``ridge (validated)``, each network with its own
    hold-out-validated ``gamma`` (:func:`validated_ridge_readout`); and ``logistic``
    (:func:`logistic_readout`) if ``logistic_penalty`` is given.

    Parameters
    ----------
    task : Task
    widths : sequence of int
    layers : sequence of Activation
        The original network's activations.
    seed : int
    ridges : sequence of (float or None), default (None,)
        The ``gamma`` of the ``ridge`` and ``shift-corrected ridge`` readouts; None
        stands for the dense network's validated ``gamma`` (every network is then read
        out with the ridge that suits the original).
    shift_ridges : sequence of float, default ()
        More ``gamma`` values, as multiples of the compressed network's identity shift
        ``Delta = (tau^c_L)^2 - tau_L^2`` (from :func:`lossless.compress.compress` at the task's
        ``tau0``); a multiple above 1 keeps the shift-corrected ridge positive.
    sparsities : sequence of float
    baselines : sequence of str
        Keys of :data:`BASELINES`.
    matchings : sequence of {"entropy", "authors"}
    logistic_penalty : float, optional
        Relative L2 penalty of the logistic readout: the absolute penalty is
        ``logistic_penalty * mean_i ||f_i||^2`` (the same problem for rescaled features).
    n_kernel : int, default 0
        If positive, the empirical CK of each network on ``n_kernel`` training samples
        (evenly spaced, so every class is represented) is compared with the original
        network's exact CK (:func:`kernel_agreement`).
    activation : str, optional
        Label of the architecture in the rows (default: the first layer's name).
    progress : bool, default False
        tqdm bar over the networks.

    Returns
    -------
    list of dict
        One row per (network, readout) with keys ``dataset, activation, depth, widths,
        n_train, n_test, seed, method, sparsity, matched, net_widths, kept_fraction,
        bits_entropy, bits_authors, ratio_entropy, ratio_authors, readout, ridge_rule,
        ridge, penalty, shift, train_accuracy, test_accuracy, ck_error, ck_error_corrected,
        ck_alignment, seconds, note``; the ratios are the full-size dense network's
        fp32 bits over the row's bits.
    """
    layers, widths, sparsities, baselines, matchings = _check_trial_args(
        task, layers, widths, sparsities, baselines, matchings)
    seed = _checks.seed(seed)
    ridges = [None if r is None else _checks.real(r, f"ridges[{i}]")
              for i, r in enumerate(_sequence(ridges, "ridges"))]
    multiples = [_checks.real(m, f"shift_ridges[{i}]")
                 for i, m in enumerate(_sequence(shift_ridges, "shift_ridges"))]
    n_kernel = _checks.integer(n_kernel, "n_kernel", minimum=0)
    progress = _checks.flag(progress, "progress")
    activation = _check_label(activation)
    if not ridges and not multiples:
        raise ValueError("ridges and shift_ridges are both empty: no ridge readout to fit")
    rules = ["dense-validated" if r is None else "fixed" for r in ridges]
    if multiples:
        shift = compress.compress(layers, task.tau0).shift
        ridges += [m * shift for m in multiples]
        rules += [f"{m:g} x shift" for m in multiples]
    if logistic_penalty is not None:
        logistic_penalty = _checks.positive(logistic_penalty, "logistic_penalty")
    tau0 = task.tau0
    label = activation if activation is not None else getattr(layers[0], "name", "custom")
    targets = class_targets(task.y_train, task.n_classes)
    K_ref = subset = None
    if n_kernel:
        subset = _kernel_subset(task.n_train, n_kernel)
        K_ref = kernels.exact_ck(task.X_train[subset], layers, tau0=tau0)
    builders = _network_builders(task, widths, layers, seed, sparsities, baselines, matchings)
    iterator = progress_bar(builders, progress, f"{task.name}, seed {seed}")
    rows = []
    for build in iterator:
        start = time.perf_counter()
        net = build()
        F_train = net.features(task.X_train)
        F_test = net.features(task.X_test)
        agreement = None
        if subset is not None and net.method != "narrow dense":
            agreement = kernel_agreement(F_train[subset], K_ref, net.shift)
        validated = validated_ridge_readout(F_train, task.y_train, task.n_classes)
        if net.method == "dense":
            ridges = [validated.penalty if r is None else r for r in ridges]
        readouts: list[tuple[str, Readout | None, float, str, str]] = []
        for lam, rule in zip(ridges, rules):
            if lam is None:
                raise ValueError("ridges contains None (the dense network's validated ridge) "
                                 "but the dense network comes first and was not built")
            readouts.append(("ridge", ridge_readout(F_train, targets, lam), lam, rule, ""))
            if net.method == "compressed":
                try:
                    readouts.append(("shift-corrected ridge", shift_corrected_readout(
                        F_train, targets, lam, net.shift), lam, rule, ""))
                except ValueError:
                    readouts.append(("shift-corrected ridge", None, lam, rule,
                                     f"infeasible: ridge - shift = {lam - net.shift:.4g} "
                                     "makes the ridge system indefinite"))
        readouts.append(("ridge (validated)", validated, validated.penalty, "own validated", ""))
        if logistic_penalty is not None:
            scale = float(np.mean(np.einsum("ij,ij->i", F_train, F_train)))
            readouts.append(("logistic", logistic_readout(F_train, task.y_train, task.n_classes,
                                                          logistic_penalty * scale),
                             logistic_penalty, "relative penalty", ""))
        elapsed = time.perf_counter() - start
        for kind, readout, lam, rule, note in readouts:
            if readout is not None and not readout.converged:
                note = f"not converged (gradient {readout.gradient_norm:.2e})"
            rows.append({
                **_row_base(task, label, widths, layers, seed, net),
                "readout": kind, "ridge_rule": rule, "ridge": lam,
                "penalty": readout.penalty if readout is not None else lam - net.shift,
                "shift": net.shift,
                "train_accuracy": readout.accuracy(F_train, task.y_train) if readout else math.nan,
                "test_accuracy": readout.accuracy(F_test, task.y_test) if readout else math.nan,
                "ck_error": agreement.error if agreement else math.nan,
                "ck_error_corrected": agreement.error_corrected if agreement else math.nan,
                "ck_alignment": agreement.alignment if agreement else math.nan,
                "seconds": elapsed, "note": note,
            })
    return rows


def summarize(rows: Iterable[dict], keys: Sequence[str],
              value: str = "test_accuracy") -> list[dict]:
    """Mean, standard deviation, min, max and count of ``value`` per group of ``keys``.

    NaN values are left out of the statistics (``count`` says how many remain).
    Groups keep the order of their first appearance.

    Returns
    -------
    list of dict
        Each with the ``keys`` and ``mean, std, min, max, count`` (``std`` with
        ``ddof=1``, NaN for fewer than two values).
    """
    keys = [_check_key(k, f"keys[{i}]") for i, k in enumerate(_sequence(keys, "keys"))]
    value = _check_key(value, "value")
    groups: dict[tuple, list[float]] = {}
    for i, row in enumerate(_rows(rows)):
        missing = [k for k in (*keys, value) if k not in row]
        if missing:
            raise ValueError(f"rows[{i}] has no key {missing[0]!r} (keys or value); its keys: "
                             f"{sorted(row)}")
        try:
            key = tuple(row[k] for k in keys)
            hash(key)
        except TypeError:
            raise TypeError(f"rows[{i}]: the values of keys must be hashable (str, numbers), "
                            f"got {_checks.describe(key)}") from None
        x = row[value]
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
            raise TypeError(f"rows[{i}][{value!r}] must be a real number (value), got "
                            f"{_checks.describe(x)}")
        groups.setdefault(key, []).append(float(x))
    out = []
    for key, vals in groups.items():
        v = np.array([x for x in vals if not math.isnan(x)])
        out.append({**dict(zip(keys, key)),
                    "mean": float(v.mean()) if v.size else math.nan,
                    "std": float(v.std(ddof=1)) if v.size > 1 else math.nan,
                    "min": float(v.min()) if v.size else math.nan,
                    "max": float(v.max()) if v.size else math.nan,
                    "count": int(v.size)})
    return out


def _check_key(key: Any, name: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"{name} must be a column name (str), got {_checks.describe(key)}")
    return key


def _rows(rows: Any) -> list[dict]:
    """A list of dicts (result rows), else TypeError naming the offending row."""
    if isinstance(rows, (str, bytes, dict)) or not isinstance(rows, Iterable):
        raise TypeError(f"rows must be an iterable of dicts, got {_checks.describe(rows)}")
    out = list(rows)
    for i, row in enumerate(out):
        if not isinstance(row, dict):
            raise TypeError(f"rows[{i}] must be a dict, got {_checks.describe(row)}")
    return out


def _select(rows: Iterable[dict], readout: str, ridge_rule: str | None) -> list[dict]:
    out = []
    for r in _rows(rows):
        if r.get("readout") != readout:
            continue
        if ridge_rule is not None and r.get("ridge_rule", ridge_rule) != ridge_rule:
            continue
        out.append(r)
    return out


def curve_label(method: str, matched: str) -> str:
    """Legend label of a method (matched baselines say under which accounting)."""
    return method if matched in ("-", "", None) else f"{method} ({matched}-matched)"


def accuracy_memory_curves(rows: Iterable[dict], accounting: str, *,
                           readout: str = "ridge (validated)", ridge_rule: str | None = None,
                           value: str = "test_accuracy") -> dict[str, dict]:
    """Group result rows into one accuracy-against-memory curve per method.

    Keeps the rows of one ``readout`` (and, for readouts fitted at several ridges, one
    ``ridge_rule``) and the baselines matched under ``accounting`` (plus every row with
    ``matched == "-"``: dense, compressed, naive ternary). Each curve has one point per
    memory budget: the bits under ``accounting`` and the mean, standard deviation,
    minimum, maximum and count of ``value`` over the seeds (NaNs dropped).

    Parameters
    ----------
    rows : iterable of dict
        Rows of :func:`run_trial` (or :func:`read_csv` of a benchmark file).
    accounting : {"entropy", "authors"}
    readout : str
    ridge_rule : str, optional
        E.g. ``"dense-validated"`` or ``"2 x shift"``; None keeps every rule.
    value : str

    Returns
    -------
    dict
        ``label -> {"bits", "mean", "std", "min", "max", "count"}`` (ndarrays sorted by
        bits), labels from :func:`curve_label`, in order of first appearance.
    """
    accounting = _checks.choice(accounting, "accounting", sorted(ACCOUNTINGS))
    readout = _check_key(readout, "readout")
    if ridge_rule is not None:
        ridge_rule = _check_key(ridge_rule, "ridge_rule")
    value = _check_key(value, "value")
    sel = [r for r in _select(rows, readout, ridge_rule)
           if r.get("matched") in ("-", accounting)]
    bits_key = f"bits_{accounting}"
    stats = summarize(sel, ["method", "matched", bits_key], value)
    curves: dict[str, dict] = {}
    for s in stats:
        label = curve_label(s["method"], s["matched"])
        c = curves.setdefault(label, {k: [] for k in ("bits", "mean", "std", "min", "max",
                                                       "count")})
        c["bits"].append(float(s[bits_key]))
        for k in ("mean", "std", "min", "max", "count"):
            c[k].append(s[k])
    for c in curves.values():
        order = np.argsort(c["bits"])
        for k in c:
            c[k] = np.asarray(c[k], dtype=float)[order]
    return curves


def format_table(records: Sequence[dict], columns: dict[str, str]) -> str:
    """Plain-text table: ``columns`` maps each key to a format spec (``""`` for str).

    Floats that are NaN print as ``-``; columns are right-aligned to their widest cell.
    """
    if not isinstance(columns, dict) or not columns:
        raise TypeError(f"columns must be a non-empty dict mapping keys to format specs, got "
                        f"{_checks.describe(columns)}")
    for key, spec in columns.items():
        _check_key(key, "columns key")
        if not isinstance(spec, str):
            raise TypeError(f"columns[{key!r}] must be a format spec string, got "
                            f"{_checks.describe(spec)}")
    cells = [list(columns)]
    for i, rec in enumerate(_rows(records)):
        row = []
        for key, spec in columns.items():
            v = rec.get(key, "")
            if isinstance(v, float) and math.isnan(v):
                row.append("-")
            else:
                try:
                    row.append(format(v, spec) if spec else str(v))
                except (TypeError, ValueError) as err:
                    raise ValueError(f"columns[{key!r}] = {spec!r} cannot format records[{i}]"
                                     f"[{key!r}] = {_checks.describe(v)}: {err}") from None
        cells.append(row)
    widths = [max(len(r[j]) for r in cells) for j in range(len(columns))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)


class Table:
    """A result table that renders as HTML in a notebook and as text elsewhere.

    ``Table(records, columns, caption)`` holds what :func:`format_table` formats; its
    ``_repr_html_`` is an HTML table with the same cells, its ``repr`` the text table
    (under the caption, if any).

    Parameters
    ----------
    records : sequence of dict
    columns : dict
        Key -> format spec, as in :func:`format_table`.
    caption : str
        Plain text shown above the table.
    """

    def __init__(self, records: Sequence[dict], columns: dict[str, str],
                 caption: str = "") -> None:
        if not isinstance(caption, str):
            raise TypeError(f"caption must be a string, got {_checks.describe(caption)}")
        self.text = format_table(records, columns)     # checks records and columns
        self.caption = caption

    def __repr__(self) -> str:
        return (self.caption + "\n" if self.caption else "") + self.text

    def _repr_html_(self) -> str:
        from lossless.display import html_table

        lines = self.text.splitlines()
        # the text table is right-aligned in columns of known width: cut at them
        header, rows = lines[0], lines[1:]
        bounds, start = [], 0
        for cell in self._split(header):
            end = header.index(cell, start) + len(cell)
            bounds.append(end)
            start = end
        def cut(line: str) -> list[str]:
            out, prev = [], 0
            for b in bounds:
                out.append(line[prev:b].strip())
                prev = b + 2
            return out
        return html_table(html.escape(self.caption), cut(header), [cut(r) for r in rows])

    @staticmethod
    def _split(header: str) -> list[str]:
        return [c for c in header.split("  ") if c.strip()]


# =====================================================================================
# second protocol: train all layers
# =====================================================================================


class _Trainable(torch.nn.Module):
    def __init__(self, net: FeatureNetwork, readout: np.ndarray) -> None:
        super().__init__()
        weights = net.hidden_weights()
        self.hidden = torch.nn.ParameterList(torch.nn.Parameter(W.to(torch.float32).clone())
                                             for W in weights)
        self.masks = [None if net.kept_fraction >= 1.0 else (W != 0) for W in weights]
        self.layers = list(net.layers)
        self.centres = [float(m) for m in net.model.centres]
        self.widths = list(net.widths)
        surrogates = net.surrogates or (None,) * len(self.layers)
        self.surrogates = []
        for act, sur in zip(self.layers, surrogates):
            if act.has_jumps and sur is None:
                raise ValueError(f"layer {act!r} has jumps: finetune needs a straight-through "
                                 "derivative (FeatureNetwork.surrogates)")
            self.surrogates.append(sur if act.has_jumps else None)
        self.readout = torch.nn.Parameter(torch.as_tensor(readout, dtype=torch.float32).clone())

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return networks.propagate(X, self.widths, self.layers, self.hidden, self.centres,
                                  surrogates=self.surrogates) @ self.readout

    def apply_masks(self) -> None:
        with torch.no_grad():
            for W, mask in zip(self.hidden, self.masks):
                if mask is not None:
                    W.mul_(mask)


@dataclass(frozen=True)
class FinetuneResult:
    """Accuracy along training (second protocol).

    Attributes
    ----------
    test_accuracy : ndarray, shape (epochs + 1,)
        Before training (entry 0) and after each epoch.
    train_loss : ndarray, shape (epochs,)
        Mean cross-entropy over each epoch's mini-batches.
    kept_fraction : float
        Fraction of non-zero hidden weights after training (unchanged: zeros stay zero).
    seconds : float
    hidden : tuple of Tensor
        The trained hidden weights ``W_1..W_L`` (float32, detached).
    readout : ndarray, shape (d_L, K)
        The trained readout.
    """

    test_accuracy: np.ndarray
    train_loss: np.ndarray
    kept_fraction: float
    seconds: float = field(default=0.0, compare=False)
    hidden: tuple = field(default=(), compare=False, repr=False)
    readout: np.ndarray | None = field(default=None, compare=False, repr=False)


def finetune(net: FeatureNetwork, task: Task, generator: torch.Generator, *,
             readout: Readout | None = None, epochs: int = 3, batch_size: int = 128,
             lr: float = 1e-3, progress: bool = False) -> FinetuneResult:
    """Train every layer of ``net`` (hidden weights and readout) with Adam on cross-entropy.

    The hidden weights start from the network's own (random, fixed so far) weights and
    are updated in floating point; zero weights stay zero (their gradients are masked
    and the masks re-applied after each step), so every sparse network keeps its
    support. Layers with jumps (the compressed network's ternary activations) keep
    their step forward and use the straight-through derivative of
    ``net.surrogates`` backward (Bengio, Léonard and Courville, 2013). The centring constants
    stay fixed. Mini-batches are shuffled with ``generator``.

    Parameters
    ----------
    net : FeatureNetwork
    task : Task
    generator : torch.Generator
        Shuffles the training set each epoch.
    readout : Readout, optional
        Initial readout (e.g. :func:`logistic_readout` on the network's features);
        zeros by default.
    epochs : int, default 3
    batch_size : int, default 128
    lr : float, default 1e-3
        Adam learning rate (all parameters).
    progress : bool, default False
        tqdm bar over the epochs.

    Returns
    -------
    FinetuneResult
    """
    if not isinstance(net, FeatureNetwork):
        raise TypeError(f"net must be a FeatureNetwork, got {type(net).__name__}")
    if not isinstance(task, Task):
        raise TypeError(f"task must be a Task, got {type(task).__name__}")
    generator = _checks.torch_generator(generator, "generator")
    epochs = _checks.integer(epochs, "epochs", minimum=1)
    batch_size = _checks.integer(batch_size, "batch_size", minimum=1)
    lr = _checks.positive(lr, "lr")
    progress = _checks.flag(progress, "progress")
    d_L = net.widths[-1]
    if readout is None:
        R = np.zeros((d_L, task.n_classes))
    else:
        if not isinstance(readout, Readout):
            raise TypeError(f"readout must be a Readout or None, got {_checks.describe(readout)}")
        if np.shape(readout.weights) != (d_L, task.n_classes):
            raise ValueError(f"readout must be a Readout with weights of shape ({d_L}, {task.n_classes}), "
                             f"got {np.shape(readout.weights)}")
        R = _checks.real_array(readout.weights, "readout.weights")
    start = time.perf_counter()
    model = _Trainable(net, R)
    Xtr = torch.tensor(np.array(task.X_train), dtype=torch.float32)
    ytr = torch.tensor(np.array(task.y_train), dtype=torch.int64)
    Xte = torch.tensor(np.array(task.X_test), dtype=torch.float32)
    yte = torch.tensor(np.array(task.y_test), dtype=torch.int64)

    def test_accuracy() -> float:
        with torch.no_grad():
            return float((model(Xte).argmax(dim=1) == yte).double().mean())

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    accs = [test_accuracy()]
    losses = []
    iterator = progress_bar(range(epochs), progress, f"finetune {net.method}")
    for _ in iterator:
        order = torch.randperm(task.n_train, generator=generator)
        total, count = 0.0, 0
        for b in range(0, task.n_train, batch_size):
            idx = order[b:b + batch_size]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(Xtr[idx]), ytr[idx])
            loss.backward()
            for W, mask in zip(model.hidden, model.masks):
                if mask is not None and W.grad is not None:
                    W.grad.mul_(mask)
            optimizer.step()
            model.apply_masks()
            total += float(loss.detach()) * idx.numel()
            count += idx.numel()
        losses.append(total / count)
        accs.append(test_accuracy())
    kept = _nonzero_fraction(W.detach() for W in model.hidden)
    return FinetuneResult(np.array(accs), np.array(losses), kept, time.perf_counter() - start,
                          hidden=tuple(W.detach().clone() for W in model.hidden),
                          readout=model.readout.detach().double().numpy().copy())


def weights_accuracy(net: FeatureNetwork, hidden: Sequence[Any], readout: Any, X: Any,
                     labels: Any) -> float:
    """Accuracy of ``net``'s architecture with other weights: ``hidden`` and ``readout``.

    The forward pass is :func:`lossless.networks.propagate` (as in :func:`finetune`)
    with ``net``'s activations, widths and centring constants, in float32, then the
    readout in float64; used to score a trained network after its weights are quantised
    or pruned (:func:`lossless.baselines.quantize_rows`).

    Parameters
    ----------
    net : FeatureNetwork
    hidden : sequence of array_like
        ``W_1..W_L``, shapes ``(d_l, d_{l-1})`` of ``net``.
    readout : array_like, shape (d_L, K)
    X : array_like, shape (n, p)
    labels : array_like of int, shape (n,)
    """
    if not isinstance(net, FeatureNetwork):
        raise TypeError(f"net must be a FeatureNetwork, got {type(net).__name__}")
    dims = [net.model.p] + list(net.widths)
    if isinstance(hidden, (str, bytes)) or len(hidden) != len(net.widths):
        raise ValueError(f"hidden must hold {len(net.widths)} matrices, got "
                         f"{_checks.describe(hidden)}")
    Ws = [torch.as_tensor(_checks.real_array(W, f"hidden[{i}]", ndim=2,
                                             shape=(dims[i + 1], dims[i])), dtype=torch.float32)
          for i, W in enumerate(hidden)]
    R = _checks.real_array(readout, "readout", ndim=2, shape=(dims[-1], None))
    X = _checks.real_array(X, "X", ndim=2, shape=(None, dims[0]))
    y = _check_labels(labels, X.shape[0], R.shape[1])
    with torch.no_grad():
        H = networks.propagate(torch.tensor(X, dtype=torch.float32), list(net.widths),
                               list(net.layers), Ws, [float(m) for m in net.model.centres])
    scores = H.double().numpy() @ R
    return float(np.mean(np.argmax(scores, axis=1) == y))


def run_finetune_trial(task: Task, widths: Sequence[int], layers: Sequence[Activation], *,
                       seed: int, sparsity: float = 0.9,
                       baselines: Sequence[str] = tuple(BASELINES),
                       matchings: Sequence[str] = ("entropy",), epochs: int = 3,
                       batch_size: int = 128, lr: float = 1e-2, logistic_penalty: float = 1e-3,
                       activation: str | None = None, progress: bool = False) -> list[dict]:
    """The second protocol: every network of one budget, fine-tuned in all layers.

    The networks are those of :func:`run_trial` for the single sparsity ``sparsity``
    (dense, compressed, and the baselines matched to the compressed network's budget).
    Each starts from its random weights and a logistic readout fitted on its features
    (relative penalty ``logistic_penalty``, as in :func:`run_trial`), then all layers
    are trained by :func:`finetune` (zeros stay zero, straight-through derivative for
    the compressed network's ternary activations); the generator of the mini-batch
    order is seeded with ``seed`` too.

    Returns
    -------
    list of dict
        One row per (network, epoch), epoch 0 being the start: the keys of
        :func:`run_trial`'s rows that describe the network and its memory, plus
        ``readout`` (``"fine-tuned (all layers)"``), ``epoch``, ``test_accuracy``,
        ``train_loss`` (mean over the epoch, NaN at epoch 0), ``lr``, ``seconds``.
        After training the non-zero weights are floating point: the memory columns
        describe the starting network.
    """
    layers, widths, (sparsity,), baselines, matchings = _check_trial_args(
        task, layers, widths, [sparsity], baselines, matchings)
    seed = _checks.seed(seed)
    epochs = _checks.integer(epochs, "epochs", minimum=1)
    batch_size = _checks.integer(batch_size, "batch_size", minimum=1)
    lr = _checks.positive(lr, "lr")
    progress = _checks.flag(progress, "progress")
    activation = _check_label(activation)
    label = activation if activation is not None else getattr(layers[0], "name", "custom")
    logistic_penalty = _checks.positive(logistic_penalty, "logistic_penalty")
    builders = _network_builders(task, widths, layers, seed, [sparsity], baselines, matchings)
    iterator = progress_bar(builders, progress, f"fine-tune {task.name}, seed {seed}")
    rows = []
    for build in iterator:
        start = time.perf_counter()
        net = build()
        F = net.features(task.X_train)
        scale = float(np.mean(np.einsum("ij,ij->i", F, F)))
        readout = logistic_readout(F, task.y_train, task.n_classes, logistic_penalty * scale)
        result = finetune(net, task, torch.Generator().manual_seed(seed), readout=readout,
                          epochs=epochs, batch_size=batch_size, lr=lr)
        elapsed = time.perf_counter() - start
        losses = [math.nan] + [float(x) for x in result.train_loss]
        for epoch, (acc, loss) in enumerate(zip(result.test_accuracy, losses)):
            rows.append({**_row_base(task, label, widths, layers, seed, net),
                         "readout": "fine-tuned (all layers)", "epoch": epoch,
                         "test_accuracy": float(acc), "train_loss": loss, "lr": lr,
                         "seconds": elapsed})
    return rows


# =====================================================================================
# results files
# =====================================================================================


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """Write rows (dicts) to a CSV file; floats with 6 significant digits.

    The columns are the union of the rows' keys in order of first appearance; a row
    without some key leaves that cell empty (read back as ``""``).
    """
    rows = _rows(rows)
    if not rows:
        raise ValueError("rows must not be empty")
    path = _checks.path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n", restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})
    return path


def _parse(value: str) -> Any:
    if value in ("True", "False"):          # what write_csv writes for a bool
        return value == "True"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def read_csv(path: str | Path) -> list[dict]:
    """Read a CSV written by :func:`write_csv`, converting numbers back to int/float.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = _checks.path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file at {str(path)!r}")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"path must be a UTF-8 CSV file written by write_csv, got "
                         f"{str(path)!r}, which is not one ({err})") from None


# =====================================================================================
# the finite-width law
# =====================================================================================


@dataclass(frozen=True)
class PowerLaw:
    """``y = coefficient * width ** (-exponent)``, fitted by :func:`fit_power_law`.

    Attributes
    ----------
    coefficient, exponent : float
    residual : float
        Root mean square of the fit's residuals in ``log y``.
    """

    coefficient: float
    exponent: float
    residual: float = 0.0

    def __call__(self, width: Any) -> Any:
        return self.coefficient * np.asarray(width, dtype=float) ** (-self.exponent)

    def width_for(self, value: float) -> float:
        """The width at which the law reaches ``value`` (> 0); inf if it never does."""
        value = _checks.positive(value, "value")
        if self.exponent <= 0:
            return math.inf if value < self.coefficient else 0.0
        log_width = math.log(self.coefficient / value) / self.exponent
        return math.inf if log_width > 700.0 else math.exp(log_width)   # no overflow


def fit_power_law(widths: Any, values: Any) -> PowerLaw:
    """Least-squares fit of ``log y = log c - b log w`` (``y = c w^{-b}``).

    Parameters
    ----------
    widths : array_like, shape (m,)
        Positive widths (or any size), at least two distinct ones.
    values : array_like, shape (m,)
        Positive values (a kernel error, an accuracy gap).

    Returns
    -------
    PowerLaw
    """
    w = _checks.real_array(widths, "widths", ndim=1)
    y = _checks.real_array(values, "values", ndim=1, shape=w.shape)
    if np.any(w <= 0):
        raise ValueError(f"widths must be positive, got {_checks.describe(widths)}")
    if np.any(y <= 0):
        raise ValueError(f"values must be positive (a power law is fitted to their log), got "
                         f"{_checks.describe(values)}")
    if np.unique(w).size < 2:
        raise ValueError(f"widths must hold at least two distinct values, got "
                         f"{_checks.describe(widths)}")
    A = np.column_stack([np.ones_like(w), -np.log(w)])
    coef, *_ = np.linalg.lstsq(A, np.log(y), rcond=None)
    res = float(np.sqrt(np.mean((A @ coef - np.log(y)) ** 2)))
    return PowerLaw(float(np.exp(coef[0])), float(coef[1]), res)


def kernel_target_alignment(K: Any, labels: Any, n_classes: int) -> float:
    """Centred kernel-target alignment ``<HKH, H Y Y^T H>_F / (||HKH||_F ||H Y Y^T H||_F)``.

    How much of a kernel's (centred) structure lies along the class labels: 1 when the
    kernel is a function of the class only, near 0 when the classes are a small part of
    it. ``Y`` are the one-hot targets of :func:`class_targets`, ``H = I - 11^T/n``.

    Parameters
    ----------
    K : array_like, shape (n, n)
        Symmetric kernel.
    labels : array_like of int, shape (n,)
    n_classes : int
    """
    K = _checks.square_symmetric(K, "K")
    n = K.shape[0]
    y = _check_labels(labels, n, _checks.integer(n_classes, "n_classes", minimum=2))
    Y = class_targets(y, n_classes)
    Yc = Y - Y.mean(axis=0)
    Kc = K - K.mean(axis=0) - K.mean(axis=1)[:, None] + K.mean()
    T = Yc @ Yc.T
    denom = np.linalg.norm(Kc) * np.linalg.norm(T)
    if denom == 0:
        raise ValueError("K or the labels are constant after centring: no alignment defined")
    return float(np.sum(Kc * T) / denom)
