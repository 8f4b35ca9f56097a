"""Why ``import fastbmm`` failed, when the compiled modules are missing.

Run from a clone's root (or an unpacked sdist's), Python imports the
``fastbmm/`` folder there rather than an installed, non-editable fastbmm; that
folder has the ``.pyx`` sources but no compiled modules unless it was built in
place. Python's own message, ``cannot import name '_runtime' from partially
initialized module 'fastbmm' (most likely due to a circular import)``, points
the wrong way.
"""

import importlib.machinery
import os

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def reraise_with_hint(error):
    """Re-raise `error`, the failed import of the compiled core, with what to do.

    Parameters
    ----------
    error : ImportError

    Raises
    ------
    ImportError
        Always: with the hint when this package is a source tree (it holds
        ``_runtime.pyx``) with no compiled ``_runtime`` module, else `error` itself
        (a compiled module that fails to load has its own, better message).
    """
    compiled = any(
        os.path.exists(os.path.join(_PACKAGE_DIR, "_runtime" + suffix))
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
    )
    if compiled or not os.path.exists(os.path.join(_PACKAGE_DIR, "_runtime.pyx")):
        raise error
    raise ImportError(
        f"fastbmm's compiled modules are missing from {_PACKAGE_DIR}: you are importing "
        "fastbmm from its source tree; run from another directory or pip install -e ."
    ) from None
