"""A hook around C library calls that may never return on a corrupted file (libhdf5 metadata).

libhdf5 1.14 can loop forever on some damaged metadata while h5py holds the GIL, so nothing
inside the process can interrupt it. Readers therefore wrap every HDF5 metadata read in
``with hang_guard(message):``. A library user gets a no-op; the command line installs a guard
(:func:`gruinspect._supervisor.bounded`, a supervising parent process) with
:func:`set_hang_guard`, so readers never fork and never import the supervisor themselves.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

Guard = Callable[[str], AbstractContextManager]

_guard: Guard | None = None


def set_hang_guard(guard: Guard | None) -> Guard | None:
    """Install ``guard(message)``, a context manager factory, for every guarded block; None removes
    it. Returns the guard it replaces, so a caller can put it back."""
    global _guard
    previous, _guard = _guard, guard
    return previous


def hang_guard(message: str) -> AbstractContextManager:
    """The installed guard for one block (``message`` is the error should the block never end)."""
    return nullcontext() if _guard is None else _guard(message)
