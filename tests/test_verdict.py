"""lossless.verdict: the decision rule of the practice study."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lossless import stats, verdict


def rows_for(ds, method, factor, sparsity, val, test, nbytes, seeds=range(5)):
    return [{"dataset": ds, "method": method, "factor": factor, "sparsity": sparsity,
             "seed": s, "val_accuracy": v, "test_accuracy": t, "bytes": nbytes}
            for s, v, t in zip(seeds, val, test)]


REF_VAL = np.array([0.80, 0.82, 0.78, 0.81, 0.79])
REF_TEST = np.array([0.79, 0.81, 0.80, 0.80, 0.78])


def study():
    rows = rows_for("d", "dense", 1.0, 0.0, REF_VAL, REF_TEST, 1000)
    # cheap but clearly worse on validation: never chosen
    rows += rows_for("d", "tiny", 1.0, 0.0, REF_VAL - 0.05, REF_TEST - 0.05, 10)
    # within the margin on validation, the cheapest such: chosen
    rows += rows_for("d", "small", 0.5, 0.9, REF_VAL - 0.005, REF_TEST + [0.0, 0.002, -0.001,
                                                                        0.001, 0.0], 50)
    # better but expensive
    rows += rows_for("d", "big", 4.0, 0.0, REF_VAL + 0.02, REF_TEST + 0.02, 5000)
    # one seed only: no interval, skipped
    rows += rows_for("d", "one", 2.0, 0.0, REF_VAL[:1], REF_TEST[:1], 1, seeds=[0])
    # no bytes (an infinite-width limit): skipped
    rows += rows_for("d", "dense limit", math.inf, math.nan, REF_VAL, REF_TEST, math.nan)
    return rows


def test_comparisons_pair_by_seed_and_skip_what_has_no_interval():
    cs = {c.method: c for c in verdict.comparisons(study())}
    assert set(cs) == {"dense", "tiny", "small", "big"}
    assert cs["dense"].test.mean == 0.0 and cs["dense"].test.n == 5
    ref = stats.paired_interval(REF_TEST - 0.05, REF_TEST)
    assert cs["tiny"].test.mean == pytest.approx(ref.mean)
    assert cs["small"].bytes == 50 and cs["small"].key == ("small", 0.5, 0.9)
    assert cs["big"].accuracy == pytest.approx(np.mean(REF_TEST + 0.02))


def test_choose_takes_the_cheapest_within_the_margin_on_validation_only():
    cs = verdict.comparisons(study())
    chosen = verdict.choose(cs)
    assert chosen.method == "small"
    # the test set does not enter the choice: make "tiny" perfect on test, still not chosen
    rows = [dict(r, test_accuracy=1.0) if r["method"] == "tiny" else r for r in study()]
    assert verdict.choose(verdict.comparisons(rows)).method == "small"
    assert verdict.choose([c for c in cs if c.method == "tiny"]) is None
    assert verdict.label(chosen.test) == "non-inferior"


def test_labels():
    mk = lambda lo, hi: stats.PairedInterval((lo + hi) / 2, lo, hi, 5, 0.01, 0.95)  # noqa: E731
    assert verdict.label(mk(0.001, 0.02)) == "better"
    assert verdict.label(mk(-0.009, 0.02)) == "non-inferior"
    assert verdict.label(mk(-0.03, -0.011)) == "inferior"
    assert verdict.label(mk(-0.02, 0.0)) == "inconclusive"
    assert verdict.label(mk(-0.02, 0.0), margin=0.03) == "non-inferior"
    with pytest.raises(TypeError, match="interval"):
        verdict.label((0.0, 1.0))
    with pytest.raises(ValueError, match="margin"):
        verdict.label(mk(0.0, 1.0), margin=-1)


def test_bad_rows():
    with pytest.raises(ValueError, match="empty"):
        verdict.comparisons([])
    rows = rows_for("d", "small", 1.0, 0.0, REF_VAL, REF_TEST, 1)
    with pytest.raises(ValueError, match="reference"):
        verdict.comparisons(rows)
    with pytest.raises(ValueError, match="two rows"):
        verdict.comparisons(study() + study()[:1])


def test_load_rows_reads_the_three_files(tmp_path):
    from lossless import experiments

    for i, name in enumerate(verdict.FILES):
        experiments.write_csv([{"dataset": "d", "seed": i}], tmp_path / name)
    assert [r["seed"] for r in verdict.load_rows(tmp_path)] == [0, 1, 2]
    (tmp_path / verdict.FILES[1]).unlink()
    with pytest.raises(FileNotFoundError, match="verdict_f4.csv"):
        verdict.load_rows(tmp_path)
    with pytest.raises(TypeError, match="results"):
        verdict.load_rows(3)
