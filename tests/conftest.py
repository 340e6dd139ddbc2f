"""Shared test ingredients: example activations and samples on a compressed network's
thresholds (imported by the test modules as ``from conftest import ...``)."""

import math

import numpy as np
import pytest
import torch

from lossless import activations as A
from lossless import compress, experiments


def builtin_examples() -> list[A.Activation]:
    """Every registry name, with non-trivial parameters where it takes any."""
    return [
        A.get("linear"),
        A.get("relu"),
        A.get("leaky_relu", slope=0.1),
        A.get("abs"),
        A.get("quadratic", a=0.5, b=-1.0, c=0.3),
        A.get("tanh"),
        A.get("erf"),
        A.get("erf", sharpness=5.0),
        A.get("sigmoid"),
        A.get("sin"),
        A.get("sin", frequency=2.0),
        A.get("cos", frequency=0.7),
        A.get("sign"),
        A.get("step", r=0.7),
        A.get("ternary", s_minus=-0.4, s_plus=0.9, scale=1.3, odd=True),
        A.get("ternary", s_minus=-0.4, s_plus=0.9, scale=1.3, odd=False),
        A.PiecewiseConstant([0.3, -1.0, 2.0], [1.0, -0.5, 2.0], base=0.2),
        A.PiecewiseLinear([-0.5, 1.0], [0.3, 1.0, -0.2], jumps=[0.4, 0.0], offset=0.1),
    ]


def on_thresholds(net, rng):
    """Samples whose layer-1 pre-activation sits exactly on a threshold of some neuron,
    or one ulp past it, with a background coordinate."""
    C = net.codes(0).to(torch.float64)
    rows = []
    for i in range(C.shape[0]):
        nz = torch.nonzero(C[i]).flatten()
        if len(nz) < 2:
            continue
        k, j = int(nz[0]), int(nz[1])
        x = np.zeros(C.shape[1])
        x[j] = rng.standard_normal()
        for target in (float(net.upper_0[i]), float(net.lower_0[i])):
            if not np.isfinite(target):
                continue
            x = x.copy()
            x[k] = (target - x[j] * float(C[i, j])) * float(C[i, k])
            rows += [x, x.copy(), x.copy()]
            rows[-2][k] = np.nextafter(x[k], np.inf)
            rows[-1][k] = np.nextafter(x[k], -np.inf)
    return np.array(rows)


# -- the compression tests ----------------------------------------------------------
#: Activations the solver is tested on, by name.
ACTIVATIONS = {
    "relu": lambda: A.get("relu"),
    "leaky_relu": lambda: A.get("leaky_relu", slope=0.1),
    "abs": lambda: A.get("abs"),
    "tanh": lambda: A.get("tanh"),
    "erf": lambda: A.get("erf"),
    "sigmoid": lambda: A.get("sigmoid"),
}

#: τ₀ of the reference mixture at p = 512.
TAU0 = math.sqrt(1.0 + 1.5 / math.sqrt(512) + 9.0 / 512)


@pytest.fixture(scope="module")
def relu3():
    """The plan of three ReLU layers at :data:`TAU0`."""
    return compress.compress([A.get("relu")] * 3, TAU0)


# -- the practice chapter's tests (readout, baselines, experiments) ------------------
#: Three ReLU layers.
RELU3 = [A.get("relu")] * 3


def features(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Gaussian features of shape (n, d), entries of variance 1/d."""
    return np.random.default_rng(seed).standard_normal((n, d)) / math.sqrt(d)


@pytest.fixture(scope="module")
def small_task():
    """A small two-class mixture task (p = 64, 120 training and 80 test samples)."""
    return experiments.mixture_task(64, 120, 80, np.random.default_rng(0))
