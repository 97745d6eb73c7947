"""Layout placeholder: replaced by the Keras GRU layouts."""
from __future__ import annotations


def find_cells(store, claimed, problems):
    return []
