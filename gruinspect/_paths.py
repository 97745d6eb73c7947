"""Whether a path stays inside a folder once every symbolic link is resolved.

gruinspect reads only what the user named: external data, shards, exported files and checkpoint
state files are checked with this one rule (a link that leads out of the folder counts as out).
"""
from __future__ import annotations

import os


def is_within(folder: str, path: str) -> bool:
    """True when ``path``, links resolved, is ``folder`` itself or lies below it."""
    root = os.path.realpath(folder)
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)
