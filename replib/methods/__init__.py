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
from .dropout import Dropout, dropout
from .mc_dropout import MCPrediction, mc_predict
from .rnn_dropout import VariationalLSTM
from .spatial_dropout import SpatialDropout, spatial_dropout
from .standout import StandoutLinear, standout_keep_probability, standout_linear

__all__ = [
    "BatchwiseDropoutMLP", "Cutout", "DepthDropoutBlock", "DropConnectLinear", "Dropout",
    "MCPrediction", "SpatialDropout", "StandoutLinear", "StochasticLayer", "SubmatrixSGD", "VariationalLSTM",
    "cutout", "depth_dropout_residual", "dropconnect_linear", "dropout", "mc_predict", "per_example_masks",
    "spatial_dropout", "standout_keep_probability", "standout_linear",
]
