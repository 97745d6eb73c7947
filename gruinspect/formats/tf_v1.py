"""Reader placeholder: replaced by the real reader for this format."""
from __future__ import annotations


def sniff(path: str):
    return None


def open(path: str):  # noqa: A001
    raise NotImplementedError
