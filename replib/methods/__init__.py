"""Every method of the suite, importable by readers: ``from replib.methods import Dropout``.

Each method is a pure function with an explicit ``training`` argument plus a thin
``nn.Module`` that calls it. Docstrings name the paper, the tensor shapes, how masks
are drawn (per element / channel / example / minibatch) and what happens at test time.
Layers that draw masks in ``train()`` subclass :class:`StochasticLayer`, which is how
:func:`mc_predict` finds them. This package imports nothing from the rest of ``replib``
but ``replib._validate``.
"""

from ._stochastic import StochasticLayer
from .batchwise import BatchwiseDropoutMLP, SubmatrixSGD
from .cutout import Cutout, cutout
from .depth_dropout import DepthDropoutBlock, depth_dropout_residual
from .dropconnect import DropConnectLinear, dropconnect_linear, per_example_masks
from .drop_path import DropAddResidual, drop_add_residual
from .dropout import Dropout, dropout
from .gaussian_dropout import GaussianDropout, gaussian_dropout, gaussian_noise_sd
from .max_drop import MaxDrop, max_drop
from .maxpool_dropout import MaxPoolDropout, maxpool_dropout, probabilistic_weighted_pooling
from .mc_dropout import MCPrediction, mc_predict
from .rnn_dropout import RNNDropLSTM, SemeniutaLSTM, VariationalLSTM
from .sparse_vd import (
    SparseVDConv2d,
    SparseVDLinear,
    kl_approximation,
    pruned_weight,
    sparse_vd_conv2d,
    sparse_vd_linear,
)
from .spatial_dropout import SpatialDropout, spatial_dropout
from .standout import StandoutLinear, standout_keep_probability, standout_linear
from .structured_pruning import StructuredBayesianPruning, sbp_kl, sbp_moments, structured_bayesian_pruning

__all__ = [
    "BatchwiseDropoutMLP", "Cutout", "DepthDropoutBlock", "DropAddResidual", "DropConnectLinear", "Dropout",
    "GaussianDropout", "MCPrediction", "MaxDrop", "MaxPoolDropout", "RNNDropLSTM", "SemeniutaLSTM",
    "SparseVDConv2d", "SparseVDLinear", "SpatialDropout", "StandoutLinear", "StochasticLayer",
    "StructuredBayesianPruning", "SubmatrixSGD", "VariationalLSTM", "cutout", "depth_dropout_residual",
    "drop_add_residual", "dropconnect_linear", "dropout", "gaussian_dropout", "gaussian_noise_sd",
    "kl_approximation", "max_drop", "maxpool_dropout", "mc_predict", "per_example_masks",
    "probabilistic_weighted_pooling", "pruned_weight", "sbp_kl", "sbp_moments", "sparse_vd_conv2d",
    "sparse_vd_linear", "spatial_dropout", "standout_keep_probability", "standout_linear",
    "structured_bayesian_pruning",
]
