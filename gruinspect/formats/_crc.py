"""Masked CRC32C as TensorFlow and LevelDB store it (`core/lib/hash/crc32c.h`).

The C-accelerated ``crc32c`` package does the hashing; a checksum over a 400 MB tensor in pure
Python would take tens of seconds.
"""
from __future__ import annotations

import os


def _load_crc32c():
    """The ``crc32c`` package's C function, loaded without running the package's ``__init__``.

    That ``__init__`` imports importlib.metadata (and with it the email package) only to read
    its own version number, which costs more than everything else `gruinspect list` imports.
    Falls back to the plain import if the package is ever laid out differently.
    """
    import importlib.machinery
    import importlib.util

    try:
        spec = importlib.machinery.PathFinder.find_spec("crc32c")
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                path = os.path.join(folder, "_crc32c" + suffix)
                if os.path.isfile(path):
                    ext = importlib.util.spec_from_file_location("crc32c._crc32c", path)
                    module = importlib.util.module_from_spec(ext)
                    ext.loader.exec_module(module)
                    return module.crc32c
    except (ImportError, OSError, AttributeError):
        pass
    from crc32c import crc32c

    return crc32c


_crc32c = _load_crc32c()

_MASK_DELTA = 0xA282EAD8


def crc32c(data, value: int = 0) -> int:
    """CRC32C (Castagnoli) of ``data``, continuing from ``value``."""
    return _crc32c(data, value=value)


def mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c(data) -> int:
    return mask(_crc32c(data))
