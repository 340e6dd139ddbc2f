"""The book's explorers (client-side, Vega-Lite) and live widgets, one module per chapter.

Each chapter's explorer is one call (``gram_explorer``, ``hermite_explorer``,
``kernel_explorer``, ``equivalence_explorer``, ``compression_explorer``,
``loss_explorer``): a grid of states computed with the package's own functions, cached
and rounded, drawn by Vega-Lite with no kernel and no network
(:mod:`lossless.explore._vega`); the dynamics chapter's explorer stores a kernel's
eigenvalues and target energies and computes its loss curves in the page with Vega-Lite
transforms. The ``*_widget`` functions are the live
ipywidgets of the same computations, for JupyterLab; the ``compare_*_spectra``
functions are those computations, each returning a
:class:`lossless.spectra.SpectralComparison`.

- :mod:`lossless.explore.gaussian_mixture`: chapter 1, the Gram spectrum of a mixture.
- :mod:`lossless.explore.hermite`: the Gaussian toolbox, an activation's Hermite series and
  its kernel's Mehler series truncated at order N, against the exact ones.
- :mod:`lossless.explore.ck_ntk`: chapter 3, empirical against exact kernel.
- :mod:`lossless.explore.equivalence`: chapter 4, exact kernel against its equivalent K̃.
- :mod:`lossless.explore.compression`: the compression chapter, original against compressed network.
- :mod:`lossless.explore.dynamics`: the dynamics chapter, loss curves of K and K + Delta I.
"""

from lossless.explore._vega import (GRID_VERSION, OFFLINE_FOLDER, VEGA_LITE_VERSION, Explorer,
                                    cached_states, histogram_pair, significant)
from lossless.explore.ck_ntk import (KERNEL_ACTIVATIONS, KERNEL_DEPTHS, KERNEL_WIDTHS,
                                     compare_empirical_spectra, kernel_explorer, kernel_states,
                                     kernel_widget)
from lossless.explore.compression import (COMPRESSION_OFFSETS, COMPRESSION_SCALES,
                                          COMPRESSION_SPARSITIES, COMPRESSION_WIDTHS,
                                          compare_compressed_spectra, compression_explorer,
                                          compression_states, compression_widget,
                                          coupled_ternary, layer_mismatch)
from lossless.explore.dynamics import (LossCurves, LossModes, loss_curves, loss_explorer,
                                       loss_modes, loss_widget, modes_of)
from lossless.explore.equivalence import (EQUIVALENCE_ACTIVATIONS, EQUIVALENCE_DEPTHS,
                                          EQUIVALENCE_SIZES, compare_equivalent_spectra,
                                          equivalence_explorer, equivalence_states,
                                          equivalence_widget, reference_comparison)
from lossless.explore.hermite import (HERMITE_ACTIVATIONS, HERMITE_ORDERS, HERMITE_SCALES,
                                      HermiteTruncation, hermite_explorer, hermite_states,
                                      hermite_truncation, hermite_widget)
from lossless.explore.gaussian_mixture import (GRAM_RATIOS, GRAM_SEPARATIONS, GRAM_TRACE_GAPS,
                                               GramDemo, gram_explorer, gram_spectrum_demo,
                                               gram_states, gram_widget)

__all__ = [
    "Explorer",
    "significant",
    "histogram_pair",
    "cached_states",
    "GramDemo",
    "gram_spectrum_demo",
    "gram_states",
    "gram_explorer",
    "gram_widget",
    "HermiteTruncation",
    "hermite_truncation",
    "hermite_states",
    "hermite_explorer",
    "hermite_widget",
    "compare_empirical_spectra",
    "kernel_states",
    "kernel_explorer",
    "kernel_widget",
    "compare_equivalent_spectra",
    "reference_comparison",
    "equivalence_states",
    "equivalence_explorer",
    "equivalence_widget",
    "layer_mismatch",
    "compare_compressed_spectra",
    "coupled_ternary",
    "compression_states",
    "compression_explorer",
    "compression_widget",
    "LossModes",
    "LossCurves",
    "loss_modes",
    "loss_curves",
    "loss_explorer",
    "modes_of",
    "loss_widget",
]
