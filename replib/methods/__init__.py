"""Every method of the suite, importable by readers: ``from replib.methods import Dropout``.

Each method is a pure function with an explicit ``training`` argument plus a thin
``nn.Module`` that calls it. Docstrings name the paper, the tensor shapes, how masks
are drawn (per element / channel / example / minibatch) and what happens at test time.
"""

from .dropout import Dropout, dropout

__all__ = ["Dropout", "dropout"]
