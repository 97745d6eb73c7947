"""PyTorch's own ``torch.nn.GRU`` / ``torch.nn.GRUCell`` as a verify oracle (extra ``gruinspect[torch]``).

The cell's stored tensors are loaded into the module with ``load_state_dict(strict=True)``, so a
name or shape the module does not expect fails the check instead of being guessed around.
"""
from __future__ import annotations

import numpy as np

from . import OracleRun, compute_dtype, require_default_activations, upcast_note, versions


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError("The PyTorch oracle needs torch (pip install 'gruinspect[torch]').") from exc
    return torch


def run_torch_gru(tensors: dict, xs: np.ndarray, h0: np.ndarray, *, cell_module: bool, dtype: str) -> np.ndarray:
    """Every state [T, batch, H] of a one-layer forward ``nn.GRU`` (or an ``nn.GRUCell`` stepped
    over ``xs`` when ``cell_module``) holding ``tensors`` (weight_ih, weight_hh[, bias_ih, bias_hh])."""
    torch = _import_torch()
    tdtype = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
              "bfloat16": torch.bfloat16}[dtype]
    w_ih = tensors["weight_ih"]
    units, input_size = tensors["weight_hh"].shape[1], w_ih.shape[1]
    bias = "bias_ih" in tensors
    suffix = "" if cell_module else "_l0"
    state = {f"{role}{suffix}": torch.from_numpy(np.ascontiguousarray(np.asarray(v, np.float64))).to(tdtype)
             for role, v in tensors.items()}
    with torch.no_grad():
        x = torch.from_numpy(np.asarray(xs, np.float64)).to(tdtype)
        h = torch.from_numpy(np.asarray(h0, np.float64)).to(tdtype)
        if cell_module:
            module = torch.nn.GRUCell(input_size, units, bias=bias, dtype=tdtype)
            module.load_state_dict(state, strict=True)
            out = []
            for step in x:
                h = module(step, h)
                out.append(h)
            hs = torch.stack(out)
        else:
            module = torch.nn.GRU(input_size, units, num_layers=1, bias=bias, dtype=tdtype)
            module.load_state_dict(state, strict=True)
            hs, _ = module(x, h.unsqueeze(0))
    return hs.to(torch.float64).numpy()


def pytorch_gru_oracle(cell, t, xs, h0, acts) -> OracleRun:
    """``torch.nn.GRUCell`` for a GRUCell, else a one-layer ``torch.nn.GRU`` holding this layer and
    direction (a backward half runs forward: its own direction only orders the sequence)."""
    require_default_activations(acts, "torch.nn.GRU")
    compute = compute_dtype(cell.dtype, ("float32", "float64"))
    is_cell = cell.config.get("class") == "nn.GRUCell"
    hs = run_torch_gru(t, xs, h0, cell_module=is_cell, dtype=compute)
    what = "torch.nn.GRUCell" if is_cell else "torch.nn.GRU (one layer)"
    if cell.config.get("direction") == "backward":
        what += ", fed the sequence in the order this backward half reads it"
    return OracleRun(hs, compute, f"{what} ({versions('torch')})", upcast_note(cell, compute))
