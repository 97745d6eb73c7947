"""How far a compressed input may expand, each limit overridable by an environment variable.

Weights compress poorly (floats: 1.1x to 3x with deflate or gzip; a mostly-zero tensor more),
while a crafted zip member or gzip-filtered HDF5 dataset inflates about 1000x. Expanding data is
therefore allowed when it stays small, or when its ratio stays under :func:`max_ratio`, and never
beyond :func:`max_bytes` in total for one member or dataset. The README's "Bad input" section
lists these variables.
"""
from __future__ import annotations

import os

from ..errors import UnsupportedError

RATIO_VAR = "GRUINSPECT_MAX_EXPANSION_RATIO"
BYTES_VAR = "GRUINSPECT_MAX_EXPANSION_BYTES"
DEFAULT_RATIO = 100
DEFAULT_BYTES = 16 << 30  # 16 GiB, more than any GRU's weights
SMALL_BYTES = 16 << 20    # up to this, any ratio (a small all-zero tensor is legitimate)


def _setting(var: str, default: int) -> int:
    text = os.environ.get(var, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UnsupportedError(f"Invalid environment variable {var}={text!r}: it must be a whole number.") from None
    if value < 1:
        raise UnsupportedError(f"Invalid environment variable {var}={text!r}: it must be at least 1.")
    return value


def max_ratio() -> int:
    return _setting(RATIO_VAR, DEFAULT_RATIO)


def max_bytes() -> int:
    return _setting(BYTES_VAR, DEFAULT_BYTES)


def check_expansion(expanded: int, stored: int, what: str) -> None:
    """Refuse ``what`` (a sentence start naming the file and member) when inflating ``stored``
    bytes to ``expanded`` bytes passes a limit; the message says which and how to lift it."""
    cap = max_bytes()
    if expanded > cap:
        raise UnsupportedError(f"{what} expands to {expanded} bytes, more than the {cap} bytes gruinspect "
                               f"inflates (set {BYTES_VAR} to allow more).")
    ratio = max_ratio()
    if expanded > SMALL_BYTES and expanded > ratio * max(stored, 1):
        raise UnsupportedError(f"{what} expands {expanded} bytes from {stored} stored bytes, more than the {ratio}:1 "
                               f"gruinspect inflates (set {RATIO_VAR} to allow more).")
