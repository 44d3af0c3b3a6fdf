"""Element-wise activations that a method layer applies inside itself.

DropConnect (Gaussian inference averages activations, not pre-activations), standout
(the mask multiplies the activation) and batchwise dropout (each submatrix product is
followed by its activation) need the activation as a function of a tensor, named by a
string. (Model-level activations, ``nn.Module`` classes placed between layers, are the
models' own ``ACTIVATIONS`` table; this package does not depend on the models.)
"""

from __future__ import annotations

import torch

# name -> element-wise function of a tensor, applied by the layer after its own linear map
INNER_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda u: u}
