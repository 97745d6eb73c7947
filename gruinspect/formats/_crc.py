"""Masked CRC32C as TensorFlow and LevelDB store it (`core/lib/hash/crc32c.h`).

The C-accelerated ``crc32c`` package does the hashing; a checksum over a 400 MB tensor in pure
Python would take tens of seconds.
"""
from __future__ import annotations

from crc32c import crc32c as _crc32c

_MASK_DELTA = 0xA282EAD8


def crc32c(data, value: int = 0) -> int:
    """CRC32C (Castagnoli) of ``data``, continuing from ``value``."""
    return _crc32c(data, value=value)


def mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c(data) -> int:
    return mask(_crc32c(data))
