"""PyTorch ``nn.GRU`` and ``nn.GRUCell`` (torch ``nn/modules/rnn.py``: ``RNNBase._flat_weights_names``,
``GRU`` and ``GRUCell`` docstrings)::

    weight_ih_l{k}[_reverse]  [3H, I_k]   rows r | z | n (reset, update, candidate), W x orientation
    weight_hh_l{k}[_reverse]  [3H, H]     same row order
    bias_ih_l{k}[_reverse]    [3H]        input bias;  bias_hh_l{k}[_reverse] [3H] recurrent bias
                                          (both absent with bias=False)
    nn.GRUCell: weight_ih, weight_hh, bias_ih, bias_hh, same shapes

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr);  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn));  h' = (1 - z) * n + z * h

So the reset gate multiplies after the recurrent matmul (reset_after), there are always two bias
sets, and the activations are fixed. Canonical blocks are row bands of the fused tensors,
transposed to ``x @ W`` orientation. I_k = D * H for k >= 1 (D = 2 when bidirectional).

Found under any module prefix (``encoder.gru.weight_ih_l0``, ``module.`` from DataParallel, a
checkpoint's ``model.`` or ``state_dict.``); a cell is named by the module path plus layer and
direction: ``encoder.gru/l1_reverse``, ``gru/l0``, and an ``nn.GRUCell`` by its module path.
``nn.LSTM`` (4H rows) and ``nn.RNN`` (H rows) beside them have the same names but are no GRU.
"""
from __future__ import annotations

import re

from ..cell import Block, BlockSource, GruCell, vector_blocks
from ._common import common_dtype, weights
from .spec import ConventionRow, LayoutSpec, Oracle, Ref

LAYOUT = "pytorch-gru"
GATES = ("reset", "update", "candidate")  # rows r | z | n (torch nn/modules/rnn.py, GRU docstring)
_LAYER = re.compile(r"^(?:(?P<prefix>.*)\.)?weight_ih(?P<sfx>_l(?P<k>\d+)(?P<rev>_reverse)?)?$")
_OTHER_CLASSES = ("LSTM", "RNN", "LSTMCell", "RNNCell")


def _layer_classes(store) -> dict[str, str]:
    """Module path -> class name, when the file is a pickled model (``torch.save(model)``)."""
    return {layer.name: layer.class_name.rpartition(".")[2] for layer in getattr(store, "layers", [])}


def find_cells(store, claimed: set[str], problems: list[str]) -> list[GruCell]:
    infos = weights(store, claimed)
    classes = _layer_classes(store)
    found: list[tuple[tuple, GruCell]] = []
    prefixes: dict[str, int] = {}
    for name in infos:
        match = _LAYER.match(name)
        if match is None:
            continue
        prefix, sfx = match.group("prefix") or "", match.group("sfx") or ""
        if classes.get(prefix) in _OTHER_CLASSES:
            continue
        cell = _build(infos, prefix, sfx, match, problems)
        if cell is not None:
            order = prefixes.setdefault(prefix, len(prefixes))
            k = int(match.group("k")) if match.group("k") is not None else -1
            found.append(((order, k, bool(match.group("rev"))), cell))
    return [cell for _, cell in sorted(found, key=lambda item: item[0])]


def _build(infos, prefix: str, sfx: str, match, problems: list[str]) -> GruCell | None:
    base = f"{prefix}." if prefix else ""
    names = {role: f"{base}{role}{sfx}" for role in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    where = f"{base}weight_ih{sfx}"
    if f"{base}weight_hr{sfx}" in infos:
        return None  # nn.LSTM(proj_size=...)
    tensors = {role: infos[n] for role, n in names.items() if n in infos}
    if "weight_hh" not in tensors:
        problems.append(f"{where} looks like a PyTorch RNN weight but {names['weight_hh']} is missing")
        return None
    w_ih, w_hh = tensors["weight_ih"].shape, tensors["weight_hh"].shape
    if len(w_ih) != 2 or len(w_hh) != 2:
        problems.append(f"{where} looks like a PyTorch RNN weight but weight_ih {list(w_ih)} and weight_hh "
                        f"{list(w_hh)} are not matrices")
        return None
    units, input_size = w_hh[1], w_ih[1]
    if w_hh[0] != 3 * units or w_ih[0] != 3 * units:
        if units and w_hh[0] == w_ih[0] and w_hh[0] in (units, 4 * units):
            return None  # nn.RNN (H rows) or nn.LSTM (4H rows): not a GRU
        problems.append(f"{where} looks like a PyTorch nn.GRU but weight_ih has shape {list(w_ih)} and weight_hh "
                        f"{list(w_hh)}, where [3 * units, input_size] and [3 * units, units] were expected")
        return None
    biases = [r for r in ("bias_ih", "bias_hh") if r in tensors]
    if len(biases) == 1:
        problems.append(f"{where} is a PyTorch nn.GRU with {names[biases[0]]} but no "
                        f"{names[({'bias_ih', 'bias_hh'} - set(biases)).pop()]}")
        return None
    for role in biases:
        if tuple(tensors[role].shape) != (3 * units,):
            problems.append(f"{where} is a PyTorch nn.GRU of {units} units but {names[role]} has shape "
                            f"{list(tensors[role].shape)}, where [{3 * units}] was expected")
            return None
    dtype, dtype_problem = common_dtype(prefix, tensors)
    if dtype_problem:
        problems.append(dtype_problem)
        return None
    blocks = []
    for g, gate in enumerate(GATES):
        rows = (g * units, (g + 1) * units)
        blocks.append(Block(gate, "input_kernel", (input_size, units),
                            BlockSource(names["weight_ih"], (rows, (0, input_size)), "transpose")))
        blocks.append(Block(gate, "recurrent_kernel", (units, units),
                            BlockSource(names["weight_hh"], (rows, (0, units)), "transpose")))
    if biases:
        blocks += vector_blocks(names["bias_ih"], gates=GATES, units=units, role="bias")
        blocks += vector_blocks(names["bias_hh"], gates=GATES, units=units, role="recurrent_bias")
    is_cell = match.group("k") is None
    reverse = bool(match.group("rev"))
    if is_cell:
        name = prefix or "gru_cell"
        config = {"module": prefix, "class": "nn.GRUCell", "bias": bool(biases)}
    else:
        layer = f"l{match.group('k')}{'_reverse' if reverse else ''}"
        name = f"{prefix}/{layer}" if prefix else layer
        config = {"module": prefix, "class": "nn.GRU", "layer": int(match.group("k")),
                  "direction": "backward" if reverse else "forward", "bias": bool(biases)}
    notes = ["the backward half of a bidirectional nn.GRU: it reads the sequence from its end"] if reverse else []
    return GruCell(
        name=name, layout=LAYOUT, input_size=input_size, units=units, reset_after=True, dtype=dtype,
        tensors={role: info.name for role, info in tensors.items()},
        shapes={info.name: tuple(info.shape) for info in tensors.values()},
        blocks=blocks, activation="tanh", recurrent_activation="sigmoid",
        config_source="layout default (nn.GRU and nn.GRUCell are always sigmoid and tanh)",
        config=config, notes=notes,
    )


def equations(cell, t, xs, h0, acts):
    """nn.GRU's documented equations on weight_ih / weight_hh / bias_ih / bias_hh as stored."""
    from ..maths.pytorch import gru

    if tuple(acts) != ("tanh", "sigmoid"):
        raise ValueError(f"nn.GRU is always sigmoid/tanh, not {acts[1]}/{acts[0]}")
    return gru(t["weight_ih"], t["weight_hh"], t.get("bias_ih"), t.get("bias_hh"), xs, h0)


def _transpose(a, block):
    return a.T


SPEC = LayoutSpec(
    name=LAYOUT,
    title="PyTorch nn.GRU / nn.GRUCell",
    find_cells=Ref(f"{__name__}:find_cells"),
    equations=Ref(f"{__name__}:equations"),
    equations_source="torch nn/modules/rnn.py, the GRU and GRUCell docstrings",
    oracle=Oracle(Ref("gruinspect.oracle.torch:pytorch_gru_oracle"), needs=("torch",),
                  install="pip install 'gruinspect[torch]'"),
    conventions=(
        ConventionRow(True, "sigmoid", "tanh", "two", "PyTorch nn.GRU / nn.GRUCell"),
        ConventionRow(True, "sigmoid", "tanh", "none", "PyTorch nn.GRU(bias=False)"),
    ),
    samples=("torch_zip_bigru", "torch_legacy", "torch_checkpoint", "torch_lightning", "torch_dataparallel",
             "torch_grucell", "torch_nobias_f64", "torch_f16", "torch_bf16_safetensors", "torch_whole_model",
             "torch_cuda_flat", "torch_script"),
    # the inverse, b.T laid out as the stored slice, is the one the CuDNNGRU kernels use
    transforms={"transpose": (Ref(f"{__name__}:_transpose"),
                              Ref("gruinspect.layouts.keras_cudnn_gru:_cudnn_kernel_inverse"))},
)
