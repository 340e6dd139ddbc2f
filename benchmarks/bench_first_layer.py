"""Benchmark: the first layer's weight law (its fourth cumulant kappa4) in the kernels.

The widths go to infinity first, so layers 2..L are Gaussian given the first layer's
kernel K_1; but K_1 = E_w[sigma^c(w.x_i) sigma^c(w.x_j)] sums over the p fixed input
coordinates, so it depends on kappa4 = E w^4 - 3 of the first layer's weights (sparse
ternary weights at sparsity eps: kappa4 = 1/(1 - eps) - 3). This script puts the package's
first-order formula (``kernels.first_layer_correction``, the book's eq-first-layer-kappa4)
and its leading order in p (the D block of K̃, ``theory.first_layer_term``,
eq-first-layer-equivalent) against Monte Carlo with the package's own weight sampler
(``networks.ternary_weights``), on ``data.preset("shape", p)`` with n = 2p:

- ``theory``: size of the kappa4 term against p (off-diagonal part, both sides projected
  off the constant vector, operator norm relative to the kernel projected the same
  way), for t^2, ReLU, erf and the compressed ReLU's first-layer ternary step;
- ``one-layer``: one layer, ``sigma(X W^T) - m`` with W of width ``--width`` (in chunks),
  for every activation, sparsity (0, 2/3, 0.9, 0.99, and Gaussian weights), p; the
  class-block means of the off-diagonal entries of (empirical - Gaussian exact) against
  the first-order term and against its leading form, with Monte Carlo standard errors
  from ``--batches`` independent batches; for ReLU at every p also the operator-norm
  residuals with their noise floor (two independent halves);
- ``deep``: three ReLU layers, layers 2-3 at infinite width given the measured K_1 (the
  exact Gaussian recursion run from it), and a finite network (``networks.MLP``,
  ternary first layer, Gaussian layers 2-3) at p = 128;
- ``remedies``: eps = 2/3 in layer 1 (kappa4 = 0), a dense Gaussian first layer, a random
  rotation of the inputs; and the bytes of each first-layer choice at p = 784, d1 = 2000;
- ``fashion``: D (per-class covariance diagonals) against T on Fashion-MNIST, raw and
  rotated; kernel ridge with the compressed network's limit CK with and without the
  kappa4 term; the measured accuracies of ``frontier_rotation.csv``/``frontier_limit.csv``
  and ``practice.csv`` (read, not rerun).

Writes ``benchmarks/results/first_layer.json`` (everything, with clear keys) and
``first_layer.csv`` (the one-layer and deep rows). Usage::

    nice -n 5 python benchmarks/bench_first_layer.py            # the committed run
    python benchmarks/bench_first_layer.py --ps 64 128 --width 16384 --parts theory one-layer \\
        --out /tmp/first_layer.json
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lossless import activations, compress, data, experiments, kernels, memory, readout, theory
from lossless.display import progress
from lossless.networks import MLP, gaussian_weights, ternary_weights

RESULTS = Path(__file__).resolve().parent / "results"
RELU = activations.get("relu")
SPARSITIES = (0.0, 2.0 / 3.0, 0.9, 0.99)
FORMULAS = {
    "kappa4": "kappa4 = E w^4 - 3 of the first layer's i.i.d. symmetric unit-variance weights; "
              "sparse ternary at sparsity eps: E w^4 = 1/(1 - eps)",
    "eq-first-layer-kappa4": "Delta K_1(i,j) = (kappa4/24) sum_{r=0..4} C(4,r) S_r(i,j) "
                             "E_G[f^(r)(u) f^(4-r)(v)], S_r(i,j) = sum_k x_ik^r x_jk^(4-r), "
                             "f = sigma^c (CK) or sigma' (derivative kernel K'_1); on the "
                             "diagonal (kappa4/24) sum_k x_ik^4 E_G[(f^2)''''(u)]; exact for "
                             "polynomials of degree <= 2: kappa4 c^2 (X o X)(X o X)^T for "
                             "sigma = c t^2 + ...",
    "eq-first-layer-equivalent": "K~_CK gains alpha_{L,5} (J/sqrt p) D (J/sqrt p)^T, "
                                 "D_ab = sum_k (C_a)_kk (C_b)_kk / p; alpha_{1,5} = kappa4 "
                                 "g2^2/4, alpha_{l,5} = g1,l^2 alpha_{l-1,5}; K~_NTK gains "
                                 "beta_{L,5} (same block), beta_{l,5} = alpha_{l,5} + "
                                 "g1dot,l^2 beta_{l-1,5}",
    "rel_size": "||P off(Delta K) P|| / ||P K P||, P = I - 11^T/n, off() zeroes the diagonal, "
                "operator norms",
    "class_size": "||Pi off(Delta K) Pi|| / ||P K P||, Pi the orthogonal projector on the "
                  "class indicators centred (projected off 1)",
    "rel_size_vs_offdiagonal_kernel": "||P off(Delta K) P|| / ||P off(K) P|| (the issue's "
                                      "measure for t^2: the kernel without its diagonal)",
    "contrast": "B00 - 2 B01 + B11 of the off-diagonal class-block means B_ab "
                "(two classes): the class-informative direction",
    "level": "mean of all off-diagonal entries: the constant direction 11^T",
}


# ----------------------------------------------------------------------------------
# helpers


def kappa4_of(eps: float) -> float:
    """kappa4 = 1/(1 - eps) - 3 of sparse ternary weights (rounded: 0 at eps = 2/3)."""
    return round(1.0 / (1.0 - eps) - 3.0, 12) + 0.0  # no -0.0


def haar(p: int, seed: int) -> np.ndarray:
    """A Haar-random orthogonal matrix (the same construction as run_frontier.rotated)."""
    rng = np.random.default_rng(10_000 + seed)
    Q, R = np.linalg.qr(rng.standard_normal((p, p)))
    return Q * np.sign(np.diag(R))


def offdiag(M: np.ndarray) -> np.ndarray:
    out = M.copy()
    np.fill_diagonal(out, 0.0)
    return out


def opnorm(M: np.ndarray) -> float:
    """Largest |eigenvalue| of the symmetric part (Lanczos above 600 rows)."""
    S = 0.5 * (M + M.T)
    if not np.any(S):
        return 0.0
    if S.shape[0] <= 600:
        return float(np.max(np.abs(np.linalg.eigvalsh(S))))
    from scipy.sparse.linalg import ArpackError, eigsh

    v0 = np.random.default_rng(0).standard_normal(S.shape[0])  # fixed start: reproducible
    try:
        return float(np.max(np.abs(eigsh(S, k=1, which="LM", return_eigenvectors=False,
                                         v0=v0, tol=1e-10))))
    except ArpackError:  # pragma: no cover - fall back on the dense solver
        return float(np.max(np.abs(np.linalg.eigvalsh(S))))


def centre(M: np.ndarray) -> np.ndarray:
    """P M P with P = I - 11^T/n."""
    M = M - M.mean(axis=0, keepdims=True)
    return M - M.mean(axis=1, keepdims=True)


def class_projector(J: np.ndarray) -> np.ndarray:
    Jc = J - J.mean(axis=0, keepdims=True)
    U, s, _ = np.linalg.svd(Jc, full_matrices=False)
    U = U[:, s > 1e-10 * s[0]]
    return U @ U.T


def sizes(delta: np.ndarray, K: np.ndarray, Pi: np.ndarray) -> dict:
    ref = opnorm(centre(K))
    off = offdiag(delta)
    size = opnorm(centre(off))
    return {"rel_size": size / ref, "class_size": opnorm(Pi @ off @ Pi) / ref,
            "rel_size_vs_offdiagonal_kernel": size / opnorm(centre(offdiag(K)))}


def block_means(M: np.ndarray, J: np.ndarray) -> np.ndarray:
    """Class-block means of the off-diagonal entries, shape (K, K)."""
    n = M.shape[0]
    counts = J.T @ (np.ones((n, n)) - np.eye(n)) @ J
    return J.T @ offdiag(M) @ J / counts


def contrast(B: np.ndarray) -> float:
    return float(B[0, 0] - 2.0 * B[0, 1] + B[1, 1])


def level(B: np.ndarray, counts: np.ndarray) -> float:
    """Mean of all off-diagonal entries from the class-block means."""
    pairs = np.outer(counts, counts) - np.diag(counts)
    return float(np.sum(B * pairs) / np.sum(pairs))


def step_of(tau0: float) -> activations.Activation:
    """The first-layer ternary step of the compressed three-layer ReLU network."""
    return compress.compress([RELU] * 3, tau0).layers[0]


def activation_set(names: list[str], tau0: float) -> dict:
    table = {"relu": RELU, "erf": activations.get("erf"),
             "square": activations.Polynomial([0.0, 0.0, 1.0], name="square")}
    return {name: (step_of(tau0) if name == "step" else table[name]) for name in names}


def r(x: float, digits: int = 6) -> float:
    """Rounded for the JSON (significant digits): printed numbers must not depend on the
    last bits of a BLAS summation."""
    if x is None or not math.isfinite(x):
        return x
    return float(f"{x:.{digits}g}")


# ----------------------------------------------------------------------------------
# Monte Carlo: one layer


def draw(shape, eps, generator):
    if eps is None:
        return gaussian_weights(shape, generator, dtype=torch.float64)
    return ternary_weights(shape, eps, generator, dtype=torch.float64)


def one_layer_mc(X: np.ndarray, J: np.ndarray, acts: dict, centres: dict, eps, width: int,
                 chunk: int, batches: int, generator: torch.Generator, full: set,
                 show: bool, desc: str) -> dict:
    """Per batch: off-diagonal class-block means and diagonal of sigma^c(XW^T) Gram / d.

    ``full``: activations whose whole n x n Gram is accumulated (two halves)."""
    n, p = X.shape
    K = J.shape[1]
    Xt = torch.from_numpy(np.ascontiguousarray(X))
    Jt = torch.from_numpy(np.ascontiguousarray(J.T))
    per_batch = max(1, width // batches // chunk)
    d_batch = per_batch * chunk
    groups = 4
    out = {name: {"blocks": np.zeros((batches, K, K)), "diag": np.zeros((batches, n)),
                  "groups": [torch.zeros(n, n, dtype=torch.float64) for _ in range(groups)]
                  if name in full else None} for name in acts}
    counts = J.sum(axis=0)
    pairs = np.outer(counts, counts) - np.diag(counts)
    for b in progress(range(batches), show, desc):
        sums = {name: torch.zeros(K, K, dtype=torch.float64) for name in acts}
        dsum = {name: torch.zeros(n, dtype=torch.float64) for name in acts}
        for _ in range(per_batch):
            Z = Xt @ draw((chunk, p), eps, generator).T
            for name, act in acts.items():
                F = act(Z) - centres[name]
                G = Jt @ F
                sums[name] += G @ G.T
                sq = (F * F).sum(dim=1)
                dsum[name] += sq
                if name in full:
                    out[name]["groups"][b * groups // batches] += F @ F.T
        for name in acts:
            S = sums[name].numpy()
            diag = dsum[name].numpy()
            S = S - np.diag(J.T @ diag)
            out[name]["blocks"][b] = S / pairs / d_batch
            out[name]["diag"][b] = diag / d_batch
    for name in acts:
        if name in full:
            size = d_batch * batches // groups
            out[name]["groups"] = [g.numpy() / size for g in out[name]["groups"]]
            for g in out[name]["groups"]:
                g[...] = 0.5 * (g + g.T)
    out["width"] = d_batch * batches
    return out


def summarize_mc(mc: dict, K_G: np.ndarray, pred: np.ndarray, lead: np.ndarray,
                 J: np.ndarray) -> dict:
    """Measured (empirical - Gaussian exact) against the two predictions, block means."""
    counts = J.sum(axis=0)
    BG, BP, BL = block_means(K_G, J), block_means(pred, J), block_means(lead, J)
    blocks = mc["blocks"] - BG[None]
    B = blocks.mean(axis=0)
    nb = blocks.shape[0]
    c_b = np.array([contrast(x) for x in blocks])
    l_b = np.array([level(x, counts) for x in blocks])
    dg = mc["diag"] - np.diag(K_G)[None]
    d_b = dg.mean(axis=1)
    se = lambda v: float(np.std(v, ddof=1) / math.sqrt(nb))  # noqa: E731
    before = float(np.linalg.norm(B))
    return {
        "contrast_measured": contrast(B), "contrast_se": se(c_b),
        "contrast_first_order": contrast(BP), "contrast_leading": contrast(BL),
        "level_measured": level(B, counts), "level_se": se(l_b),
        "level_first_order": level(BP, counts), "level_leading": level(BL, counts),
        "diag_measured": float(d_b.mean()), "diag_se": se(d_b),
        "diag_first_order": float(np.mean(np.diag(pred))),
        "blocks_residual_before": before,
        "blocks_residual_after_first_order": float(np.linalg.norm(B - BP)),
        "blocks_residual_after_leading": float(np.linalg.norm(B - BL)),
        "blocks_noise": float(np.linalg.norm(blocks.std(axis=0, ddof=1) / math.sqrt(nb))),
        # the share of the measured contrast the first-order term explains, where the
        # measured contrast is significant (3 standard errors), else None
        "contrast_explained_first_order": 1.0 - abs(contrast(B) - contrast(BP)) / abs(contrast(B))
        if abs(contrast(B)) > 3 * se(c_b) else None,
    }


def full_matrix_summary(groups: list, K_G: np.ndarray, pred: np.ndarray, lead: np.ndarray,
                        Pi: np.ndarray) -> dict:
    """Operator-norm residuals of the whole projected off-diagonal part, with the noise floor
    (half the difference of the two halves' means: the noise of the mean, in norm)."""
    g = len(groups)
    first, second = sum(groups[: g // 2]) / (g // 2), sum(groups[g // 2:]) / (g - g // 2)
    emp = 0.5 * (first + second)
    M = offdiag(emp - K_G)
    noise = offdiag(0.5 * (first - second))
    ref = opnorm(centre(K_G))
    out = {}
    for tag, proj in (("projected", centre), ("class", lambda A: Pi @ A @ Pi)):
        out[f"{tag}_measured"] = opnorm(proj(M)) / ref
        out[f"{tag}_noise"] = opnorm(proj(noise)) / ref
        out[f"{tag}_after_first_order"] = opnorm(proj(M - offdiag(pred))) / ref
        out[f"{tag}_after_leading"] = opnorm(proj(M - offdiag(lead))) / ref
    return out


# ----------------------------------------------------------------------------------
# parts


def part_theory(args, log) -> list[dict]:
    rows = []
    names = ["square", "relu", "erf", "step"]
    for p in progress(args.theory_ps, args.progress, "theory"):
        sample = data.preset("shape", p).sample(2 * p, np.random.default_rng(args.seed))
        X = sample.X
        Pi = class_projector(sample.J)
        acts = activation_set(names, sample.tau0)
        for name, act in acts.items():
            if name != "square" and p > max(args.ps):
                continue
            t0 = time.perf_counter()
            K = kernels.exact_ck(X, [act])
            unit = kernels.first_layer_correction(X, [act], 4.0)  # kappa4 = 1
            lead = theory.first_layer_term(sample, [act], 4.0)
            s_exact, s_lead = sizes(unit, K, Pi), sizes(lead, K, Pi)
            s_unprojected = opnorm(offdiag(unit)) / opnorm(K)
            tau1sq = act.moments(sample.tau0).v
            diag_change = float(np.mean(np.diag(unit))) / tau1sq
            # the change of the mean E_w sigma^c(u_i) - E_G sigma^c(u_i), first order:
            # dm_i = (kappa4/24) sum_k x_ik^4 E_G[sigma''''(nu_i xi)] (private helper of
            # kernels: E[f(s xi) He_4(xi)] / s^4); it enters the kernel as dm dm^T
            # (second order in kappa4, rank one)
            nu = np.sqrt(np.sum(X * X, axis=1))
            dm = (np.sum(X**4, axis=1) / 24.0
                  * kernels._second_derivative_weight(act, act, nu))
            mean_rank_one = opnorm(centre(np.outer(dm, dm))) / opnorm(centre(K))
            mean_rank_one_unprojected = float(dm @ dm) / opnorm(K)
            ntk_part = ntk_total = None
            if name in ("square", "relu", "erf"):  # the derivative kernel's share (NTK)
                dn = kernels.first_layer_correction(X, [act], 4.0, kernel="ntk")
                N1 = kernels.exact_ntk(X, [act])
                ntk_part = opnorm(centre(offdiag(dn - unit))) / opnorm(centre(N1))
                ntk_total = opnorm(centre(offdiag(dn))) / opnorm(centre(N1))
            for eps in (2.0 / 3.0, 0.9, 0.99):
                k4 = kappa4_of(eps)
                rows.append({
                    "activation": name, "p": p, "n": 2 * p, "sparsity": r(eps),
                    "kappa4": r(k4), "nonzeros_per_row": r(p * (1 - eps), 4),
                    "rel_size_first_order": r(abs(k4) * s_exact["rel_size"]),
                    "rel_size_leading": r(abs(k4) * s_lead["rel_size"]),
                    "class_size_first_order": r(abs(k4) * s_exact["class_size"]),
                    "class_size_leading": r(abs(k4) * s_lead["class_size"]),
                    "rel_size_vs_offdiagonal_kernel_first_order": r(
                        abs(k4) * s_exact["rel_size_vs_offdiagonal_kernel"]),
                    "unprojected_offdiag_rel_size": r(abs(k4) * s_unprojected),
                    "diag_change_over_tau1sq": r(k4 * diag_change),
                    "mean_shift_rank_one_rel_size": r(k4**2 * mean_rank_one),
                    "mean_shift_rank_one_unprojected_rel_size": r(
                        k4**2 * mean_rank_one_unprojected),
                    "ntk_layer1_derivative_part_rel_size": None if ntk_part is None
                    else r(abs(k4) * ntk_part),
                    "ntk_layer1_total_rel_size": None if ntk_total is None
                    else r(abs(k4) * ntk_total),
                    "seconds": r(time.perf_counter() - t0, 3)})
            log(f"theory p={p} {name}: kappa4=7 rel size {7 * s_exact['rel_size']:.4f} "
                f"(leading {7 * s_lead['rel_size']:.4f})")
    return rows


def part_propagation(args, log) -> list[dict]:
    """Three ReLU layers: the exact first-order term against the alpha_5 / beta_5 block."""
    rows = []
    layers = [RELU] * 3
    for p in progress(args.ps, args.progress, "propagation"):
        sample = data.preset("shape", p).sample(2 * p, np.random.default_rng(args.seed))
        X, J = sample.X, sample.J
        Pi = class_projector(J)
        c = theory.coefficients(layers, sample.tau0, first_layer_m4=4.0)
        for kernel in ("ck", "ntk"):
            for depth in (1, 2, 3):
                ex = kernels.first_layer_correction(X, layers[:depth], 4.0, kernel=kernel)
                ld = theory.first_layer_term(sample, layers[:depth], 4.0, kernel=kernel)
                Kd = (kernels.exact_ck(X, layers[:depth]) if kernel == "ck"
                      else kernels.exact_ntk(X, layers[:depth]))
                rows.append({
                    "kernel": kernel, "depth": depth, "p": p, "kappa4": 1.0,
                    "coefficient": r(float((c.alpha5 if kernel == "ck" else c.beta5)[depth])),
                    "contrast_first_order": r(contrast(block_means(ex, J))),
                    "contrast_leading": r(contrast(block_means(ld, J))),
                    "class_size_first_order": r(sizes(ex, Kd, Pi)["class_size"]),
                    "class_size_leading": r(sizes(ld, Kd, Pi)["class_size"]),
                    "residual_projected_rel": r(opnorm(centre(offdiag(ex - ld)))
                                                / opnorm(centre(offdiag(ld))))})
            log(f"propagation p={p} {kernel}: contrast first order / leading at L=3 "
                f"{rows[-1]['contrast_first_order']:.4g} / {rows[-1]['contrast_leading']:.4g}")
    return rows


def part_one_layer(args, log) -> tuple[list[dict], dict]:
    rows, full_store = [], {}
    names = list(args.activations)
    weight_laws = [("gaussian", None)] + [(f"ternary eps={e:.4g}", e) for e in args.sparsities]
    for pi, p in enumerate(args.ps):
        sample = data.preset("shape", p).sample(2 * p, np.random.default_rng(args.seed))
        acts = activation_set(names, sample.tau0)
        centres = {k: a.moments(sample.tau0).m for k, a in acts.items()}
        Q = haar(p, args.seed)
        inputs = {"x": sample.X, "Qx": sample.X @ Q}
        Pi = class_projector(sample.J)
        for inp, X in inputs.items():
            K_G = {k: kernels.exact_ck(X, [a], tau0=sample.tau0) for k, a in acts.items()}
            unit = {k: kernels.first_layer_correction(X, [a], 4.0, tau0=sample.tau0)
                    for k, a in acts.items()}
            rot_sample = sample if inp == "x" else data.Sample(
                X, sample.labels, data.GaussianMixture(
                    sample.mixture.means @ Q,
                    np.stack([Q.T @ sample.mixture.cov(a) @ Q for a in range(sample.n_classes)]),
                    sample.mixture.weights))
            lead_unit = {k: theory.first_layer_term(rot_sample, [a], 4.0, tau0=sample.tau0)
                         for k, a in acts.items()}
            for wi, (law, eps) in enumerate(weight_laws):
                if inp == "Qx" and (eps is None or eps < 0.85):
                    continue
                k4 = 0.0 if eps is None else kappa4_of(eps)
                gen = torch.Generator().manual_seed(args.seed * 100_000 + 1000 * pi + 10 * wi
                                                    + (inp == "Qx"))
                t0 = time.perf_counter()
                full = {"relu"} if "relu" in acts else set()
                mc = one_layer_mc(X, sample.J, acts, centres, eps, args.width, args.chunk,
                                  args.batches, gen, full, args.progress, f"p={p} {law} {inp}")
                seconds = time.perf_counter() - t0
                for name in acts:
                    pred, lead = k4 * unit[name], k4 * lead_unit[name]
                    s = summarize_mc(mc[name], K_G[name], pred, lead, sample.J)
                    row = {"part": "one-layer", "activation": name, "depth": 1, "p": p,
                           "n": 2 * p, "inputs": inp, "weights": law,
                           "sparsity": None if eps is None else r(eps), "kappa4": r(k4),
                           "nonzeros_per_row": None if eps is None else r(p * (1 - eps), 4),
                           "width": mc["width"],
                           "theory_rel_size": r(sizes(pred, K_G[name], Pi)["rel_size"]),
                           "theory_class_size": r(sizes(pred, K_G[name], Pi)["class_size"]),
                           "leading_class_size": r(sizes(lead, K_G[name], Pi)["class_size"]),
                           **{k: r(v) for k, v in s.items()}, "seconds": r(seconds, 3)}
                    if mc[name]["groups"] is not None:
                        fm = full_matrix_summary(mc[name]["groups"], K_G[name], pred, lead, Pi)
                        row.update({f"opnorm_{k}": r(v) for k, v in fm.items()})
                        if name == "relu" and inp == "x":
                            full_store[(p, eps)] = (sample, mc[name]["groups"])
                    rows.append(row)
                    log(f"one-layer p={p} {inp} {law:>18} {name:>5}: contrast "
                        f"{s['contrast_measured']:+.3e} ± {s['contrast_se']:.1e}, first order "
                        f"{s['contrast_first_order']:+.3e}, leading {s['contrast_leading']:+.3e}")
    return rows, full_store


def psd_root(K: np.ndarray) -> np.ndarray:
    s, U = np.linalg.eigh(0.5 * (K + K.T))
    s = np.clip(s, 0.0, None)
    return U * np.sqrt(s)


def part_deep(args, full_store: dict, log) -> list[dict]:
    rows = []
    layers = [RELU] * 3
    for (p, eps), (sample, groups) in progress(sorted(full_store.items(), key=lambda t: (
            t[0][0], -1 if t[0][1] is None else t[0][1])), args.progress, "deep"):
        X = sample.X
        tau1 = activations.layer_scales([RELU], sample.tau0)[1]
        k4 = 0.0 if eps is None else kappa4_of(eps)
        K3 = kernels.exact_ck(X, layers)
        # layers 2-3 at infinite width, given each half's measured K_1
        prop = [kernels.exact_ck(psd_root(h), layers[1:], tau0=tau1) for h in groups]
        pred = kernels.first_layer_correction(X, layers, 4.0) * k4
        lead = theory.first_layer_term(sample, layers, 4.0) * k4
        Pi = class_projector(sample.J)
        B = [block_means(h - K3, sample.J) for h in prop]
        Bm = sum(B) / len(B)
        c_g = np.array([contrast(b) for b in B])
        BP, BL = block_means(pred, sample.J), block_means(lead, sample.J)
        fm = full_matrix_summary(prop, K3, pred, lead, Pi)
        row = {"part": "deep", "activation": "relu", "depth": 3, "p": p, "n": 2 * p,
               "inputs": "x", "weights": "gaussian" if eps is None else f"ternary eps={eps:.4g}",
               "sparsity": None if eps is None else r(eps), "kappa4": r(k4),
               "nonzeros_per_row": None if eps is None else r(p * (1 - eps), 4),
               "width": "inf (layers 2-3), first layer as one-layer",
               "contrast_measured": r(contrast(Bm)),
               "contrast_se": r(float(np.std(c_g, ddof=1) / math.sqrt(c_g.size))),
               "contrast_first_order": r(contrast(BP)), "contrast_leading": r(contrast(BL)),
               "theory_class_size": r(sizes(pred, K3, Pi)["class_size"]),
               "leading_class_size": r(sizes(lead, K3, Pi)["class_size"]),
               **{f"opnorm_{k}": r(v) for k, v in fm.items()}}
        rows.append(row)
        log(f"deep p={p} {row['weights']:>18}: contrast {row['contrast_measured']:+.3e} "
            f"(± {row['contrast_se']:.1e}), first order {row['contrast_first_order']:+.3e}, "
            f"leading {row['contrast_leading']:+.3e}")
    return rows


def part_mlp(args, log) -> list[dict]:
    """A finite network of the package (networks.MLP): ternary layer 1, Gaussian 2-3."""
    rows = []
    p = args.mlp_p
    sample = data.preset("shape", p).sample(2 * p, np.random.default_rng(args.seed))
    X = sample.X
    layers = [RELU] * 3
    K3 = kernels.exact_ck(X, layers)
    unit = kernels.first_layer_correction(X, layers, 4.0)
    for eps in [None] + list(args.mlp_sparsities):
        def sampler(shape, generator, dtype, sparsity, _eps=eps):
            if _eps is not None and len(shape) == 2 and shape[1] == p:
                return ternary_weights(shape, _eps, generator, dtype=dtype)
            return gaussian_weights(shape, generator, dtype=dtype)

        gen = torch.Generator().manual_seed(args.seed * 7 + (0 if eps is None
                                                             else int(round(eps * 1000))))
        t0 = time.perf_counter()
        Xt = torch.from_numpy(np.ascontiguousarray(X))
        draws = []
        for _ in progress(range(args.mlp_draws), args.progress, f"MLP eps={eps}"):
            net = MLP(p, [args.mlp_width] * 3, layers, sample.tau0, weights=sampler,
                      generator=gen, dtype=torch.float64)
            with torch.no_grad():
                F = net.features(Xt)
            draws.append(contrast(block_means((F @ F.T).numpy() - K3, sample.J)))
        k4 = 0.0 if eps is None else kappa4_of(eps)
        c = np.array(draws)
        row = {"part": "mlp", "activation": "relu", "depth": 3, "p": p, "n": 2 * p,
               "inputs": "x", "weights": "gaussian (all layers)" if eps is None
               else f"ternary eps={eps:.4g} (layer 1), gaussian (2-3)",
               "sparsity": None if eps is None else r(eps), "kappa4": r(k4),
               "width": args.mlp_width,
               "draws": args.mlp_draws, "contrast_measured": r(float(c.mean())),
               "contrast_se": r(float(c.std(ddof=1) / math.sqrt(c.size))),
               "contrast_first_order": r(contrast(block_means(k4 * unit, sample.J))),
               "seconds": r(time.perf_counter() - t0, 3)}
        rows.append(row)
        log(f"MLP p={p} width {args.mlp_width} eps={eps}: contrast "
            f"{row['contrast_measured']:+.3e} ± {row['contrast_se']:.1e}, first order "
            f"{row['contrast_first_order']:+.3e}")
    return rows


def binary_entropy(eps: float) -> float:
    if eps <= 0.0 or eps >= 1.0:
        return 0.0
    return -eps * math.log2(eps) - (1.0 - eps) * math.log2(1.0 - eps)


def part_bytes() -> dict:
    p, d1, rest = 784, 2000, 2000 * 2000 + 2000 * 1000
    choices = {"ternary eps=0.99": ("ternary", 0.99), "ternary eps=0.9": ("ternary", 0.9),
               "ternary eps=2/3 (kappa4 = 0)": ("ternary", 2.0 / 3.0),
               "ternary eps=0 (dense +-1, kappa4 = -2)": ("ternary", 0.0),
               "dense fp32 (Gaussian, kappa4 = 0)": ("fp32", None)}
    out = {"p": p, "d1": d1, "first_layer_weights": p * d1,
           "rest_weights (2000x2000 + 2000x1000)": rest, "first_layer": {}}
    for label, (kind, eps) in choices.items():
        bits = 32.0 if kind == "fp32" else binary_entropy(eps) + 1.0 - eps
        out["first_layer"][label] = {
            "bits_per_weight": r(bits), "kappa4": 0.0 if kind == "fp32" else r(kappa4_of(eps)),
            "bytes": r(bits * p * d1 / 8.0), "total_bytes_with_rest_at_eps_0.99": r(
                (bits * p * d1 + (binary_entropy(0.99) + 0.01) * rest) / 8.0)}
    # cross-check with the package's memory report (entropy bound row)
    rep = memory.memory_report(p, [d1], 0.9)
    row = [b for label, b, kind in rep.rows if label.startswith("entropy bound")][0]
    assert abs(row - p * d1 * (binary_entropy(0.9) + 0.1)) < 1e-6 * row
    out["rotation"] = {
        "haar_matrix_fp32_bytes": p * p * 4,
        "regenerated_from_seed_bytes": 8,
        "note": "a stored p x p rotation costs p^2 fp32 numbers (more than a sparse first "
                "layer at eps = 0.99); regenerated from a seed it costs no storage but p^2 "
                "multiply-adds per input (a structured fast rotation, e.g. random signs and a "
                "Hadamard transform, would cost p log p; not measured here)"}
    return out


# ----------------------------------------------------------------------------------
# Fashion-MNIST


def class_covariances(X: np.ndarray, y: np.ndarray, K: int) -> np.ndarray:
    p = X.shape[1]
    Y = math.sqrt(p) * X
    covs = np.empty((K, p, p))
    for a in range(K):
        Z = Y[y == a] - Y[y == a].mean(axis=0)
        covs[a] = Z.T @ Z / (Z.shape[0] - 1)
    return covs


def block_statistics(covs: np.ndarray, weights: np.ndarray) -> dict:
    """T, D and the class-informative parts H M H^T (H = I - 1 pi^T)."""
    K, p, _ = covs.shape
    flat = covs.reshape(K, -1)
    T = flat @ flat.T / p
    d = np.diagonal(covs, axis1=1, axis2=2)
    D = d @ d.T / p
    tr = d.sum(axis=1) / p                       # tau_a^2
    H = np.eye(K) - np.outer(np.ones(K), weights)
    W = np.diag(np.sqrt(weights))
    core = lambda M: W @ H @ M @ H.T @ W  # noqa: E731  (class-informative, weighted)
    cT, cD, cR = core(T), core(D), core(np.outer(tr, tr))
    # D's class-informative part outside span{T, tau^2 tau^2^T} (least squares, Frobenius)
    basis = np.stack([cT.ravel(), cR.ravel()], axis=1)
    coef, *_ = np.linalg.lstsq(basis, cD.ravel(), rcond=None)
    resid = cD - (basis @ coef).reshape(K, K)
    beyond_T = cD - (np.sum(cD * cT) / np.sum(cT * cT)) * cT
    return {"T_class_norm": float(np.linalg.norm(cT, 2)),
            "D_class_norm": float(np.linalg.norm(cD, 2)),
            "D_over_T": float(np.linalg.norm(cD, 2) / np.linalg.norm(cT, 2)),
            "D_beyond_T_fraction": float(np.linalg.norm(beyond_T) / np.linalg.norm(cD)),
            "D_beyond_T_and_traces_fraction": float(np.linalg.norm(resid) / np.linalg.norm(cD)),
            "traces_class_norm": float(np.linalg.norm(cR, 2))}


def kernel_ridge_accuracy(K: np.ndarray, task: experiments.Task, n: int) -> float:
    s, U = np.linalg.eigh(0.5 * (K + K.T))
    keep = s > s[-1] * 1e-12
    F = U[:, keep] * np.sqrt(s[keep])
    ro = readout.validated_ridge_readout(F[:n], task.y_train, task.n_classes)
    return float(ro.accuracy(F[n:], task.y_test))


def measured_rise() -> list[dict]:
    """The chapter-7 table: compressed network at eps = 0.9 and 0.99 on x and on Qx."""
    res = RESULTS
    bench = experiments.read_csv(res / "practice.csv")
    val = [dict(x, factor=1.0) for x in bench if x["protocol"] == "random features"
           and x["activation"] == "relu" and x["readout"] == "ridge (validated)"]
    frontier = experiments.read_csv(res / "frontier_rotation.csv") + \
        experiments.read_csv(res / "frontier_limit.csv")
    key = lambda x: (x["part"], x["factor"], x["dataset"], x["seed"], x["method"],  # noqa: E731
                     x["sparsity"], x["readout"], x["ridge_rule"])
    rot = [dict(x, factor=1.0) for x in {key(x): x for x in frontier
                                         if x["part"] == "rotation"}.values()
           if x["readout"] == "ridge (validated)"]

    def mean(rows, name, eps, seeds):
        sel = [x["test_accuracy"] for x in rows if x["dataset"] == name
               and x["method"] == "compressed" and abs(x["sparsity"] - eps) < 1e-9
               and x["seed"] in seeds]
        return float(np.mean(sel)), len(sel)

    out = []
    for name in ("gmm-mixed", "fashion-mnist-2", "fashion-mnist-10"):
        seeds = sorted({x["seed"] for x in rot if x["dataset"] == name})
        rec = {"dataset": name, "seeds": seeds}
        for label, rows in (("x", val), ("Qx", rot)):
            a90, n90 = mean(rows, name, 0.9, seeds)
            a99, n99 = mean(rows, name, 0.99, seeds)
            rec[f"accuracy_eps0.9_{label}"] = r(a90, 4)
            rec[f"accuracy_eps0.99_{label}"] = r(a99, 4)
            rec[f"rise_{label}"] = r(a99 - a90, 4)
            rec[f"rows_{label}"] = n90 + n99
        rec["rotation_drop_eps0.9"] = r(rec["accuracy_eps0.9_x"] - rec["accuracy_eps0.9_Qx"], 4)
        rec["rotation_drop_eps0.99"] = r(rec["accuracy_eps0.99_x"] - rec["accuracy_eps0.99_Qx"], 4)
        out.append(rec)
    return out


def part_krr_mc(args, log) -> list[dict]:
    """Kernel ridge with the sparse first layer's whole kernel, by Monte Carlo (opt-in).

    The first layer (the compressed ReLU network's ternary step) with sparse ternary
    weights at width ``--mc-width``: its Gram matrix estimates the infinite-width K_1 with
    every cumulant of the weights; layers 2-3 at infinite width (the exact Gaussian
    recursion run from it). Gaussian first-layer weights at the same width are the
    control. Same tasks and sizes as the kernel ridge of ``fashion``."""
    rows = []
    rng = np.random.default_rng(args.seed)
    tasks = {"gmm-mixed": experiments.mixture_task(784, args.gmm_train, args.gmm_test, rng,
                                                   preset="mixed"),
             "fashion-mnist-10": experiments.fashion_mnist_task(
                 tuple(range(10)), args.krr_per_class, args.krr_per_class, rng)}
    for ti, (name, task) in enumerate(tasks.items()):
        plan = compress.compress([RELU] * 3, task.tau0)
        step, rest = plan.layers[0], plan.layers[1:]
        centre = step.moments(task.tau0).m
        tau1 = activations.layer_scales([step], task.tau0)[1]
        Q = haar(task.p, args.seed)
        for inp in ("x", "Qx"):
            Xall = np.vstack([task.X_train, task.X_test])
            if inp == "Qx":
                Xall = Xall @ Q
            Xt = torch.from_numpy(np.ascontiguousarray(Xall))
            n = task.n_train
            for wi, eps in enumerate((None, 0.9, 0.99)):
                t0 = time.perf_counter()
                gen = torch.Generator().manual_seed(args.seed * 1000 + 100 * ti + 10 * wi
                                                    + (inp == "Qx"))
                G = torch.zeros(Xall.shape[0], Xall.shape[0], dtype=torch.float64)
                chunks = max(1, args.mc_width // args.chunk)
                for _ in progress(range(chunks), args.progress, f"{name} {inp} eps={eps}"):
                    F = step(Xt @ draw((args.chunk, task.p), eps, gen).T) - centre
                    G += F @ F.T
                K1 = (G / (chunks * args.chunk)).numpy()
                K = kernels.exact_ck(psd_root(K1), rest, tau0=tau1)
                acc = kernel_ridge_accuracy(K, task, n)
                rows.append({"dataset": name, "inputs": inp, "n_train": n, "n_test": task.n_test,
                             "first_layer_weights": "gaussian" if eps is None
                             else f"ternary eps={eps:g}", "first_layer_width": chunks * args.chunk,
                             "test_accuracy": r(acc, 4),
                             "seconds": r(time.perf_counter() - t0, 3)})
                log(f"KRR (first layer by Monte Carlo) {name} {inp} eps={eps}: {acc:.4f}")
    return rows


def part_fashion(args, log) -> dict:
    out = {"measured_accuracies": measured_rise()}
    images, labels = data.load_fashion_mnist("train")
    X = data.normalize(images.astype(np.float64))
    K = 10
    weights = np.bincount(labels, minlength=K) / labels.size
    covs = class_covariances(X, labels, K)
    Q = haar(X.shape[1], args.seed)
    rot = np.einsum("ij,ajk,kl->ail", Q.T, covs, Q, optimize=True)
    out["D_vs_T_fashion_mnist_10_train"] = {
        "raw": {k: r(v) for k, v in block_statistics(covs, weights).items()},
        "rotated": {k: r(v) for k, v in block_statistics(rot, weights).items()}}
    two = list(practice_fmnist2())
    sel = np.isin(labels, two)
    y2 = np.array([two.index(c) for c in labels[sel]])
    covs2 = class_covariances(X[sel], y2, 2)
    w2 = np.bincount(y2) / y2.size
    rot2 = np.einsum("ij,ajk,kl->ail", Q.T, covs2, Q, optimize=True)
    out["D_vs_T_fashion_mnist_2_train"] = {
        "classes": two,
        "raw": {k: r(v) for k, v in block_statistics(covs2, w2).items()},
        "rotated": {k: r(v) for k, v in block_statistics(rot2, w2).items()}}
    # alpha_5 against alpha_3 for the compressed three-layer ReLU (and the original)
    c = theory.coefficients([RELU] * 3, 1.0, first_layer_m4=1 / (1 - 0.9))
    out["alpha5_over_alpha3_relu3_per_kappa4"] = r(float(c.alpha5[-1] / c.alpha[-1, 2]
                                                         / c.kappa4))
    # kernel ridge with the compressed network's limit CK, with and without the term
    if args.fashion_krr:
        krr = []
        rng = np.random.default_rng(args.seed)
        tasks = {"gmm-mixed": experiments.mixture_task(784, args.gmm_train, args.gmm_test, rng,
                                                       preset="mixed"),
                 "fashion-mnist-10": experiments.fashion_mnist_task(
                     tuple(range(10)), args.krr_per_class, args.krr_per_class, rng),
                 "fashion-mnist-2": experiments.fashion_mnist_task(
                     tuple(practice_fmnist2()), 5 * args.krr_per_class,
                     5 * args.krr_per_class, rng)}
        for name, task in tasks.items():
            plan = compress.compress([RELU] * 3, task.tau0)
            Qt = haar(task.p, args.seed)
            for inp, M in (("x", None), ("Qx", Qt)):
                Xall = np.vstack([task.X_train, task.X_test])
                if M is not None:
                    Xall = Xall @ M
                n = task.n_train
                rec = {"dataset": name, "inputs": inp, "n_train": n, "n_test": task.n_test}
                for eps in (None, 0.9, 0.99):
                    t0 = time.perf_counter()
                    m4 = 3.0 if eps is None else 1.0 / (1.0 - eps)
                    tag = "gaussian" if eps is None else f"eps{eps:g}"
                    try:
                        Kc = kernels.exact_ck(Xall, plan.layers, tau0=task.tau0,
                                              first_layer_m4=m4)
                    except ValueError as err:  # e.g. near-duplicate images: no series
                        rec[f"accuracy_{tag}"] = None
                        rec[f"error_{tag}"] = str(err)
                        log(f"KRR {name} {inp} {tag}: {err}")
                        continue
                    rec[f"accuracy_{tag}"] = r(kernel_ridge_accuracy(Kc, task, n), 4)
                    rec[f"seconds_{tag}"] = r(time.perf_counter() - t0, 3)
                    log(f"KRR {name} {inp} {tag}: {rec[f'accuracy_{tag}']}")
                a9, a99 = rec.get("accuracy_eps0.9"), rec.get("accuracy_eps0.99")
                rec["rise_predicted"] = None if a9 is None or a99 is None else r(a99 - a9, 4)
                krr.append(rec)
        out["kernel_ridge_limit_compressed"] = krr
    return out


def practice_fmnist2() -> tuple[int, int]:
    from run_practice import FMNIST_2  # the two classes of the practice chapter
    return tuple(FMNIST_2)


# ----------------------------------------------------------------------------------


def validity_table(ps) -> list[dict]:
    return [{"p": p, "sparsity": r(e), "nonzeros_per_row": r(p * (1 - e), 4),
             "higher_order_relative_size_1_over_p(1-eps)": r(1.0 / (p * (1 - e)), 3),
             "P(row of W has no non-zero)": r((e) ** p, 3)}
            for p in sorted(set(ps) | {784}) for e in SPARSITIES[1:]]


FIELDS = ["part", "activation", "depth", "p", "n", "inputs", "weights", "sparsity", "kappa4",
          "nonzeros_per_row", "width", "theory_rel_size", "theory_class_size",
          "leading_class_size", "contrast_measured", "contrast_se", "contrast_first_order",
          "contrast_leading", "contrast_explained_first_order", "level_measured", "level_se",
          "level_first_order", "level_leading", "diag_measured", "diag_se", "diag_first_order",
          "blocks_residual_before", "blocks_residual_after_first_order",
          "blocks_residual_after_leading", "blocks_noise", "opnorm_projected_measured",
          "opnorm_projected_noise", "opnorm_projected_after_first_order",
          "opnorm_projected_after_leading", "opnorm_class_measured", "opnorm_class_noise",
          "opnorm_class_after_first_order", "opnorm_class_after_leading", "seconds"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ps", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--theory-ps", type=int, nargs="+", default=[128, 256, 512, 1024])
    parser.add_argument("--sparsities", type=float, nargs="+", default=list(SPARSITIES))
    parser.add_argument("--activations", nargs="+", default=["relu", "erf", "step"],
                        choices=["relu", "erf", "step", "square"])
    parser.add_argument("--width", type=int, default=1 << 17,
                        help="first-layer width of the Monte Carlo (default 2^17)")
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--mlp-p", type=int, default=128)
    parser.add_argument("--mlp-width", type=int, default=4096)
    parser.add_argument("--mlp-draws", type=int, default=12)
    parser.add_argument("--mlp-sparsities", type=float, nargs="+", default=[0.9, 0.99])
    parser.add_argument("--krr-per-class", type=int, default=100,
                        help="Fashion-MNIST kernel ridge: train and test images per class for "
                             "10 classes (5 times as many for the two classes)")
    parser.add_argument("--mc-width", type=int, default=1 << 14,
                        help="first-layer width of the opt-in part krr-mc (default 2^14)")
    parser.add_argument("--gmm-train", type=int, default=2000)
    parser.add_argument("--gmm-test", type=int, default=1000)
    parser.add_argument("--no-fashion-krr", dest="fashion_krr", action="store_false")
    parser.add_argument("--parts", nargs="+",
                        default=["theory", "one-layer", "deep", "mlp", "bytes", "fashion"],
                        choices=["theory", "one-layer", "deep", "mlp", "bytes", "fashion",
                                 "krr-mc"],
                        help="parts to run (krr-mc is opt-in: kernel ridge with the sparse "
                             "first layer's kernel by Monte Carlo, several minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--progress", action="store_true", help="tqdm progress bars")
    parser.add_argument("--out", type=Path, default=RESULTS / "first_layer.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:7.1f}s] {msg}", flush=True)

    result = {
        "command": "python benchmarks/bench_first_layer.py " + shlex.join(argv or sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "numpy": np.__version__,
                    "python": platform.python_version()},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "formulas": FORMULAS, "labels": ["eq-first-layer-kappa4", "eq-first-layer-equivalent"],
        "validity": validity_table(args.ps),
    }
    rows = []
    if "theory" in args.parts:
        result["theory"] = part_theory(args, log)
        result["propagation"] = part_propagation(args, log)
    full_store = {}
    if "one-layer" in args.parts:
        one, full_store = part_one_layer(args, log)
        rows += one
    if "deep" in args.parts and full_store:
        rows += part_deep(args, full_store, log)
    if "mlp" in args.parts:
        rows += part_mlp(args, log)
    result["rows"] = rows
    if "bytes" in args.parts:
        result["bytes"] = part_bytes()
    if "fashion" in args.parts:
        result["fashion"] = part_fashion(args, log)
    if "krr-mc" in args.parts:
        result["krr_mc"] = part_krr_mc(args, log)
    result["seconds"] = round(time.perf_counter() - start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    write_csv(args.out.with_suffix(".csv"), result)
    print_tables(result)
    log(f"wrote {args.out} and {args.out.with_suffix('.csv')}")


def write_csv(path: Path, result: dict) -> None:
    """The Monte Carlo rows (one-layer, deep, mlp), or the krr-mc rows when only they ran."""
    rows = result.get("rows") or result.get("krr_mc", [])
    fields = FIELDS + ["draws"] if result.get("rows") else (list(rows[0]) if rows else [])
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow(row)


def print_tables(result: dict) -> None:
    if "theory" in result:
        print("\nSize of the kappa4 term (eps = 0.9, kappa4 = 7), relative to the kernel:")
        print(f"{'activation':>10} {'p':>5} {'rel (1st order)':>16} {'rel (leading)':>14} "
              f"{'class (1st)':>12} {'class (lead)':>13}")
        for t in result["theory"]:
            if abs(t["sparsity"] - 0.9) < 1e-9:
                print(f"{t['activation']:>10} {t['p']:>5} {t['rel_size_first_order']:>16.4g} "
                      f"{t['rel_size_leading']:>14.4g} {t['class_size_first_order']:>12.4g} "
                      f"{t['class_size_leading']:>13.4g}")
    rows = result.get("rows", [])
    for rec in result.get("krr_mc", []):
        print(f"KRR, first layer by Monte Carlo: {rec['dataset']:>16} {rec['inputs']:>2} "
              f"{rec['first_layer_weights']:>16}: {rec['test_accuracy']:.4f}")
    if rows:
        print("\nClass contrast of (empirical - Gaussian exact): measured ± s.e., first order, "
              "leading (D block)")
        print(f"{'part':>9} {'act':>5} {'p':>4} {'in':>3} {'weights':>26} {'measured':>11} "
              f"{'s.e.':>8} {'1st order':>11} {'leading':>11} {'explained':>9}")
        for x in rows:
            expl = x.get("contrast_explained_first_order")
            print(f"{x['part']:>9} {x['activation']:>5} {x['p']:>4} {x.get('inputs', 'x'):>3} "
                  f"{x['weights'][:26]:>26} {x['contrast_measured']:>11.3e} "
                  f"{x['contrast_se']:>8.1e} {x['contrast_first_order']:>11.3e} "
                  f"{x.get('contrast_leading', float('nan')):>11.3e} "
                  f"{'' if expl is None else format(expl, '.3f'):>9}")
    if "bytes" in result:
        print("\nFirst layer (p = 784, d1 = 2000) under the entropy bound:")
        for k, v in result["bytes"]["first_layer"].items():
            print(f"  {k:>42}: {v['bits_per_weight']:.4g} bits/weight, {v['bytes'] / 1e3:.1f} kB")
    if "fashion" in result:
        f = result["fashion"]
        print("\nFashion-MNIST (10 classes, training set): D against T, class-informative parts")
        for k in ("raw", "rotated"):
            print(f"  {k:>8}: {f['D_vs_T_fashion_mnist_10_train'][k]}")
        for rec in f["measured_accuracies"]:
            print(f"  measured {rec['dataset']}: rise x {rec['rise_x']:+.4f}, "
                  f"Qx {rec['rise_Qx']:+.4f}")
        for rec in f.get("kernel_ridge_limit_compressed", []):
            print(f"  KRR limit {rec['dataset']} {rec['inputs']}: gaussian "
                  f"{rec.get('accuracy_gaussian')}, eps 0.9 {rec.get('accuracy_eps0.9')}, "
                  f"eps 0.99 {rec.get('accuracy_eps0.99')}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
