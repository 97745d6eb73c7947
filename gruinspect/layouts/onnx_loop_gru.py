"""Keras GRUs that an exporter lowered into an ONNX ``Loop``, recovered from the body's ops.

tf2onnx writes a Keras GRU whose while loop it does not rewrite (every Keras 3 GRU with tf2onnx
1.16) as a ``Loop`` carrying the Keras ``kernel`` [I, 3H], ``recurrent_kernel`` [H, 3H] and
``bias`` unchanged; its body follows Keras ``GRUCell.call`` (keras ``src/layers/rnn/gru.py``)::

    xp = Gemm(x_t, kernel, input bias);  x_z, x_r, x_h = Split(xp, 3)
    reset_after=True (bias [2, 3H]):
        hp = Gemm(h, recurrent_kernel, recurrent bias), then Slice per gate
        z = f(x_z + hp_z);  r = f(x_r + hp_r);  h~ = g(x_h + r * hp_h)
    reset_after=False (bias [3H]):
        hp = MatMul(h, Slice(recurrent_kernel)[:, :2H]), then Slice per gate
        z = f(x_z + hp_z);  r = f(x_r + hp_r);  h~ = g(Gemm(r * h, Slice(recurrent_kernel)[:, 2H:], x_h))
    h' = z * h + (1 - z) * h~

A cell is recovered only when the body has one of these structures: matmuls over stored
[I, 3H] / [H, 3H] weights, the recurrent one on a loop-carried state, the input projection split
in three, two gates each one activation of (x part + recurrent part), and a candidate that is
either act(x part + r * recurrent part) (reset after) or act(x part + (r * h) U) (reset before),
with the state update z * h + (1 - z) * h~. Which column block is which gate, the reset placement
and the activations are read from the ops (the gate in the blend with h is the update gate; the
gate multiplying the recurrent part, or h, is the reset gate). The recurrent columns paired with
each x part are taken to be the same block, which the Slice bounds (tensor data, not read by
``list``) do not show; ``verify`` proves it by running the file's own Loop in onnxruntime. A Loop
or Scan that does GRU-like work but does not fit is explained in one line.
"""
from __future__ import annotations

from ..cell import GruCell, stacked_blocks, vector_blocks
from ._common import common_dtype
from ._onnx import canonical
from .spec import Activations, ConventionRow, LayoutSpec, Oracle, Ref

LAYOUT = "onnx-loop-gru"
_ACTIVATION_OPS = {"Sigmoid", "HardSigmoid", "Tanh", "Relu", "Softsign", "Softplus", "Elu"}


class _NoFit(Exception):
    pass


def find_cells(store, claimed: set[str], problems: list[str]) -> list[GruCell]:
    if store.format != "onnx" or getattr(store, "graph", None) is None:
        return []
    cells = []
    producer = store.metadata.get("producer_name") or "its exporter"
    for graph in store.graph.walk():
        for node in graph.nodes:
            body = node.graphs.get("body")
            if node.op_type not in ("Loop", "Scan") or body is None:
                continue
            ops = {n.op_type for n in body.nodes}
            if not (ops & {"Sigmoid", "HardSigmoid"} and ops & {"MatMul", "Gemm"}):
                continue
            where = f"{node.op_type} node {graph.path}{node.label}"
            try:
                if node.op_type != "Loop":
                    raise _NoFit("only Loop bodies are recovered")
                cell = _recover(store, graph, node, body)
                if not claimed & set(cell.tensors.values()):
                    cells.append(cell)
            except _NoFit as exc:
                problems.append(f"{where} is a recurrence lowered by {producer}: there is no GRU node to read, "
                                f"and it was not recovered ({exc})")
    return cells


def _recover(store, graph, node, body) -> GruCell:
    infos = store.infos()
    carried = len(node.inputs) - 2
    if carried < 1 or len(body.inputs) != carried + 2:
        raise _NoFit("its body inputs do not match the Loop's")
    invariant = {body.inputs[2 + k]: node.inputs[2 + k] for k in range(carried)
                 if 1 + k < len(body.outputs) and body.outputs[1 + k] == body.inputs[2 + k]}
    state_inputs = {body.inputs[2 + k]: k for k in range(carried) if body.inputs[2 + k] not in invariant}
    producers = {o: n for n in body.nodes for o in n.outputs}
    consumers: dict[str, list] = {}
    for n in body.nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)

    def stored(value):
        if value in invariant:
            return graph.resolve(invariant[value])
        return body.resolve(value)

    def through(value):
        """Follow Identity nodes back to the value they copy."""
        while value in producers and producers[value].op_type == "Identity":
            value = producers[value].inputs[0]
        return value

    def weight_of(value):
        """The stored 2-D weight a matmul operand is, whole or through a Slice of its columns."""
        found = stored(value)
        p = producers.get(value)
        if found is None and p is not None and p.op_type == "Slice":
            found = stored(p.inputs[0])
        return found if found is not None and len(infos[found].shape) == 2 else None

    projections, candidate_matmuls = {}, []
    for n in body.nodes:
        if n.op_type not in ("Gemm", "MatMul") or len(n.inputs) < 2:
            continue
        weight = weight_of(n.inputs[1])
        if weight is None:
            continue
        if n.op_type == "Gemm" and (n.attributes.get("transA", 0) or n.attributes.get("transB", 0)):
            raise _NoFit("its Gemm transposes an operand")
        a = through(n.inputs[0])
        if a in state_inputs:
            projections["h"] = (n, weight, a)
        elif producers.get(a) is not None and producers[a].op_type == "Mul" and any(
                through(i) in state_inputs for i in producers[a].inputs):
            candidate_matmuls.append(n)  # (r * h) @ U_h: the reset applied before the matmul
        else:
            projections["x"] = (n, weight, a)
    if set(projections) != {"x", "h"}:
        raise _NoFit("its body has no input and recurrent matmul over stored weights")
    (xn, kernel, x_t), (hn, recurrent, state) = projections["x"], projections["h"]
    if any(weight_of(n.inputs[1]) != recurrent for n in candidate_matmuls) or len(candidate_matmuls) > 1:
        raise _NoFit("its candidate's recurrent matmul is not over the recurrent kernel")
    I, threeH = infos[kernel].shape
    H = infos[recurrent].shape[0]
    if infos[recurrent].shape[1] != 3 * H or threeH != 3 * H:
        raise _NoFit(f"its weights {list(infos[kernel].shape)} and {list(infos[recurrent].shape)} are not "
                     "[input_size, 3 * units] and [units, 3 * units]")

    def from_h(value, depth=0):
        value = through(value)
        if value == hn.outputs[0]:
            return True
        p = producers.get(value)
        return bool(p and depth < 4 and p.op_type in ("Slice", "Split", "Squeeze") and from_h(p.inputs[0], depth + 1))

    split = [n for n in consumers.get(xn.outputs[0], []) if n.op_type == "Split" and len(n.outputs) == 3]
    if not split:
        raise _NoFit("its input projection is not split into three gates")
    parts = split[0].outputs
    roles, acts, reset_gate, reset_after = {}, {}, None, True
    for k, part in enumerate(parts):
        uses = consumers.get(part, [])
        before = [n for n in uses if n in candidate_matmuls and n.op_type == "Gemm" and n.inputs[2:3] == [part]]
        if before:  # act(Gemm(r * h, U_h, x_h)): reset-before candidate with the x part as the Gemm's C
            pre, other = before[0], None
        else:
            adds = [n for n in uses if n.op_type == "Add"]
            if len(adds) != 1:
                raise _NoFit("a gate's input part is not added to a recurrent part")
            pre, other = adds[0], next(i for i in adds[0].inputs if i != part)
        act = [n for n in consumers.get(pre.outputs[0], []) if n.op_type in _ACTIVATION_OPS]
        if len(act) != 1:
            raise _NoFit("a gate's pre-activation feeds no single activation")
        acts[k] = act[0]
        mul = producers.get(through(other)) if other is not None else None
        from_candidate = other is not None and producers.get(through(other)) in candidate_matmuls
        if before or from_candidate:
            roles[k], reset_after = "candidate", False
            rh = producers[through((before[0] if before else producers[through(other)]).inputs[0])]
            reset_gate = next((through(i) for i in rh.inputs if through(i) not in state_inputs), None)
        elif from_h(other):
            roles[k] = "gate"
        elif mul is not None and mul.op_type == "Mul" and any(from_h(i) for i in mul.inputs):
            roles[k] = "candidate"
            reset_gate = next((through(i) for i in mul.inputs if not from_h(i)), None)
        else:
            raise _NoFit("its candidate is neither act(x part + r * recurrent part) nor act(x part + (r * h) U_h)")
    gates = {}
    for k, role in roles.items():
        if role == "candidate":
            gates[k] = "candidate"
        elif acts[k].outputs[0] == reset_gate:
            gates[k] = "reset"
        else:
            gates[k] = "update"
    if sorted(gates.values()) != ["candidate", "reset", "update"]:
        raise _NoFit("its three column blocks are not one update gate, one reset gate and a candidate")
    z = acts[next(k for k, g in gates.items() if g == "update")].outputs[0]
    if not any(n.op_type == "Mul" and set(map(through, n.inputs)) == {z, state} for n in body.nodes):
        raise _NoFit("its state update is not z * h + (1 - z) * candidate")
    order = tuple(gates[k] for k in range(3))
    bias_rows = _biases(xn, hn, stored, producers, infos)
    tensors = {"kernel": kernel, "recurrent_kernel": recurrent}
    bias = bias_rows.get("bias")
    if bias is not None:
        tensors["bias"] = bias[0]
    dtype, problem = common_dtype(node.label, {r: infos[n] for r, n in tensors.items()})
    if problem:
        raise _NoFit(problem)
    blocks = stacked_blocks(kernel, gates=order, units=H, rows=[("input_kernel", 0, I)])
    blocks += stacked_blocks(recurrent, gates=order, units=H, rows=[("recurrent_kernel", 0, H)])
    if bias is not None:
        name, rows = bias
        blocks += vector_blocks(name, gates=order, units=H, role="bias", row=rows[0])
        if rows[1] is not None:
            blocks += vector_blocks(name, gates=order, units=H, role="recurrent_bias", row=rows[1])
    rec_act = _canonical(acts[next(k for k, g in gates.items() if g == "update")])
    cand_act = _canonical(acts[next(k for k, g in gates.items() if g == "candidate")])
    state_index = state_inputs[state]
    scan_outputs = body.outputs[1 + carried:]
    new_state = body.outputs[1 + state_index]
    scan_index = next((j for j, o in enumerate(scan_outputs) if through(o) == through(new_state)), None)
    x_source = producers.get(x_t)
    x_value = x_source.inputs[0] if x_source is not None and x_source.op_type == "Gather" else None
    config = {"node": node.name, "graph": graph.path.rstrip("/"), "recovered_by": "pattern", "model_path": store.path,
              "gate_order": list(order), "state_input": 2 + state_index, "x_value": x_value,
              "scan_output": None if scan_index is None else carried + scan_index,
              "activations": [acts[k].op_type for k in range(3)], "use_bias": bias is not None}
    return GruCell(
        name=f"{graph.path}{node.label}", layout=LAYOUT, input_size=I, units=H, reset_after=reset_after, dtype=dtype,
        tensors=tensors, shapes={n: tuple(infos[n].shape) for n in tensors.values()}, blocks=blocks,
        activation=cand_act, recurrent_activation=rec_act, config_source="Loop body ops", config=config,
        notes=[f"recovered from the ops of a Loop body (no GRU node): gate order {' | '.join(order)}, reset "
               f"{'after' if reset_after else 'before'} the recurrent matmul"])


def _canonical(node) -> str:
    a = node.attributes.get("alpha")
    b = node.attributes.get("beta")
    if not all(v is None or isinstance(v, (int, float)) for v in (a, b)):
        raise _NoFit(f"its {node.op_type} has malformed parameters")
    if node.op_type == "HardSigmoid":
        a, b = (0.2 if a is None else a), (0.5 if b is None else b)
    name = canonical(node.op_type, a, b)
    if name is None:
        raise _NoFit(f"its {node.op_type} activation has no canonical equal")
    return name


def _biases(xn, hn, stored, producers, infos) -> dict:
    """{"bias": (tensor, (input row, recurrent row))} from the Gemms' C operands: a [2, 3H] bias cut by
    Split (axis 0) and Squeeze, or one [3H] bias on the input side."""
    rows = []
    names = set()
    for n in (xn, hn):
        if n.op_type != "Gemm" or len(n.inputs) < 3 or not n.inputs[2]:
            rows.append(None)
            continue
        value = n.inputs[2]
        direct = stored(value)
        if direct is not None and len(infos[direct].shape) == 1:
            names.add(direct)
            rows.append(None)
            continue
        p = producers.get(value)
        while p is not None and p.op_type in ("Squeeze", "Identity"):
            value = p.inputs[0]
            p = producers.get(value)
        if p is None or p.op_type != "Split" or p.attributes.get("axis", 0) != 0:
            raise _NoFit("its bias does not come from a stored tensor")
        source = stored(p.inputs[0])
        if source is None or len(infos[source].shape) != 2 or infos[source].shape[0] != len(p.outputs):
            raise _NoFit("its bias does not come from a stored [2, 3 * units] tensor")
        names.add(source)
        rows.append(p.outputs.index(value))
    if not names:
        return {}
    if len(names) != 1:
        raise _NoFit("its biases come from more than one tensor")
    (name,) = names
    if len(infos[name].shape) == 1:
        if rows[1] is not None or rows[0] is not None:
            raise _NoFit("its biases are mixed")
        return {"bias": (name, (None, None))}
    if rows[0] is None:
        raise _NoFit("its recurrent bias has no input counterpart")
    return {"bias": (name, (rows[0], rows[1]))}


def equations(cell, t, xs, h0, acts):
    """Keras GRUCell equations on the Loop's kernel, recurrent kernel and bias, in the
    gate order read from the body (maths/keras.py for the Keras order z | r | h)."""
    import numpy as np

    from ..maths.keras import gru

    order = cell.config["gate_order"]
    H = cell.units
    perm = np.concatenate([np.arange(order.index(g) * H, (order.index(g) + 1) * H)
                           for g in ("update", "reset", "candidate")])
    bias = t.get("bias")
    return gru(t["kernel"][:, perm], t["recurrent_kernel"][:, perm], None if bias is None else bias[..., perm], xs, h0,
               reset_after=cell.reset_after, activation_name=acts.activation, recurrent_activation_name=acts.recurrent_activation)


SPEC = LayoutSpec(
    name=LAYOUT,
    title="Keras GRU lowered into an ONNX Loop (recovered by pattern)",
    find_cells=Ref(f"{__name__}:find_cells"),
    equations=Ref(f"{__name__}:equations"),
    equations_source="keras src/layers/rnn/gru.py GRUCell.call, as tf2onnx lowers it into a Loop",
    oracle=Oracle(Ref("gruinspect.oracle.onnxruntime:loop_oracle"), needs=("onnx", "onnxruntime"),
                  install="pip install 'gruinspect[onnx]'"),
    default_activations=Activations("tanh", "sigmoid"),
    conventions=(
        ConventionRow(True, "sigmoid", "tanh", "two", "a Keras 3 GRU lowered into an ONNX Loop by tf2onnx"),
        ConventionRow(False, "sigmoid", "tanh", "one",
                      "a Keras 3 GRU(reset_after=False) lowered into an ONNX Loop by tf2onnx"),
    ),
    samples=("onnx_tf2onnx_loop", "onnx_tf2onnx_loop_reset_before"),
)
