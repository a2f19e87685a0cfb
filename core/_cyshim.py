"""What the pure-Python model needs of Cython's ``cython`` module when Cython is not installed.

In: nothing. Out: ``compiled``, False: a module that falls back to this one runs as plain Python.
The core's modules ``import cython`` and fall back here; their C type annotations are strings
(``from __future__ import annotations``) that are never evaluated, and they branch on
``cython.compiled`` only, so nothing else of Cython's module is needed.
"""

#: False: the module importing this runs as plain Python
compiled = False
