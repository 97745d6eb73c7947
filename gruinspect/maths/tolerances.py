"""The error a result may have, by the dtype it was computed (or its weights stored) in.

A comparison passes when ``|a - b| <= atol + rtol * |b|`` everywhere. Measured on 5-step
sequences: float32 cells agree with float64 to ~2e-7, float16 to ~1e-3 and bfloat16 to ~1e-2;
the margins leave room for wide cells without hiding a wrong gate (a swapped gate or a bias off
by 1e-3 is far outside them).
"""
from __future__ import annotations

TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-10, 1e-10),
    "float32": (1e-5, 1e-5),
    "float16": (1e-2, 1e-2),
    "bfloat16": (5e-2, 5e-2),
}


def tolerance(dtype: str, atol: float | None = None, rtol: float | None = None) -> tuple[float, float]:
    """(atol, rtol) for ``dtype`` (float32's for an unknown one), each replaced when given."""
    default_atol, default_rtol = TOLERANCES.get(dtype, TOLERANCES["float32"])
    return (default_atol if atol is None else atol), (default_rtol if rtol is None else rtol)
