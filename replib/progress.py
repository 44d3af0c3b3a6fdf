"""Progress bars, in one place: a widget in Jupyter where ipywidgets is installed, text elsewhere.

tqdm's automatic choice warns (``TqdmWarning: IProgress not found``) in a notebook without
ipywidgets; a chapter must not print that, so the warning is silenced here and tqdm falls
back to a text bar.
"""

from __future__ import annotations

import warnings
from typing import Iterable


def bar(iterable: Iterable, **kwargs):
    """``tqdm(iterable, **kwargs)``, the notebook or console kind as the environment allows."""
    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TqdmWarning)
        from tqdm.auto import tqdm

        return tqdm(iterable, **kwargs)
