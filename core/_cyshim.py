"""What the pure-Python model needs of Cython's ``cython`` module when Cython is not installed.

In: nothing. Out: ``compiled``, False: a module that falls back to this one runs as plain Python.
The core's modules ``import cython`` and fall back here; their C type annotations are strings
(``from __future__ import annotations``) that are never evaluated, and they branch on
``cython.compiled`` only, and use one directive as a decorator (``overflowcheck``, a no-op here), so
nothing else of Cython's module is needed.
"""

#: False: the module importing this runs as plain Python
compiled = False


def overflowcheck(flag: bool):  # noqa: ANN201 - Cython's directive decorator: the function as it is
    """``@cython.overflowcheck(False)``: in plain Python the function runs as written."""
    return lambda f: f
