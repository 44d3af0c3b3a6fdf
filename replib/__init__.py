"""replib: the shared library of dropout-book.

``replib.methods`` holds every method; ``replib.data`` the offline-first loaders;
``replib.train`` the training loop; ``replib.results`` the result store;
``replib.experiments`` one module per paper; ``replib.plotting`` the house style.
"""

__version__ = "0.1.0"
