"""GRUs recovered by pattern from TFLite operator graphs (layout ``tflite-recovered-gru``).

TFLite has no GRU operator, so ``tf.lite.TFLiteConverter`` lowers a Keras GRU (keras
``src/layers/rnn/gru.py`` GRUCell.call) to plain operators, learnt by converting Keras 3 GRUs
with TensorFlow 2.21 (``unroll`` both ways, ``reset_after`` both ways, float32 and dynamic-range
int8; ``sample_checkpoints/samples_tflite.py``):

* ``unroll=False``: a WHILE loop whose body subgraph holds one step; ``unroll=True``: the same
  step repeated in the main subgraph, each step's state feeding the next.
* Per step: ``FULLY_CONNECTED(x, W_x [3H, I], b_x [3H])`` split into three column bands
  (SPLIT or STRIDED_SLICE) and, for the state, ``FULLY_CONNECTED(h, W_h [3H, H], b_h [3H])``
  (reset_after=True) or ``FULLY_CONNECTED(h, W_h [2H, H])`` plus ``FULLY_CONNECTED(r * h,
  U_c [H, H])`` (reset_after=False). Weights are [out, in]: the Keras kernels transposed.
* tf-keras GRUs convert to the same steps, except that the state-side bands come from SPLIT_V
  (one size -1) and the cuDNN-compatible reset_after=True loop leaves its tensors unscoped
  (``while/Tanh``), so such a cell is named by its subgraph. Bidirectional halves are two loops
  (or two unrolled chains), the backward one reading REVERSE_V2 of the input.
* ``z = LOGISTIC(x_z + h_z)``, ``r = LOGISTIC(x_r + h_r)``, ``c = TANH(x_c + r * h_c)`` or
  ``TANH(x_c + FC(r * h))``, ``h' = z * h + (1 - z) * c`` as ``ADD(MUL(z, h), MUL(SUB(1, z), c))``.
* Dynamic-range int8 keeps the float graph and stores weights of 1024 or more elements as int8
  with one scale per output row (quantized_dimension 0); the reader dequantizes them.
* Folding: the converter evaluates what the zero initial state makes constant. The first step of
  an unrolled GRU has no recurrent matmul (h @ W_h + b_h is folded to the recurrent bias, kept as
  per-gate constants), so blocks are taken from a later step; an unrolled GRU of one time step
  has no recurrent kernel left at all, which is reported and not guessed.

Which gate is which is read from the graph, not assumed from the column order: z is the
logistic that gates the old state, r the one that gates the candidate's recurrent term, and each
term's columns come from its SPLIT index or STRIDED_SLICE bounds (tiny constants that are operator
parameters: the only tensor data ``list`` reads here, never a weight). Cells are named by the op
scope of the step (``functional_1/g_1``, as the converter wrote it).
"""
from __future__ import annotations

import re
from typing import NamedTuple

from ..cell import Block, BlockSource, GruCell
from ._tflite_graph import (Graph, add_terms, const_store_name, fc_band, no_fused_activation, op_cone,
                            other_input)
from .spec import ConventionRow, LayoutSpec, Oracle, Ref

LAYOUT = "tflite-recovered-gru"
TRANSFORM = "tflite_out_in"  # a FULLY_CONNECTED weight slice [out, in] -> the block [in, out]


def transposed(part, block):
    return part.T


def transposed_inverse(values, stored_shape):
    import numpy as np

    return np.ascontiguousarray(values.T).reshape(stored_shape)


class _Step(NamedTuple):
    """One recognised GRU step of a TFLite graph: its tensors, ops and gate terms."""

    sg: int
    x: int            # the step's input tensor
    h: int | None     # the previous state (None: folded to zero)
    h_new: int
    ops: list[int]
    reset_after: bool
    terms: dict  # (gate, "x"|"h") -> Term
    candidate_fc: object = None  # reset_after=False: FC(r * h)
    scope: str = ""


def _step(g: Graph, store, tanh) -> _Step | None:
    """The GRU step around candidate activation ``tanh``, or None when the pattern is not there."""
    c = tanh.outputs[0]
    for mul in g.uses(c, "MUL"):
        sub = g.op(other_input(mul, c), "SUB")
        one_name = const_store_name(g, sub.inputs[0]) if sub is not None else None
        if one_name is None:
            continue
        one = store.read_raw(one_name)
        if one.size != 1 or float(one.reshape(-1)[0]) != 1.0:
            continue
        z = sub.inputs[1]
        if g.op(z, "LOGISTIC") is None:
            continue
        h, h_new = None, mul.outputs[0]
        for add in g.uses(mul.outputs[0], "ADD"):
            keep = g.op(other_input(add, mul.outputs[0]), "MUL")
            if keep is not None and z in keep.inputs[:2]:
                h, h_new = other_input(keep, z), add.outputs[0]
                break
        return _gates(g, store, tanh, z, h, h_new)
    return None


def _gates(g: Graph, store, tanh, z: int, h: int | None, h_new: int) -> _Step | None:
    pre_c = add_terms(g, tanh.inputs[0])
    if pre_c is None:
        pre_c = [tanh.inputs[0]]  # folded: no recurrent term left
    terms: dict = {}
    r = None
    reset_after = None
    candidate_fc = None
    for t in pre_c:
        mul = g.op(t, "MUL")
        fc = g.op(t, "FULLY_CONNECTED")
        if mul is not None and no_fused_activation(mul):
            a, b = mul.inputs[:2]
            r_side = a if g.op(a, "LOGISTIC") else b
            band = fc_band(g, store, other_input(mul, r_side))
            if band is None or g.op(r_side, "LOGISTIC") is None:
                return None
            r, reset_after = r_side, True
            terms[("candidate", "h")] = band
        elif fc is not None and g.op(fc.inputs[0], "MUL") is not None and h is not None:
            rh = g.op(fc.inputs[0], "MUL")
            if h not in rh.inputs[:2]:
                return None
            r, reset_after, candidate_fc = other_input(rh, h), False, fc
        else:
            band = fc_band(g, store, t)
            if band is None:
                return None
            terms[("candidate", "x")] = band
    for gate, act in (("update", z), ("reset", r)):
        if act is None:
            continue
        pre = add_terms(g, g.producer[act].inputs[0])
        if pre is None:
            return None
        for t in pre:
            band = fc_band(g, store, t)
            if band is None:
                return None
            side = "h" if band.fc is not None and h is not None and band.fc.inputs[0] == h else "x"
            if side in [k[1] for k in terms if k[0] == gate]:
                side = "h" if band.const is not None else side  # a folded recurrent term
            terms[(gate, side)] = band
    if ("candidate", "x") not in terms or ("update", "x") not in terms:
        return None
    x_fc = terms[("candidate", "x")].fc
    if x_fc is None:
        return None
    ops = sorted({o.index for o in op_cone(g, h_new, stop={x_fc.inputs[0]} | ({h} if h is not None else set()))})
    return _Step(g.sg.index, x_fc.inputs[0], h, h_new, ops, bool(reset_after), terms, candidate_fc,
                 _scope(g.tensor(tanh.outputs[0]).name))


def _scope(name: str) -> str:
    name = name.split(";")[0]
    if "/while/" in name:
        return name.split("/while/")[0]
    m = re.search(r"/gru_cell(_\d+)?/", name + "/")
    return name[: m.start()] if m else name.rsplit("/", 1)[0]


# ------------------------------------------------------------------------------ cells


def find_cells(store, claimed: set[str], problems: list[str]) -> list[GruCell]:
    model = getattr(store, "model", None)
    if model is None or getattr(store, "format", "") != "tflite":
        return []
    cells: list[GruCell] = []
    names: dict[str, int] = {}
    loops = _loop_scopes(model)
    seen_steps = 0
    for sg in model.subgraphs:
        g = Graph(model, sg)
        steps = [s for s in (_guarded(_step, g, store, op) for op in sg.operators if op.opcode == "TANH") if s]
        seen_steps += len(steps)
        if sg.index in loops:  # tf-keras names body tensors `while/...`: take the WHILE op's scope
            steps = [s._replace(scope=loops[sg.index]) if not s.scope or s.scope.split("/")[0] == "while" else s
                     for s in steps]
        full = [s for s in steps if s.h is not None]
        folded = [s for s in steps if s.h is None]
        used_folded: set[int] = set()
        chains: list[_Step] = []
        for s in full:
            key = _weights_key(s)
            if any(_weights_key(c) == key for c in chains):
                continue  # a later unrolled step of a cell already found
            chains.append(s)
        for s in chains:
            cell = _cell(store, g, s, problems, names)
            if cell is not None and not any(t in claimed for t in cell.tensors.values()):
                cells.append(cell)
            # the folded first step feeding this chain
            for f in folded:
                if f.h_new == s.h or _feeds(g, f.h_new, s):
                    used_folded.add(id(f))
        for f in folded:
            if id(f) in used_folded or any(_feeds(g, f.h_new, c) for c in full):
                continue
            problems.append(_folded_problem(g, f))
    if not seen_steps:
        unmatched = _gru_like_ops(model)
        if unmatched:
            problems.append(unmatched)
    return cells


def _gru_like_ops(model) -> str | None:
    """A sentence for a model with a recurrent-looking subgraph (TANH, LOGISTIC and the MUL and
    ADD or SUB of a gated state update) that forms no GRU step, else None: `list` then does not
    answer a bare "0 cells" for what may be a GRU converted another way. A plain classifier
    (tanh or sigmoid activations alone) gets no sentence."""
    for sg in model.subgraphs:
        ops = {op.opcode for op in sg.operators}
        if {"TANH", "LOGISTIC", "MUL"} <= ops and ops & {"ADD", "SUB"}:
            return (f"subgraph {sg.index} has the TANH, LOGISTIC, MUL and ADD/SUB operators of a gated recurrent "
                    f"cell, but none of its TANH operators is the candidate of a GRU step gruinspect recognises "
                    f"(it recognises GRUs converted from Keras in float32, float16 or dynamic-range int8; an LSTM, "
                    f"a fully integer-quantized GRU or other activations are not)")
    return None


def _guarded(match, g: Graph, store, op):
    """``match(g, store, op)``, or None when a damaged graph (an operator without its inputs, a
    tensor without a shape) breaks the pattern's assumptions: then there is no GRU step here."""
    try:
        return match(g, store, op)
    except (IndexError, KeyError, ValueError, ZeroDivisionError):
        return None


def _folded_problem(g: Graph, f: _Step) -> str:
    """What is left of a GRU whose only step the converter folded with the zero initial state."""
    x_fc = f.terms[("candidate", "x")].fc
    kept = [f"input kernel {const_store_name(g, x_fc.inputs[1])}"]
    if len(x_fc.inputs) > 2 and const_store_name(g, x_fc.inputs[2]):
        kept.append(f"input bias {const_store_name(g, x_fc.inputs[2])}")
    folded = sorted({g.tensor(t.const).store_name for (gate, side), t in f.terms.items()
                     if side == "h" and t.const is not None and g.tensor(t.const).store_name})
    if folded:
        kept.append(f"the recurrent bias as per-gate constants {', '.join(folded)}")
    return (f"{f.scope} in subgraph {g.sg.index} is a GRU step whose initial state the converter folded to zero and "
            f"that no later step follows (an unrolled GRU of one time step): the file keeps its {'; '.join(kept)}, "
            f"but the recurrent kernel is not in the file at all, so it is not listed as a cell")


def _loop_scopes(model) -> dict[int, str]:
    """{body subgraph index: the op scope of the WHILE operator running it}."""
    from ..formats.tflite import option

    out = {}
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.opcode == "WHILE" and op.outputs:
                # WhileOptions: 0 cond_subgraph_index, 1 body_subgraph_index. The loop's outputs are
                # named `<scope>/while...`, or just `while`, when the inputs still carry `<scope>/...`.
                names = [sg.tensors[t].name.split(";")[0] for t in list(op.outputs) + list(op.inputs) if t >= 0]
                name = next((n for n in names if "/" in n), names[0] if names else "")
                out[option(op, 1, "i", -1)] = name.split("/while")[0] if "/while" in name else name.rsplit("/", 1)[0]
    return out


def _feeds(g: Graph, t: int, step: _Step) -> bool:
    return step.h is not None and (step.h == t or _cone_has(g, step.h, t))


def _cone_has(g: Graph, start: int, target: int, depth: int = 4) -> bool:
    op = g.producer.get(start)
    if op is None or depth == 0:
        return False
    return any(i == target or _cone_has(g, i, target, depth - 1) for i in op.inputs)


def _weights_key(s: _Step) -> tuple:
    return tuple(sorted((k, t.fc.inputs[1] if t.fc is not None else -1) for k, t in s.terms.items()))


def _cell(store, g: Graph, s: _Step, problems: list[str], names: dict[str, int]) -> GruCell | None:
    infos = store.infos()
    x_fc = s.terms[("candidate", "x")].fc
    W = const_store_name(g, x_fc.inputs[1])
    b = const_store_name(g, x_fc.inputs[2])
    if W is None:
        return None
    input_size = infos[W].shape[1]
    width = s.terms[("candidate", "x")].stop - s.terms[("candidate", "x")].start
    units = width
    tensors = {"input_weights": W}
    if b is not None:
        tensors["input_bias"] = b
    h_fc = next((t.fc for (gate, side), t in s.terms.items() if side == "h" and t.fc is not None), None)
    if h_fc is not None:
        tensors["recurrent_weights"] = const_store_name(g, h_fc.inputs[1])
        rb = const_store_name(g, h_fc.inputs[2]) if len(h_fc.inputs) > 2 else None
        if rb is not None:
            tensors["recurrent_bias"] = rb
    if s.candidate_fc is not None:
        tensors["candidate_weights"] = const_store_name(g, s.candidate_fc.inputs[1])
        cb = const_store_name(g, s.candidate_fc.inputs[2]) if len(s.candidate_fc.inputs) > 2 else None
        if cb is not None:
            tensors["candidate_bias"] = cb
    if any(v is None for v in tensors.values()):
        problems.append(f"{s.scope} in subgraph {s.sg} is a GRU step whose weights are not constants of the file")
        return None
    blocks: list[Block] = []
    bands: dict[str, list] = {}

    def add(gate, role, tensor, start, stop, matrix):
        info = infos[tensor]
        if matrix:
            index = ((start, stop), (0, info.shape[1]))
            blocks.append(Block(gate, role, (info.shape[1], stop - start), BlockSource(tensor, index, TRANSFORM)))
        else:
            blocks.append(Block(gate, role, (stop - start,), BlockSource(tensor, ((start, stop),))))

    for (gate, side), term in sorted(s.terms.items()):
        if term.fc is None:
            continue
        if term.stop - term.start != units:
            problems.append(f"{s.scope} in subgraph {s.sg} has gate bands of different widths")
            return None
        if side == "x":
            add(gate, "input_kernel", W, term.start, term.stop, True)
            if b is not None:
                add(gate, "bias", b, term.start, term.stop, False)
        else:
            add(gate, "recurrent_kernel", tensors["recurrent_weights"], term.start, term.stop, True)
            if "recurrent_bias" in tensors:
                add(gate, "recurrent_bias", tensors["recurrent_bias"], term.start, term.stop, False)
        bands.setdefault(side, []).append([gate, term.start, term.stop])
    if s.candidate_fc is not None:
        add("candidate", "recurrent_kernel", tensors["candidate_weights"], 0, units, True)
        if "candidate_bias" in tensors:
            add("candidate", "recurrent_bias", tensors["candidate_bias"], 0, units, False)
    have = {(bl.gate, bl.role) for bl in blocks}
    missing = [f"{gate} {role}" for gate in ("reset", "update", "candidate")
               for role in ("input_kernel", "recurrent_kernel")
               if (gate, role) not in have]
    if missing:
        problems.append(f"{s.scope} in subgraph {s.sg} looks like a GRU step but {', '.join(missing)} could not be "
                        f"traced to a weight band")
        return None
    covered = {bl.source.tensor for bl in blocks}
    unused = [t for t in tensors.values() if t not in covered]
    if unused:
        problems.append(f"{s.scope} in subgraph {s.sg}: weights {', '.join(unused)} are only partly used")
        return None
    dtypes = {infos[t].dtype for t in tensors.values()}
    if len(dtypes) != 1:
        problems.append(f"{s.scope} in subgraph {s.sg} mixes dtypes {sorted(dtypes)}")
        return None
    # tf-keras' cuDNN-compatible GRU function leaves its tensors unscoped (`while/Tanh`): say where it is
    name = s.scope if "/" in s.scope else f"subgraph{s.sg}/{s.scope or 'gru'}"
    names[name] = names.get(name, 0) + 1
    if names[name] > 1:
        name = f"{name}#{names[name]}"
    quantization = store.metadata.get("quantization", {})
    quantized = {t: quantization[t]["dtype"] for t in tensors.values() if t in quantization}
    notes = ["recovered by pattern from the TFLite operator graph (no GRU operator exists in TFLite)"]
    if quantized:
        kinds = ", ".join(sorted(set(quantized.values())))
        notes.append(f"{len(quantized)} of its weight tensors are stored {kinds} with per-row scales; the blocks are "
                     f"those weights dequantized to float32 (scale * (q - zero_point))")
    form = "WHILE-loop body" if s.sg != 0 else "unrolled steps of the main subgraph"
    config = {
        "form": form, "subgraph": s.sg, "quantized": quantized, "bands": bands,
        "step": {"path": store.path, "subgraph": s.sg, "x": s.x, "h": s.h, "h_new": s.h_new, "ops": s.ops},
    }
    return GruCell(
        name=name, layout=LAYOUT, input_size=input_size, units=units, reset_after=s.reset_after,
        dtype=dtypes.pop(), tensors=tensors, shapes={t: tuple(infos[t].shape) for t in tensors.values()},
        blocks=blocks, activation="tanh", recurrent_activation="sigmoid",
        config_source="operator graph (LOGISTIC / TANH)", config=config, notes=notes)


def equations(cell, t, xs, h0, acts):
    """The converter's operators as a transcription on the stored tensors (maths/tflite.py)."""
    from ..maths.tflite import gru

    return gru(t, cell.config["bands"], xs, h0, units=cell.units, reset_after=cell.reset_after)


SPEC = LayoutSpec(
    name=LAYOUT,
    title="GRU recovered by pattern from a TFLite operator graph (Keras GRU converted by TFLiteConverter)",
    find_cells=Ref(f"{__name__}:find_cells"),
    equations=Ref(f"{__name__}:equations"),
    equations_source="tensorflow/lite/kernels FULLY_CONNECTED, LOGISTIC, TANH, MUL, ADD, SUB as the converter "
                     "arranges them for keras src/layers/rnn/gru.py GRUCell.call",
    oracle=Oracle(Ref("gruinspect.oracle.tflite:recovered_gru_oracle"), needs=("tensorflow",)),
    conventions=(
        ConventionRow(True, "sigmoid", "tanh", "two", "TFLite model of a Keras GRU(reset_after=True)"),
        ConventionRow(False, "sigmoid", "tanh", "one", "TFLite model of a Keras GRU(reset_after=False)"),
    ),
    samples=("tflite_while", "tflite_unrolled", "tflite_int8", "tflite_float16", "tflite_tfkeras_bidi"),
    transforms={TRANSFORM: (Ref(f"{__name__}:transposed"), Ref(f"{__name__}:transposed_inverse"))},
)
