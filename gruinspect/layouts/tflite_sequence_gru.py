"""TFLite's experimental custom operator ``UNIDIRECTIONAL_SEQUENCE_GRU`` (layout ``tflite-sequence-gru``).

tensorflow ``lite/experimental/kernels/unidirectional_sequence_gru.cc`` and ``gru_cell.cc``.
Inputs: 0 input [T, batch, I], 1 state [batch, H], 2 gate_weight [2H, I+H], 3 gate_bias [2H],
4 candidate_weight [H, I+H], 5 candidate_bias [H]; weights are [out, in] (FULLY_CONNECTED)::

    [r u] = sigmoid([x h] @ gate_weight.T + gate_bias)      # rows 0:H reset, H:2H update
    c = tanh([x, r * h] @ candidate_weight.T + candidate_bias)
    h' = (1 - u) * c + u * h

That is TF1 ``GRUCell`` (docs/conventions.md) with ``gates/kernel = gate_weight.T`` and
``candidate/kernel = candidate_weight.T``: columns 0:I of each weight multiply x, I:I+H multiply h.
The operator is a custom one that ``tf.lite.Interpreter``'s built-in op set does not register, so
the TF1 GRUCell it transcribes is the framework check, and the report says so.
"""
from __future__ import annotations

from ..cell import Block, BlockSource, GruCell
from ._common import common_dtype
from .spec import ConventionRow, LayoutSpec, Oracle, Ref
from .tflite_gru import TRANSFORM

LAYOUT = "tflite-sequence-gru"
OPCODE = "UNIDIRECTIONAL_SEQUENCE_GRU"
ROLES = ("gate_weight", "gate_bias", "candidate_weight", "candidate_bias")


def find_cells(store, claimed: set[str], problems: list[str]) -> list[GruCell]:
    model = getattr(store, "model", None)
    if model is None or getattr(store, "format", "") != "tflite":
        return []
    infos = store.infos()
    cells = []
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.opcode != OPCODE:
                continue
            where = f"{OPCODE} operator {op.index} of subgraph {sg.index}"
            ids = list(op.inputs[2:6])
            names = [sg.tensors[i].store_name if 0 <= i < len(sg.tensors) else None for i in ids]
            if len(op.inputs) != 6 or any(n is None for n in names):
                problems.append(f"{where} does not take four constant weights (gate_weight, gate_bias, "
                                f"candidate_weight, candidate_bias) as inputs 2-5")
                continue
            tensors = dict(zip(ROLES, names))
            gw, gb, cw, cb = (infos[n] for n in names)
            if len(gw.shape) != 2 or gw.shape[0] % 2 or not gw.shape[0]:
                problems.append(f"{where} has gate_weight {list(gw.shape)}, not [2 * units, input_size + units]")
                continue
            units = gw.shape[0] // 2
            input_size = gw.shape[1] - units
            want = {"gate_bias": (2 * units,), "candidate_weight": (units, input_size + units),
                    "candidate_bias": (units,)}
            bad = [r for r, s in want.items() if tuple(infos[tensors[r]].shape) != s]
            if input_size <= 0 or bad:
                problems.append(f"{where}: {', '.join(bad) or 'gate_weight'} do not fit units={units}")
                continue
            dtype, problem = common_dtype(where, {r: infos[n] for r, n in tensors.items()})
            if problem:
                problems.append(problem)
                continue
            if any(n in claimed for n in names):
                continue
            blocks = []
            I, H = input_size, units
            for k, gate in enumerate(("reset", "update")):
                rows = (k * H, (k + 1) * H)
                blocks.append(Block(gate, "input_kernel", (I, H), BlockSource(tensors["gate_weight"], (rows, (0, I)),
                                                                             TRANSFORM)))
                blocks.append(Block(gate, "recurrent_kernel", (H, H),
                                    BlockSource(tensors["gate_weight"], (rows, (I, I + H)), TRANSFORM)))
                blocks.append(Block(gate, "bias", (H,), BlockSource(tensors["gate_bias"], (rows,))))
            blocks.append(Block("candidate", "input_kernel", (I, H),
                                BlockSource(tensors["candidate_weight"], ((0, H), (0, I)), TRANSFORM)))
            blocks.append(Block("candidate", "recurrent_kernel", (H, H),
                                BlockSource(tensors["candidate_weight"], ((0, H), (I, I + H)), TRANSFORM)))
            blocks.append(Block("candidate", "bias", (H,), BlockSource(tensors["candidate_bias"], ((0, H),))))
            name = sg.tensors[op.outputs[0]].name if op.outputs else ""
            cells.append(GruCell(
                name=name or f"subgraph{sg.index}/op{op.index}", layout=LAYOUT, input_size=I, units=H,
                reset_after=False, dtype=dtype, tensors=tensors, shapes={n: tuple(infos[n].shape) for n in names},
                blocks=blocks, activation="tanh", recurrent_activation="sigmoid",
                config_source="layout (the operator's fixed sigmoid / tanh)",
                config={"subgraph": sg.index, "operator": op.index}))
    return cells


def _as_tf1(t):
    return {"gates/kernel": t["gate_weight"].T, "gates/bias": t["gate_bias"],
            "candidate/kernel": t["candidate_weight"].T, "candidate/bias": t["candidate_bias"]}


def equations(cell, t, xs, h0, acts):
    """gru_cell.cc on the stored [out, in] weights (the TF1 GRUCell maths of maths/tf1.py)."""
    from ..maths.tf1 import gru_cell

    g = _as_tf1(t)
    return gru_cell(g["gates/kernel"], g["gates/bias"], g["candidate/kernel"], g["candidate/bias"], xs, h0,
                    activation_name=acts.activation, recurrent_activation_name=acts.recurrent_activation)


def oracle(cell, t, xs, h0, acts):
    """TF1 GRUCell fed the operator's weights transposed (the custom op is not in the interpreter)."""
    from ..oracle.tf1 import gru_cell_oracle

    run = gru_cell_oracle(cell, _as_tf1(t), xs, h0, acts)
    run.description = (f"{run.description}, which gru_cell.cc transcribes; tf.lite.Interpreter does not register the "
                       f"custom {OPCODE} operator")
    return run


SPEC = LayoutSpec(
    name=LAYOUT,
    title="TFLite custom operator UNIDIRECTIONAL_SEQUENCE_GRU",
    find_cells=Ref(f"{__name__}:find_cells"),
    equations=Ref(f"{__name__}:equations"),
    equations_source="tensorflow lite/experimental/kernels/gru_cell.cc GruCell",
    oracle=Oracle(Ref(f"{__name__}:oracle"), needs=("tensorflow",)),
    conventions=(ConventionRow(False, "sigmoid", "tanh", "one", "TFLite custom UNIDIRECTIONAL_SEQUENCE_GRU"),),
    samples=("tflite_sequence_gru_op",),
)
