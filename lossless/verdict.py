"""The verdict of the practice study: which configuration reaches the reference in the fewest bytes.

Rows are those of ``benchmarks/run_verdict.py`` (one per data set, seed, method, width
factor and sparsity, with ``val_accuracy``, ``test_accuracy`` and the stored ``bytes``).
A **configuration** is a (method, factor, sparsity) triple; it is compared with the
**reference**, the paper's dense network (``dense`` at factor 1, random features), on
the seeds both have, by the paired differences of :func:`lossless.stats.paired_interval`.

The decision rule (book ``ch-verdict-report``, fixed before the results were read):
the configurations whose mean paired **validation** difference is at least ``-margin``
are the candidates; the cheapest candidate in stored bytes is the choice; its **test**
interval gives the label (eq-stats-noninferior): ``better`` (low > 0), ``non-inferior``
(low > -margin), ``inferior`` (high < -margin), ``inconclusive`` otherwise. The test
set never enters the choice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lossless import _checks
from lossless.stats import PairedInterval, paired_interval

__all__ = ["REFERENCE", "MARGIN", "FILES", "load_rows", "Comparison", "comparisons", "label",
           "choose"]

#: The reference configuration: the paper's dense network (method, factor, sparsity).
REFERENCE: tuple[str, float, float] = ("dense", 1.0, 0.0)
#: The non-inferiority margin in accuracy (one point), fixed before the study ran.
MARGIN = 0.01
#: The study's result files in ``benchmarks/results``: the main run, the width-4 run
#: (a separate process) and the linear classifier on the inputs.
FILES = ("verdict.csv", "verdict_f4.csv", "verdict_pixels.csv")


def load_rows(results: str | Path) -> list[dict]:
    """Every row of the study: the :data:`FILES` of the directory ``results``."""
    from lossless.experiments import read_csv

    results = Path(_checks.path(results, "results"))
    missing = [name for name in FILES if not (results / name).is_file()]
    if missing:
        raise FileNotFoundError(f"results = {str(results)!r} lacks {missing} "
                                "(benchmarks/run_verdict.py writes them)")
    return [r for name in FILES for r in read_csv(results / name)]


@dataclass(frozen=True)
class Comparison:
    """One configuration against the reference on one data set.

    Attributes
    ----------
    dataset, method : str
    factor, sparsity : float
    seeds : tuple of int
        The seeds both have (the pairs).
    bytes : float
        Mean stored bytes of the configuration over those seeds.
    accuracy : float
        Mean test accuracy over those seeds.
    val, test : PairedInterval
        Paired differences (configuration minus reference) on the validation and on
        the test samples.
    """

    dataset: str
    method: str
    factor: float
    sparsity: float
    seeds: tuple
    bytes: float
    accuracy: float
    val: PairedInterval
    test: PairedInterval

    @property
    def key(self) -> tuple[str, float, float]:
        return (self.method, self.factor, self.sparsity)


def _groups(rows: Iterable[dict]) -> dict[tuple, dict[int, dict]]:
    out: dict[tuple, dict[int, dict]] = {}
    for r in rows:
        sp = r.get("sparsity")
        sp = 0.0 if sp in (None, "") or (isinstance(sp, float) and math.isnan(sp)) else float(sp)
        key = (r["dataset"], r["method"], float(r["factor"]), sp)
        seed = int(r["seed"])
        if seed in out.setdefault(key, {}):
            raise ValueError(f"rows hold two rows for {key} at seed {seed}")
        out[key][seed] = r
    return out


def comparisons(rows: Iterable[dict], *, reference: Sequence = REFERENCE,
                level: float = 0.95) -> list[Comparison]:
    """Every configuration with finite bytes against ``reference``, per data set.

    Configurations sharing fewer than two seeds with the reference are skipped (no
    interval); so are rows without stored bytes (the infinite-width limits).

    Parameters
    ----------
    rows : iterable of dict
        Rows of ``run_verdict.py`` (e.g. from :func:`lossless.experiments.read_csv`).
    reference : (method, factor, sparsity)
    level : float, default 0.95
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty: no configuration to compare")
    ref_method, ref_factor, ref_sp = reference
    groups = _groups(rows)
    out = []
    for (ds, method, factor, sp), by_seed in sorted(groups.items(), key=lambda kv: kv[0]):
        ref = groups.get((ds, ref_method, float(ref_factor), float(ref_sp)))
        if ref is None:
            raise ValueError(f"no reference rows {tuple(reference)} for data set {ds!r}")
        by_seed = {s: r for s, r in by_seed.items()
                   if r.get("bytes") not in (None, "") and math.isfinite(float(r["bytes"]))}
        seeds = tuple(sorted(set(by_seed) & set(ref)))
        if len(seeds) < 2:
            continue

        def col(src: dict, name: str) -> np.ndarray:
            return np.array([float(src[s][name]) for s in seeds])

        out.append(Comparison(
            ds, method, factor, sp, seeds, float(np.mean(col(by_seed, "bytes"))),
            float(np.mean(col(by_seed, "test_accuracy"))),
            paired_interval(col(by_seed, "val_accuracy"), col(ref, "val_accuracy"), level=level),
            paired_interval(col(by_seed, "test_accuracy"), col(ref, "test_accuracy"),
                            level=level)))
    return out


def label(interval: PairedInterval, margin: float = MARGIN) -> str:
    """``better``, ``non-inferior``, ``inferior`` or ``inconclusive`` (eq-stats-noninferior)."""
    if not isinstance(interval, PairedInterval):
        raise TypeError(f"interval must be a PairedInterval, got {_checks.describe(interval)}")
    margin = _checks.real(margin, "margin", low=0.0)
    if interval.low > 0:
        return "better"
    if interval.low > -margin:
        return "non-inferior"
    if interval.high < -margin:
        return "inferior"
    return "inconclusive"


def choose(candidates: Iterable[Comparison], margin: float = MARGIN) -> Comparison | None:
    """The cheapest configuration (stored bytes) whose mean paired validation difference
    is at least ``-margin``; None if there is none. Ties in bytes go to the higher mean
    validation difference."""
    margin = _checks.real(margin, "margin", low=0.0)
    ok = [c for c in candidates if c.val.mean >= -margin]
    if not ok:
        return None
    return min(ok, key=lambda c: (c.bytes, -c.val.mean))

