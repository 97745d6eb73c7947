"""The explicit GRU step on canonical blocks: an alias of :mod:`gruinspect.maths` kept for
existing code (``from gruinspect import gru; gru.run(blocks, xs, h0, reset_after=...)``)."""
from __future__ import annotations

from .maths import ACTIVATIONS, activation, run, step

__all__ = ["ACTIVATIONS", "activation", "step", "run"]
