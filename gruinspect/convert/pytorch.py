"""PyTorch ``nn.GRU``: gate order r, z, n; reset applied after the recurrent matmul (docs/conventions.md).

Source: the ``torch.nn.GRU`` documentation::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

``weight_ih_l{k}`` [3H, I] = concat([W_r, W_z, W_h], 1).T in canonical ``x @ W`` blocks,
``weight_hh_l{k}`` [3H, H] likewise from the recurrent kernels, ``bias_ih_l{k}`` = [b_r, b_z, b_h],
``bias_hh_l{k}`` = [rb_r, rb_z, rb_h]; ``_reverse`` names the backward half of a bidirectional
layer. Only sigmoid and tanh exist, and the reset gate always multiplies after the matmul.

Written: one ``.safetensors`` state dict per ``nn.GRU`` (layers stack into one module while their
sizes chain: same units, next input = units x directions), loadable with
``gru.load_state_dict(safetensors.torch.load_file(path))``. Writing needs only ``safetensors``
(its numpy API); the proof runs ``torch.nn.GRU`` when torch is installed.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np

from ..errors import MissingDependencyError
from ._common import Activation, Capabilities, CellRun, Finding, Layer, MappedLayer, cat

NAME = "pytorch"
EXTRA = "pytorch"
# Appended to a refusal: the target that holds every convention exactly.
REFUSAL_HINT = "; --to pytorch-module writes a PyTorch module with this cell's exact equations"
ORDER = ("reset", "update", "candidate")

CAPS = Capabilities(
    target=NAME,
    label="PyTorch nn.GRU",
    reset_after=(True,),
    gate_activations={"sigmoid": Activation("sigmoid")},
    candidate_activations={"tanh": Activation("tanh")},
    recurrent_bias={True: True, False: True},
    optional_bias=False,
    written_dtype={"bfloat16": "float32"},
    dtype_notes={"bfloat16": Finding("bfloat16 as float32", "bfloat16 weights are written as float32 (lossless)")},
)


def check_dependencies() -> None:
    if importlib.util.find_spec("safetensors") is None:
        raise MissingDependencyError(
            "Converting to PyTorch needs the safetensors package: pip install 'gruinspect[pytorch]'.")


def layer_notes(layer: Layer) -> list[Finding]:
    if layer.reverse:
        return [Finding("reverse layer written forward",
                        "nn.GRU has no backward-only layer: the cell is written as a forward layer, so feed it the "
                        "sequence reversed (the source read it backwards)")]
    return []


def _groups(layers: list[MappedLayer]) -> list[list[MappedLayer]]:
    """Consecutive layers that form one nn.GRU: same units and dtype, next input = units x directions."""
    groups: list[list[MappedLayer]] = []
    for ml in layers:
        prev = groups[-1][-1] if groups else None
        if (prev is not None and not prev.layer.reverse and not ml.layer.reverse
                and ml.layer.bidirectional == prev.layer.bidirectional and ml.layer.units == prev.layer.units
                and ml.dtype == prev.dtype
                and ml.layer.input_size == prev.layer.units * (2 if prev.layer.bidirectional else 1)):
            groups[-1].append(ml)
        else:
            groups.append([ml])
    return groups


def _tensors(blocks: dict, k: int, suffix: str, dtype: str) -> dict[str, np.ndarray]:
    def out(a):
        return np.ascontiguousarray(a, dtype=dtype)

    return {
        f"weight_ih_l{k}{suffix}": out(cat(blocks, ORDER, "input_kernel").T),
        f"weight_hh_l{k}{suffix}": out(cat(blocks, ORDER, "recurrent_kernel").T),
        f"bias_ih_l{k}{suffix}": out(cat(blocks, ORDER, "bias")),
        f"bias_hh_l{k}{suffix}": out(cat(blocks, ORDER, "recurrent_bias")),
    }


def write(layers: list[MappedLayer], folder: str) -> list[dict]:
    from safetensors.numpy import save_file

    groups = _groups(layers)
    records = []
    snippet = ['"""Load the converted GRU weights into torch.nn.GRU (written by gruinspect convert)."""',
               "import os", "", "import torch", "from safetensors.torch import load_file", "",
               "HERE = os.path.dirname(os.path.abspath(__file__))", ""]
    for j, group in enumerate(groups):
        file = "model.safetensors" if len(groups) == 1 else f"model_{j}.safetensors"
        tensors: dict[str, np.ndarray] = {}
        for k, ml in enumerate(group):
            for mc in ml.cells:
                suffix = "_reverse" if ml.layer.bidirectional and mc.direction == "backward" else ""
                part = _tensors(mc.blocks, k, suffix, ml.dtype)
                tensors.update(part)
                mc.written_as = {"file": file, "layer": k, "tensors": list(part),
                                 "summary": f"{file}: *_l{k}{suffix}"}
        save_file(tensors, os.path.join(folder, file), metadata={"format": "pt"})
        first = group[0].layer
        module = {"input_size": first.input_size, "hidden_size": first.units, "num_layers": len(group),
                  "bidirectional": first.bidirectional, "bias": True}
        if group[0].dtype == "float64":
            module["dtype"] = "float64"
        records.append({"file": file, "cells": [c.cell.name for ml in group for c in ml.cells],
                        "torch.nn.GRU": module, "dtype": group[0].dtype})
        var = "gru" if len(groups) == 1 else f"gru_{j}"
        args = ", ".join(f"{k}={'torch.float64' if k == 'dtype' else v!r}" for k, v in module.items())
        snippet.append(f"# {', '.join(records[-1]['cells'])}")
        snippet.append(f"{var} = torch.nn.GRU({args})")
        snippet.append(f"{var}.load_state_dict(load_file(os.path.join(HERE, {file!r})))")
        snippet.append("")
    with open(os.path.join(folder, "load_pytorch.py"), "w", encoding="utf-8") as f:
        f.write("\n".join(snippet))
    records.append({"file": "load_pytorch.py", "cells": [], "role": "loader"})
    return records


def implementation() -> tuple[str, str | None]:
    """(what runs the proof, why the fallback was used or None)."""
    if importlib.util.find_spec("torch") is not None:
        import torch

        return f"torch.nn.GRU (torch {torch.__version__})", None
    return "numpy transcription of the nn.GRU equations", "torch is not installed"


def run(folder: str, ml: MappedLayer, xs: np.ndarray, h0s: list[np.ndarray]) -> list[CellRun]:
    """Run the written layer: torch.nn.GRU on the tensors read back from the file (or the numpy equations)."""
    name, fallback = implementation()
    file = os.path.join(folder, ml.cells[0].written_as["file"])
    k = ml.cells[0].written_as["layer"]
    compute = "float64" if ml.dtype == "float64" else "float32"
    units = ml.layer.units
    if fallback is None:
        outputs = _run_torch(file, ml, k, xs, h0s, compute)
    else:
        outputs = _run_numpy(file, ml, k, xs, h0s, compute)
    runs = []
    for d, mc in enumerate(ml.cells):
        states = outputs[..., d * units:(d + 1) * units]
        backward = mc.direction == "backward" and ml.layer.bidirectional
        # nn.GRU realigns the reverse direction to input time; undo that to get consumption order.
        runs.append(CellRun(states[::-1] if backward else states, backward, compute, name, fallback))
    return runs


def check_files(folder: str, records: list[dict]) -> list[str]:
    """Load every written file into the nn.GRU its record describes (strict): the names and shapes
    are exactly what nn.GRU expects. Returns problems as sentences."""
    if implementation()[1] is not None:
        return []
    import torch
    from safetensors.torch import load_file

    problems = []
    for record in records:
        module = record.get("torch.nn.GRU")
        if module is None:
            continue
        kwargs = dict(module)
        kwargs["dtype"] = torch.float64 if kwargs.get("dtype") == "float64" else torch.float32
        gru = torch.nn.GRU(**kwargs)
        try:
            gru.load_state_dict(load_file(os.path.join(folder, record["file"])), strict=True)
        except RuntimeError as exc:
            problems.append(f"{record['file']} does not load into torch.nn.GRU({module}): {exc}")
    return problems


def _run_torch(file, ml, k, xs, h0s, compute):
    import torch
    from safetensors.torch import load_file

    dtype = torch.float64 if compute == "float64" else torch.float32
    state = load_file(file)
    mine = {}
    for name, value in state.items():
        stem, _, rest = name.rpartition(f"_l{k}")
        if stem and rest in ("", "_reverse"):
            mine[f"{stem}_l0{rest}"] = value
    gru = torch.nn.GRU(ml.layer.input_size, ml.layer.units, num_layers=1, bidirectional=ml.layer.bidirectional,
                       dtype=dtype)
    gru.load_state_dict(mine, strict=True)
    with torch.no_grad():
        out, _ = gru(torch.tensor(xs, dtype=dtype), torch.tensor(np.stack(h0s), dtype=dtype))
    return out.numpy().astype(np.float64)


def _run_numpy(file, ml, k, xs, h0s, compute):
    from safetensors.numpy import load_file

    from ..maths.pytorch import gru

    state = load_file(file)
    halves = []
    for d, h0 in enumerate(h0s):
        sfx = "_reverse" if d == 1 else ""
        weights = (state[f"{p}_l{k}{sfx}"].astype(compute) for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        seq = xs[::-1] if d == 1 else xs
        states = gru(*weights, seq.astype(compute), h0.astype(compute))
        halves.append(states[::-1] if d == 1 else states)
    return np.concatenate(halves, axis=-1).astype(np.float64)
