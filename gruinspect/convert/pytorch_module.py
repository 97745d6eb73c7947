"""``gru_modules.py``: PyTorch modules shaped like ``nn.GRU`` that run the source cells' own equations.

For the cells ``nn.GRU`` cannot hold (reset before the matmul, hard_sigmoid in either Keras form,
relu or any other activation, a missing bias set) and for the ones it can. Written:

* ``weights.safetensors``: per module ``j`` and layer/direction ``l{k}[_reverse]`` the blocks by
  short name in ``x @ W`` orientation (``{j}.cells.l0.W_r`` [input_size, units], ...); a bias the
  source does not store is absent;
* ``gru_modules.py``: ``load(DIR=None, batch_first=False) -> {name: module}``, one module per layer
  stack as ``--to pytorch`` groups them (bidirectional and stacked as the source was). Each module
  has ``nn.GRU``'s attributes ``input_size``, ``hidden_size``, ``num_layers``, ``bidirectional``,
  ``batch_first`` and its ``forward(x, h0=None) -> (output, h_n)`` shapes: ``x`` [T, batch, I]
  ([batch, T, I] with batch_first, or unbatched [T, I]), ``h0``/``h_n`` [layers * directions,
  batch, H], ``output`` [T, batch, directions * H] with the backward half aligned to input time.

Proof: ``gru_modules.load`` on the written folder, every cell run in torch on the proof's
sequences; without torch, the module's equations in numpy on the tensors read back.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np

from .. import __version__
from ..maths import run as run_gru
from ._code import LOSSLESS, capabilities, clip_of, consumption_order, import_written, present_blocks, short_name
from ._common import CellRun, Finding, Layer, MappedLayer
from .pytorch import _groups, check_dependencies  # noqa: F401 - safetensors writes the file

NAME = "pytorch-module"
EXTRA = "pytorch"
MODULE, WEIGHTS = "gru_modules.py", "weights.safetensors"
CLIPS = True  # writes the ONNX clip bound on the activations' inputs

CAPS = capabilities(NAME, "the PyTorch module", written_dtype={"bfloat16": "float32", "float16": "float32"},
                    dtype_notes=dict(LOSSLESS))

# Each activation in torch, matching gruinspect.maths.ACTIVATIONS.
TORCH_ACTIVATIONS = {
    "sigmoid": "torch.sigmoid",
    "tanh": "torch.tanh",
    "hard_sigmoid_keras2": "lambda v: torch.clamp(0.2 * v + 0.5, 0.0, 1.0),  # Keras 1/2, tf.keras",
    "hard_sigmoid_keras3": "lambda v: torch.clamp(v / 6.0 + 0.5, 0.0, 1.0),  # Keras 3: relu6(x + 3) / 6",
    "relu": "torch.relu",
    "linear": "lambda v: v",
    "softsign": "F.softsign",
    "softplus": "lambda v: torch.logaddexp(torch.zeros_like(v), v)",
    "elu": "F.elu",
    "selu": "F.selu",
    "swish": "F.silu",
    "silu": "F.silu",
    "gelu": "F.gelu,  # the exact erf form, Keras' default",
    "exponential": "torch.exp",
}

_CODE = '''

class ExactGRUCell(nn.Module):
    """One direction of one layer: the step of the source cell, blocks in x @ W orientation."""

    def __init__(self, input_size, hidden_size, reset_after, recurrent_activation, activation, biases, dtype,
                 clip=0.0):
        super().__init__()
        self.reset_after, self.clip = reset_after, clip  # clip > 0 bounds every activation's input (ONNX)
        self.recurrent_activation, self.activation = recurrent_activation, activation
        for name in ("W_r", "W_z", "W_h"):
            setattr(self, name, nn.Parameter(torch.zeros(input_size, hidden_size, dtype=dtype)))
        for name in ("U_r", "U_z", "U_h"):
            setattr(self, name, nn.Parameter(torch.zeros(hidden_size, hidden_size, dtype=dtype)))
        for name in ("b_r", "b_z", "b_h", "b_hr", "b_hz", "b_hn"):
            if name in biases:
                setattr(self, name, nn.Parameter(torch.zeros(hidden_size, dtype=dtype)))
            else:
                self.register_parameter(name, None)  # the source has no such bias

    def forward(self, x, h):
        def bounded(f):
            return f if not self.clip else (lambda v: f(torch.clamp(v, -self.clip, self.clip)))

        act_r, act = bounded(ACTIVATIONS[self.recurrent_activation]), bounded(ACTIVATIONS[self.activation])

        def b(p):
            return 0.0 if p is None else p

        r = act_r(x @ self.W_r + b(self.b_r) + h @ self.U_r + b(self.b_hr))
        z = act_r(x @ self.W_z + b(self.b_z) + h @ self.U_z + b(self.b_hz))
        if self.reset_after:
            c = act(x @ self.W_h + b(self.b_h) + r * (h @ self.U_h + b(self.b_hn)))
        else:
            c = act(x @ self.W_h + b(self.b_h) + (r * h) @ self.U_h + b(self.b_hn))
        return z * h + (1.0 - z) * c


class ExactGRU(nn.Module):
    """A stack of ExactGRUCells with nn.GRU's attributes and forward shapes."""

    def __init__(self, config, batch_first=False):
        super().__init__()
        self.input_size, self.hidden_size = config["input_size"], config["hidden_size"]
        self.num_layers, self.bidirectional = config["num_layers"], config["bidirectional"]
        self.batch_first, self.go_backwards = batch_first, config.get("go_backwards", False)
        dtype = getattr(torch, config["dtype"])
        self.cells = nn.ModuleDict()
        for cell in config["cells"]:
            self.cells[cell["key"]] = ExactGRUCell(cell["input_size"], self.hidden_size, cell["reset_after"],
                                                   cell["recurrent_activation"], cell["activation"],
                                                   cell["biases"], dtype, cell.get("clip", 0.0))

    def forward(self, x, h0=None):
        directions = 2 if self.bidirectional else 1
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        steps, batch = x.shape[0], x.shape[1]
        if h0 is None:
            h0 = x.new_zeros(self.num_layers * directions, batch, self.hidden_size)
        elif unbatched:
            h0 = h0.unsqueeze(1)
        layer_input, h_n = x, []
        for k in range(self.num_layers):
            halves = []
            for d in range(directions):
                cell = self.cells[f"l{k}_reverse" if d else f"l{k}"]
                backward = d == 1 or self.go_backwards
                h, out = h0[k * directions + d], [None] * steps
                for t in (range(steps - 1, -1, -1) if backward else range(steps)):
                    h = cell(layer_input[t], h)
                    out[t] = h  # aligned to input time, as nn.GRU's reverse direction
                halves.append(torch.stack(out))
                h_n.append(h)
            layer_input = torch.cat(halves, dim=-1)
        output, h_n = layer_input, torch.stack(h_n)
        if unbatched:
            return output.squeeze(1), h_n.squeeze(1)
        return (output.transpose(0, 1) if self.batch_first else output), h_n


def load(folder=None, batch_first=False):
    """{name: module} with the weights of weights.safetensors in ``folder`` (this file's by default)."""
    state = load_file(os.path.join(folder or HERE, WEIGHTS))
    modules = {}
    for j, config in enumerate(MODULES):
        module = ExactGRU(config, batch_first=batch_first)
        prefix = f"{j}."
        module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
        modules[config["name"]] = module
    return modules
'''


def layer_notes(layer: Layer) -> list[Finding]:
    if layer.reverse:
        return [Finding("go_backwards", "the module reads the sequence from last to first (the source's "
                                        "go_backwards); its output is aligned to input time, as nn.GRU's reverse "
                                        "direction, not in reading order")]
    return []


def _key(ml: MappedLayer, mc, k: int) -> str:
    return f"l{k}_reverse" if ml.layer.bidirectional and mc.direction == "backward" else f"l{k}"


def write(layers: list[MappedLayer], folder: str) -> list[dict]:
    from safetensors.numpy import save_file

    tensors: dict[str, np.ndarray] = {}
    modules, used = [], []
    for j, group in enumerate(_groups(layers)):
        first = group[0].layer
        dtype = "float64" if group[0].dtype == "float64" else "float32"
        name = " + ".join(mc.cell.name for ml in group for mc in ml.cells)
        config = {"name": name, "input_size": first.input_size, "hidden_size": first.units,
                  "num_layers": len(group), "bidirectional": first.bidirectional, "dtype": dtype, "cells": []}
        if first.reverse:
            config["go_backwards"] = True
        for k, ml in enumerate(group):
            for mc in ml.cells:
                key = _key(ml, mc, k)
                present = present_blocks(mc)
                for g, r in present:
                    tensors[f"{j}.cells.{key}.{short_name(g, r)}"] = np.ascontiguousarray(mc.blocks[(g, r)], dtype)
                config["cells"].append({
                    "key": key, "source": mc.cell.name, "input_size": mc.cell.input_size,
                    "reset_after": mc.plan.reset_after, "recurrent_activation": mc.plan.recurrent_activation,
                    "activation": mc.plan.activation,
                    "biases": [short_name(g, r) for g, r in present if r.endswith("bias")]})
                if clip_of(mc):
                    config["cells"][-1]["clip"] = clip_of(mc)
                for act in (mc.plan.recurrent_activation, mc.plan.activation):
                    if act not in used:
                        used.append(act)
                mc.written_as = {"file": MODULE, "module": name, "cell": key, "prefix": f"{j}.cells.{key}.",
                                 "summary": f"{MODULE}: load()[{name!r}].cells[{key!r}]"}
        modules.append(config)
    save_file(tensors, os.path.join(folder, WEIGHTS), metadata={"format": "pt"})
    head = [f'"""GRU layers as PyTorch modules (written by gruinspect {__version__}, gruinspect convert '
            '--to pytorch-module).', "",
            "Each module runs the source cells' own equations and is shaped like torch.nn.GRU:", "",
            "    import gru_modules",
            "    modules = gru_modules.load()            # {name: module}; load(DIR, batch_first=True) also works",
            "    output, h_n = modules[name](x, h0)      # x [T, batch, input_size]; h0 [layers * dirs, batch, H]",
            '"""', "import os", "", "import torch", "import torch.nn.functional as F  # noqa: F401",
            "from safetensors.torch import load_file", "from torch import nn", "",
            "HERE = os.path.dirname(os.path.abspath(__file__))", f"WEIGHTS = {WEIGHTS!r}", "", "ACTIVATIONS = {"]
    head += [f"    {name!r}: {TORCH_ACTIVATIONS[name]}" + ("" if TORCH_ACTIVATIONS[name].endswith(",") or "#" in
                                                        TORCH_ACTIVATIONS[name] else ",") for name in used]
    head += ["}", "", "# One entry per module: its nn.GRU-like sizes and each layer/direction's convention.",
             "MODULES = " + _pretty(modules)]
    with open(os.path.join(folder, MODULE), "w", encoding="utf-8") as f:
        f.write("\n".join(head) + "\n" + _CODE)
    cells = [mc.cell.name for ml in layers for mc in ml.cells]
    return [{"file": WEIGHTS, "cells": cells, "modules": [{k: v for k, v in m.items() if k != "cells"}
                                                           for m in modules]},
            {"file": MODULE, "cells": cells, "role": "module"}]


def _pretty(value, indent: str = "") -> str:
    """A Python literal of ``value`` with one entry per line (the module's config stays readable)."""
    inner = indent + "    "
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return "[\n" + "".join(f"{inner}{_pretty(v, inner)},\n" for v in value) + indent + "]"
    if isinstance(value, dict):
        return "{\n" + "".join(f"{inner}{k!r}: {_pretty(v, inner)},\n" for k, v in value.items()) + indent + "}"
    return repr(value)


def implementation() -> tuple[str, str | None]:
    if importlib.util.find_spec("torch") is not None:
        import torch

        return f"the written {MODULE} in torch {torch.__version__}", None
    return f"numpy transcription of {MODULE}'s equations on {WEIGHTS}", "torch is not installed"


def run(folder: str, ml: MappedLayer, xs: np.ndarray, h0s: list[np.ndarray]) -> list[CellRun]:
    name, fallback = implementation()
    compute = "float64" if ml.dtype == "float64" else "float32"
    runs = []
    if fallback is None:
        import torch

        modules = import_written(folder, MODULE).load(folder)
    else:
        from safetensors.numpy import load_file

        state = load_file(os.path.join(folder, WEIGHTS))
    for (mc, seq, backward), h0 in zip(consumption_order(ml, xs), h0s):
        where = mc.written_as
        if fallback is None:
            cell = modules[where["module"]].cells[where["cell"]]
            dtype = getattr(torch, compute)
            h, out = torch.tensor(h0, dtype=dtype), []
            with torch.no_grad():
                for x in seq:
                    h = cell(torch.tensor(x, dtype=dtype), h)
                    out.append(h.numpy().astype(np.float64))
            outputs = np.stack(out)
        else:
            blocks = {(g, r): state[where["prefix"] + short_name(g, r)].astype(compute)
                      for g, r in present_blocks(mc)}
            outputs = run_gru(blocks, seq.astype(compute), h0.astype(compute), reset_after=mc.plan.reset_after,
                              activation_name=mc.plan.activation,
                              recurrent_activation_name=mc.plan.recurrent_activation, clip=clip_of(mc))
        runs.append(CellRun(outputs, backward, compute, name, fallback))
    return runs

