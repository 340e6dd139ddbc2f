"""Tests of lossless.experiments: tasks, the trial runner, fine-tuning, summaries, tables and
results files, the finite-width law and the alignment used by the frontier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossless import baselines, compress, data, experiments, memory, readout

from conftest import RELU3, features

# ------------------------------------------------------------------------- figures, tables
def _fake_rows():
    rows = []
    for seed, acc in ((0, 0.8), (1, 0.9)):
        rows.append({"method": "dense", "matched": "-", "readout": "r", "bits_entropy": 320.0,
                     "bits_authors": 320.0, "test_accuracy": acc})
        for eps, bits_e, bits_a in ((0.5, 15.0, 5.0), (0.9, 5.7, 1.0)):
            rows.append({"method": "compressed", "matched": "-", "readout": "r",
                         "bits_entropy": bits_e, "bits_authors": bits_a,
                         "test_accuracy": acc - eps / 10})
            for m in ("entropy", "authors"):
                rows.append({"method": "magnitude pruning", "matched": m, "readout": "r",
                             "bits_entropy": bits_e if m == "entropy" else 2 * bits_a,
                             "bits_authors": bits_a, "test_accuracy": acc})
            rows.append({"method": "compressed", "matched": "-", "readout": "other",
                         "bits_entropy": bits_e, "bits_authors": bits_a, "test_accuracy": 0.0})
    return rows


def test_kernel_agreement_definitions():
    F = features(20, 8)
    K = F @ F.T
    a = experiments.kernel_agreement(F, K)
    assert a.error == pytest.approx(0.0, abs=1e-12) and a.alignment == pytest.approx(1.0)
    Fc = np.hstack([F, math.sqrt(0.4) * np.eye(20)])
    b = experiments.kernel_agreement(Fc, K, 0.4)
    assert b.error == pytest.approx(0.4 / np.linalg.eigvalsh(K)[-1], rel=1e-9)
    assert b.error_corrected == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="K_reference"):
        experiments.kernel_agreement(F, K[:5, :5])


# ------------------------------------------------------------------------- trials
def test_run_trial_rows_and_determinism(small_task):
    kwargs = dict(seed=1, sparsities=(0.0, 0.9), n_kernel=40, ridges=(None, 1.0),
                  shift_ridges=(2.0,),
                  matchings=("entropy", "authors"), logistic_penalty=1e-2)
    rows = experiments.run_trial(small_task, [60, 60, 40], RELU3, **kwargs)
    again = experiments.run_trial(small_task, [60, 60, 40], RELU3, **kwargs)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    assert strip(rows) == strip(again) or all(
        (a == b) or (isinstance(a, float) and math.isnan(a) and math.isnan(b))
        for ra, rb in zip(strip(rows), strip(again)) for a, b in zip(ra.values(), rb.values()))
    methods = {r["method"] for r in rows}
    assert methods == {"dense", "compressed", "naive ternary", "magnitude pruning",
                       "random sparsification", "narrow dense"}
    dense_ridge = [r for r in rows if r["method"] == "dense" and r["readout"] == "ridge"]
    validated = [r for r in rows if r["method"] == "dense" and r["readout"] == "ridge (validated)"]
    assert dense_ridge[0]["ridge"] == validated[0]["penalty"] and dense_ridge[1]["ridge"] == 1.0
    corrected = [r for r in rows if r["readout"] == "shift-corrected ridge"]
    assert len(corrected) == 6                       # 2 sparsities x 3 ridges
    assert [r["ridge_rule"] for r in dense_ridge] == ["dense-validated", "fixed", "2 x shift"]
    assert dense_ridge[2]["ridge"] == pytest.approx(
        2 * compress.compress(RELU3, small_task.tau0).shift)
    for r in corrected:
        assert r["penalty"] == pytest.approx(r["ridge"] - r["shift"])
        assert (math.isnan(r["test_accuracy"])) == r["note"].startswith("infeasible")
    assert all(not math.isnan(r["test_accuracy"]) for r in corrected
               if r["ridge_rule"] == "2 x shift")                     # lambda - shift = shift > 0
    n_w = 64 * 60 + 60 * 60 + 60 * 40
    for r in rows:
        assert 0 <= r["train_accuracy"] <= 1 or math.isnan(r["train_accuracy"])
        if r["method"] in ("magnitude pruning", "random sparsification"):
            key = "bits_" + r["matched"]
            budgets = [memory.ternary_memory(n_w, e).bits(r["matched"]) for e in (0.0, 0.9)]
            assert min(abs(r[key] / b - 1) for b in budgets) < 1e-9
        if r["method"] == "narrow dense":
            budgets = [memory.ternary_memory(n_w, e).bits(r["matched"]) for e in (0.0, 0.9)]
            assert any(0 < r["bits_entropy"] <= b for b in budgets)
    with pytest.raises(ValueError, match="baselines"):
        experiments.run_trial(small_task, [10, 10, 10], RELU3, seed=0, baselines=("dropout",))


def test_summarize_groups_and_ignores_nan():
    rows = [{"m": "a", "x": 1.0}, {"m": "a", "x": 3.0}, {"m": "b", "x": float("nan")},
            {"m": "b", "x": 2.0}]
    s = experiments.summarize(rows, ["m"], "x")
    assert s[0] == {"m": "a", "mean": 2.0, "std": pytest.approx(math.sqrt(2)), "min": 1.0,
                    "max": 3.0, "count": 2}
    assert s[1]["count"] == 1 and s[1]["mean"] == 2.0 and math.isnan(s[1]["std"])


def test_csv_round_trip(tmp_path):
    rows = [{"a": 1, "b": 0.125, "c": "x y", "d": float("nan"), "e": True},
            {"a": 2, "b": 1e-9, "c": "z", "d": 1.0, "e": False}]
    path = experiments.write_csv(rows, tmp_path / "sub" / "r.csv")
    back = experiments.read_csv(path)
    assert back[0]["a"] == 1 and back[0]["b"] == 0.125 and back[0]["c"] == "x y"
    assert back[0]["e"] is True and back[1]["e"] is False
    assert math.isnan(back[0]["d"]) and back[1]["b"] == 1e-9
    with pytest.raises(FileNotFoundError):
        experiments.read_csv(tmp_path / "missing.csv")


# ------------------------------------------------------------------------- fine-tuning
def test_finetune_keeps_zeros_and_is_deterministic(small_task):
    plan = compress.compress(RELU3, small_task.tau0)
    net = baselines.compressed_network(plan, small_task.p, [40, 40, 30], 0.8,
                                       torch.Generator().manual_seed(0))
    F = net.features(small_task.X_train)
    ro = readout.logistic_readout(F, small_task.y_train, 2, 1e-3)
    runs = [experiments.finetune(net, small_task, torch.Generator().manual_seed(1), readout=ro,
                                 epochs=2, batch_size=32, lr=1e-2) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].test_accuracy, runs[1].test_accuracy)
    np.testing.assert_array_equal(runs[0].train_loss, runs[1].train_loss)
    assert runs[0].test_accuracy.shape == (3,)
    assert runs[0].kept_fraction == pytest.approx(net.kept_fraction)
    assert runs[0].test_accuracy[0] == pytest.approx(ro.accuracy(net.features(small_task.X_test),
                                                                small_task.y_test), abs=0.02)
    assert runs[0].train_loss[-1] < runs[0].train_loss[0]        # the straight-through path learns
    # the trained weights it returns reproduce its last test accuracy
    assert [tuple(W.shape) for W in runs[0].hidden] == [(40, small_task.p), (40, 40), (30, 40)]
    assert experiments.weights_accuracy(net, runs[0].hidden, runs[0].readout, small_task.X_test,
                                        small_task.y_test) == runs[0].test_accuracy[-1]
    assert experiments.weights_accuracy(net, net.hidden_weights(), ro.weights, small_task.X_test,
                                        small_task.y_test) == pytest.approx(
        runs[0].test_accuracy[0], abs=0.02)
    with pytest.raises(ValueError, match="hidden"):
        experiments.weights_accuracy(net, runs[0].hidden[:2], runs[0].readout,
                                     small_task.X_test, small_task.y_test)
    with pytest.raises(ValueError, match="readout"):
        experiments.weights_accuracy(net, runs[0].hidden, runs[0].readout[:5],
                                     small_task.X_test, small_task.y_test)
    pruned = baselines.pruned_network(small_task.p, [40, 30], RELU3[:2], small_task.tau0, 0.3,
                                      torch.Generator().manual_seed(0))
    res = experiments.finetune(pruned, small_task, torch.Generator().manual_seed(1), epochs=1)
    assert res.kept_fraction == pytest.approx(pruned.kept_fraction)
    with pytest.raises(ValueError, match="readout"):
        experiments.finetune(pruned, small_task, torch.Generator(),
                             readout=readout.Readout(np.zeros((7, 2)), "ridge", 1.0, "primal"))
    with pytest.raises(ValueError, match="epochs"):
        experiments.finetune(pruned, small_task, torch.Generator(), epochs=0)


# ------------------------------------------------------------------------- tasks
def test_mixture_task_shapes(small_task):
    assert small_task.X_train.shape == (120, 64) and small_task.X_test.shape == (80, 64)
    assert small_task.n_classes == 2 and set(np.unique(small_task.y_test)) == {0, 1}
    with pytest.raises(ValueError, match="n_test"):
        experiments.mixture_task(10, 10, 0, np.random.default_rng(0))


def test_fashion_mnist_task_normalises_with_training_statistics():
    try:
        data.load_fashion_mnist("test")
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST files not installed")
    task = experiments.fashion_mnist_task((7, 9), 30, 20, np.random.default_rng(0))
    assert task.X_train.shape == (60, 784) and task.X_test.shape == (40, 784)
    np.testing.assert_allclose(task.X_train.mean(axis=0), 0.0, atol=1e-12)
    assert task.tau0 == pytest.approx(1.0, rel=1e-12)
    assert abs(task.X_test.mean()) > 1e-6                 # test set is not re-centred
    np.testing.assert_array_equal(np.bincount(task.y_test), [20, 20])
    with pytest.raises(ValueError, match="classes"):
        experiments.fashion_mnist_task((7, 7), 3, 3, np.random.default_rng(0))


def test_accuracy_memory_curves_group_by_method_and_accounting():
    curves = experiments.accuracy_memory_curves(_fake_rows(), "authors", readout="r")
    assert list(curves) == ["dense", "compressed", "magnitude pruning (authors-matched)"]
    np.testing.assert_allclose(curves["compressed"]["bits"], [1.0, 5.0])
    np.testing.assert_allclose(curves["compressed"]["mean"], [0.76, 0.8])
    np.testing.assert_allclose(curves["dense"]["std"], [np.std([0.8, 0.9], ddof=1)])
    entropy = experiments.accuracy_memory_curves(_fake_rows(), "entropy", readout="r")
    assert "magnitude pruning (entropy-matched)" in entropy
    with pytest.raises(ValueError, match="accounting"):
        experiments.accuracy_memory_curves(_fake_rows(), "bits", readout="r")


def test_accuracy_memory_plot_and_format_table():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lossless import plotting

    curves = experiments.accuracy_memory_curves(_fake_rows(), "entropy", readout="r")
    fig, ax = plt.subplots()
    assert plotting.accuracy_memory_plot(ax, curves, spread="range") is ax
    assert ax.get_xscale() == "log" and len(ax.get_legend().get_texts()) == len(curves)
    with pytest.raises(ValueError, match="spread"):
        plotting.accuracy_memory_plot(ax, curves, spread="iqr")
    plt.close(fig)
    text = experiments.format_table([{"a": "x", "b": 1.23456}, {"a": "long", "b": float("nan")}],
                                    {"a": "", "b": ".2f"})
    assert text.splitlines() == ["   a     b", "   x  1.23", "long     -"]


def test_accuracy_memory_grid_fits_the_unclipped_curves():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lossless import plotting

    rows = _fake_rows() + [{"method": "narrow dense", "matched": "entropy", "readout": "r",
                            "bits_entropy": 5.7, "bits_authors": 5.7, "test_accuracy": 0.1}]
    grid = [[experiments.accuracy_memory_curves(rows, acc, readout="r")
             for acc in ("entropy", "authors")]]
    fig, axes = plt.subplots(1, 2, squeeze=False)
    plotting.accuracy_memory_grid(axes, grid, row_labels=["fake"], column_labels=["a", "b"])
    lo, hi = axes[0, 0].get_ylim()
    assert 0.1 < lo < 0.7 and hi > 0.9
    assert any("below the frame" in t.get_text() for t in axes[0, 0].texts)
    assert axes[0, 1].get_xlabel() == "b" and axes[0, 0].get_legend() is None
    plt.close(fig)


def test_kernel_agreement_checks_the_reference_kernel():
    F = features(10, 30)
    K = F @ F.T
    Kb = K.copy()
    Kb[0, 1] += 1.0
    with pytest.raises(ValueError, match="K_reference must be symmetric"):
        experiments.kernel_agreement(F, Kb)
    Kb[0, 1] = np.nan
    with pytest.raises(ValueError, match="K_reference must be finite"):
        experiments.kernel_agreement(F, Kb)
    with pytest.raises(ValueError, match="F must be finite"):
        experiments.kernel_agreement(np.full((10, 3), np.inf), K)


def test_counts_seeds_and_fractions_are_not_truncated_or_parsed(small_task):
    """The issue's cases: numeric strings parsed, float counts truncated, seed=1.7 -> 1."""
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="seed"):
        experiments.run_trial(small_task, [8], RELU3[:1], seed=1.7, sparsities=())
    with pytest.raises(ValueError, match="seed"):
        experiments.run_trial(small_task, [8], RELU3[:1], seed=-1, sparsities=())
    with pytest.raises(TypeError, match="seed"):
        experiments.run_finetune_trial(small_task, [8], RELU3[:1], seed="0")
    with pytest.raises(TypeError, match="n_train"):
        experiments.mixture_task(8, 10.0, 10, rng)
    with pytest.raises(TypeError, match="rng"):
        experiments.mixture_task(8, 10, 10, 0)
    with pytest.raises(TypeError, match="n_weights"):
        memory.dense_memory("100")
    with pytest.raises(TypeError, match="n_weights"):
        memory.ternary_memory(100.0, 0.5)
    with pytest.raises(TypeError, match="sparsity"):
        memory.ternary_memory(100, "0.5")
    with pytest.raises(TypeError, match="x"):
        memory.binary_entropy("0.5")
    with pytest.raises(ValueError, match="x"):
        memory.binary_entropy(math.nan)
    with pytest.raises(TypeError, match=r"widths\[0\]"):
        baselines.narrow_widths(10, [5.5], 100)
    with pytest.raises(ValueError, match="n_weights"):
        baselines.narrow_widths(10, [5], math.inf)
    with pytest.raises(TypeError, match="p"):
        baselines.dense_network(8.0, [4], RELU3[:1], 1.0, torch.Generator())
    with pytest.raises(TypeError, match=r"widths\[1\]"):
        baselines.pruned_network(8, [4, 2.0], RELU3[:2], 1.0, 0.5, torch.Generator())
    with pytest.raises(ValueError, match="matched"):
        baselines.pruned_network(8, [4], RELU3[:1], 1.0, 0.5, torch.Generator(), matched="bits")
    with pytest.raises(ValueError, match="accounting"):
        memory.ternary_memory(100, 0.5).bits(["entropy"])
    with pytest.raises(ValueError, match="value_bits"):
        memory.matched_kept_fraction(1.0, "entropy", value_bits=0.5)
    with pytest.raises(TypeError, match="bits_per_weight"):
        memory.matched_kept_fraction("1.0", "entropy")
    with pytest.raises(ValueError, match="bits"):
        baselines.narrow_dense_network(8, [4], RELU3[:1], 1.0, -32.0, torch.Generator())


def test_run_trial_checks_every_argument_by_name(small_task):
    base = dict(seed=0, sparsities=())
    cases = [
        (dict(ridges=[math.nan]), ValueError, r"ridges\[0\]"),
        (dict(ridges="0.1"), TypeError, "ridges"),
        (dict(shift_ridges=[2.0j]), TypeError, r"shift_ridges\[0\]"),
        (dict(sparsities=[0.5, 1.0]), ValueError, r"sparsities\[1\]"),
        (dict(baselines=["magic"]), ValueError, r"baselines\[0\]"),
        (dict(matchings=["bits"]), ValueError, r"matchings\[0\]"),
        (dict(logistic_penalty=0.0), ValueError, "logistic_penalty"),
        (dict(n_kernel=2.5), TypeError, "n_kernel"),
        (dict(n_kernel=-1), ValueError, "n_kernel"),
        (dict(progress="yes"), TypeError, "progress"),
        (dict(activation=3), TypeError, "activation"),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            experiments.run_trial(small_task, [8], RELU3[:1], **{**base, **kwargs})
    with pytest.raises(TypeError, match="layers"):
        experiments.run_trial(small_task, [8], "relu", **base)
    with pytest.raises(ValueError, match="widths"):
        experiments.run_trial(small_task, [8, 8], RELU3[:1], **base)


def test_task_checks_its_arrays():
    X, y = np.zeros((4, 3)), np.array([0, 1, 0, 1])
    task = experiments.Task("t", X, y, X, y, 2)
    assert task.n_train == 4 and task.n_classes == 2
    with pytest.raises(ValueError, match="X_train must be finite"):
        experiments.Task("t", np.full((4, 3), np.nan), y, X, y, 2)
    with pytest.raises(ValueError, match="X_test must have shape"):
        experiments.Task("t", X, y, np.zeros((4, 2)), y, 2)
    with pytest.raises(ValueError, match="labels must be in"):
        experiments.Task("t", X, y + 1, X, y, 2)
    with pytest.raises(TypeError, match="labels"):
        experiments.Task("t", X, y.astype(float), X, y, 2)
    with pytest.raises(TypeError, match="n_classes"):
        experiments.Task("t", X, y, X, y, 2.0)


def test_fashion_mnist_task_refuses_float_classes_before_loading():
    with pytest.raises(TypeError, match=r"classes\[1\]"):
        experiments.fashion_mnist_task((7, 9.5), 3, 3, np.random.default_rng(0))
    with pytest.raises(TypeError, match="n_train_per_class"):
        experiments.fashion_mnist_task((7, 9), 3.0, 3, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        experiments.fashion_mnist_task((7, 9), 3, 3, 0)


def test_tables_and_files_name_the_bad_argument(tmp_path):
    rows = [{"method": "a", "test_accuracy": 0.5}, {"method": "a", "test_accuracy": "0.7"}]
    with pytest.raises(TypeError, match=r"rows\[1\]\['test_accuracy'\]"):
        experiments.summarize(rows, ["method"])
    with pytest.raises(ValueError, match="rows\\[0\\] has no key 'dataset'"):
        experiments.summarize(rows[:1], ["dataset"])
    with pytest.raises(TypeError, match="keys"):
        experiments.summarize(rows[:1], "method")
    with pytest.raises(TypeError, match=r"rows\[0\] must be a dict"):
        experiments.summarize([("method", "a")], ["method"])
    with pytest.raises(ValueError, match=r"columns\['x'\]"):
        experiments.format_table([{"x": "text"}], {"x": ".3f"})
    with pytest.raises(TypeError, match="columns"):
        experiments.format_table([{"x": 1}], ["x"])
    with pytest.raises(TypeError, match="path"):
        experiments.write_csv([{"a": 1}], 3)
    with pytest.raises(TypeError, match="path"):
        experiments.read_csv(None)
    with pytest.raises(TypeError, match="rows"):
        experiments.write_csv("rows", tmp_path / "x.csv")


def test_finetune_checks_its_arguments(small_task):
    pruned = baselines.pruned_network(small_task.p, [10], RELU3[:1], small_task.tau0, 0.5,
                                      torch.Generator().manual_seed(0))
    gen = torch.Generator()
    with pytest.raises(TypeError, match="readout"):
        experiments.finetune(pruned, small_task, gen, readout=np.zeros((10, 2)))
    with pytest.raises(ValueError, match="lr"):
        experiments.finetune(pruned, small_task, gen, lr=math.inf)
    with pytest.raises(TypeError, match="epochs"):
        experiments.finetune(pruned, small_task, gen, epochs=1.0)
    with pytest.raises(TypeError, match="generator"):
        experiments.finetune(pruned, small_task, 0)
    with pytest.raises(TypeError, match="progress"):
        experiments.finetune(pruned, small_task, gen, progress=1)


def test_power_law_recovers_its_parameters_and_inverts():
    w = np.array([500.0, 1000.0, 2000.0, 4000.0])
    law = experiments.fit_power_law(w, 3.0 * w ** -0.5)
    assert law.coefficient == pytest.approx(3.0) and law.exponent == pytest.approx(0.5)
    assert law.residual < 1e-12
    assert law.width_for(3.0 / 100.0) == pytest.approx(1e4)
    # a very flat law reaches a small value only at an astronomically large width
    assert experiments.PowerLaw(1.0, 1e-4).width_for(0.5) == math.inf
    assert np.allclose(law(w), 3.0 * w ** -0.5)


def test_power_law_refuses_bad_input():
    with pytest.raises(ValueError, match="values must be positive"):
        experiments.fit_power_law([1, 2], [1.0, -1.0])
    with pytest.raises(ValueError, match="widths must hold at least two distinct"):
        experiments.fit_power_law([2, 2], [1.0, 1.0])
    with pytest.raises(ValueError, match="value"):
        experiments.PowerLaw(1.0, 0.5).width_for(0.0)


def test_alignment_is_one_for_a_class_kernel_and_falls_with_added_noise():
    y = np.repeat([0, 1, 2], 20)
    Y = np.eye(3)[y]
    assert experiments.kernel_target_alignment(Y @ Y.T, y, 3) == pytest.approx(1.0)
    G = np.random.default_rng(0).standard_normal((60, 600)) / np.sqrt(600)
    align = [experiments.kernel_target_alignment(Y @ Y.T + s * G @ G.T, y, 3)
             for s in (0.1, 1.0, 10.0)]
    assert 1.0 > align[0] > align[1] > align[2] > 0.0
    with pytest.raises(ValueError, match="labels"):
        experiments.kernel_target_alignment(Y @ Y.T, y[:-1], 3)


def test_table_renders_the_text_tables_cells_as_html():
    records = [{"method": "dense", "acc": 0.9123}, {"method": "compressed net", "acc": float("nan")}]
    table = experiments.Table(records, {"method": "", "acc": ".3f"}, caption="a <caption>")
    assert repr(table) == "a <caption>\n" + experiments.format_table(records, {"method": "",
                                                                              "acc": ".3f"})
    html = table._repr_html_()
    assert "<td>compressed net</td><td>-</td>" in html and "a &lt;caption&gt;" in html
    with pytest.raises(TypeError, match="caption"):
        experiments.Table(records, {"method": ""}, caption=3)
