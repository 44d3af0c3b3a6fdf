"""The marker of a layer whose training mode means "sample masks".

:func:`replib.methods.mc_predict` switches exactly these layers (and PyTorch's own
``nn.Dropout*``) to training mode and leaves every other module in eval mode. A method
module marks its layer by subclassing :class:`StochasticLayer`, so the MC utility finds
every such layer without importing any method.
"""

from __future__ import annotations

from torch import nn


class StochasticLayer(nn.Module):
    """Base of the method layers that draw random masks in ``train()`` (dropout, DropConnect, standout, ...).

    It adds no parameters, buffers or behaviour: it only says that running the layer in
    training mode at test time gives Monte Carlo samples of the same model.
    """
