"""onnxruntime's own GRU kernel as the oracle for ONNX cells.

:func:`run_gru_node` builds a one-node model (``onnx.helper``) holding one direction's W, R, B
with the cell's attributes and runs it on onnxruntime's CPU provider. onnxruntime's CPU GRU
has only a float32 kernel, so other dtypes run in float32 (and the report says so).
"""
from __future__ import annotations

import numpy as np

from . import OracleRun, compute_dtype, upcast_note, versions

OPSET = 14


def run_gru_node(W, R, B, xs, h0, *, hidden_size: int, linear_before_reset: bool, activations, clip: float = 0.0,
                 reverse: bool = False, lengths=None) -> np.ndarray:
    """States [T, batch, H] in consumption order of a one-direction ONNX GRU node.

    ``W`` [1, 3H, I], ``R`` [1, 3H, H], ``B`` [1, 6H] or None, float32; ``activations`` is
    ``[(f, alpha, beta), (g, alpha, beta)]``; with ``reverse`` the node runs direction="reverse"
    over each sequence reversed, so it consumes ``xs`` in the given order too. ``lengths`` [batch], when given,
    is fed as ``sequence_lens``: row ``b`` stops after ``lengths[b]`` steps and its later states
    are zero, as the ONNX GRU defines.
    """
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from ..layouts._onnx import TAKES

    names, alphas, betas = [], [], []
    for fn, a, b in activations:
        names.append(fn)
        takes = TAKES[fn][0]
        if "alpha" in takes:
            alphas.append(float(a))
        if "beta" in takes:
            betas.append(float(b))
    attrs = {"hidden_size": hidden_size, "direction": "reverse" if reverse else "forward",
             "linear_before_reset": int(linear_before_reset), "activations": names}
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    if clip:
        attrs["clip"] = float(clip)
    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R")]
    if B is not None:
        inits.append(numpy_helper.from_array(B, "B"))
    T, N, I = xs.shape
    lens = np.full(N, T, np.int32) if lengths is None else np.asarray(lengths, np.int32)
    # step t of row b in the node's own order is step order[t, b] of xs (for t < lens[b])
    t_idx = np.arange(T)[:, None]
    order = np.where(t_idx < lens[None, :], lens[None, :] - 1 - t_idx, t_idx) if reverse else np.repeat(t_idx, N, 1)
    valid = t_idx < lens[None, :]
    X = np.where(valid[..., None], np.take_along_axis(np.asarray(xs, np.float32), order[..., None], 0), 0)
    feeds = {"X": X, "initial_h": np.asarray(h0, np.float32)[None]}
    node_inputs = ["X", "W", "R", "B" if B is not None else "", "", "initial_h"]
    if lengths is not None:
        node_inputs[4] = "sequence_lens"
        feeds["sequence_lens"] = lens
    node = helper.make_node("GRU", node_inputs, ["Y"], **attrs)
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, N, I]),
                    helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [1, N, hidden_size])]
    if lengths is not None:
        graph_inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [N]))
    graph = helper.make_graph([node], "gruinspect_oracle", graph_inputs,
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, 1, N, hidden_size])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (Y,) = session.run(["Y"], {k: np.ascontiguousarray(v) for k, v in feeds.items()})
    Y = Y[:, 0]  # [T, N, H] in the node's own step order
    if not reverse:
        return Y
    # the node's step t of row b consumed xs step order[t, b]: put every state back at that step
    states = np.zeros_like(Y)
    np.put_along_axis(states, order[..., None], Y, 0)
    return np.where(valid[..., None], states, 0)


def gru_node_oracle(cell, t, xs, h0, acts) -> OracleRun:
    """verify's oracle for ``onnx-gru`` cells: this direction of the node, run by onnxruntime."""
    d = cell.config["direction_index"]
    compute = compute_dtype(cell.dtype, ("float32",))
    B = t["B"][d:d + 1].astype(np.float32) if "B" in t else None
    T, N = xs.shape[:2]
    # a node fed sequence_lens runs with lengths T, T-1, ... (at least 1) per batch row
    lengths = np.maximum(T - np.arange(N), 1) if cell.config.get("sequence_lens") else None
    hs = run_gru_node(t["W"][d:d + 1].astype(np.float32), t["R"][d:d + 1].astype(np.float32), B,
                      xs.astype(np.float32), h0.astype(np.float32), hidden_size=cell.units,
                      linear_before_reset=cell.reset_after,
                      activations=[tuple(a) for a in cell.config["activation_functions"]],
                      clip=cell.config.get("clip", 0.0), reverse=cell.config.get("go_backwards", False),
                      lengths=lengths)
    notes = upcast_note(cell, compute)
    valid = None
    if lengths is not None:
        valid = np.arange(T)[:, None] < lengths[None, :]
        notes.append(f"the node reads sequence_lens: the oracle ran batch rows of lengths {lengths.tolist()}, and "
                     f"the states past each row's length are compared as the zeros ONNX defines")
    if cell.config.get("layout"):
        notes.append("layout=1 (batch-major X and Y) changes no weight, and onnxruntime's CPU GRU cannot run it: "
                     "the oracle node runs layout=0")
    return OracleRun(hs, compute, f"onnxruntime GRU node ({versions('onnxruntime')}, CPU)", notes, valid)


def loop_oracle(cell, t, xs, h0, acts) -> OracleRun:
    """verify's oracle for ``onnx-loop-gru`` cells: the file's own Loop node, run by onnxruntime with
    the trip count, the initial state and the sequence it gathers from fed as graph inputs."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    from . import NotExpressible

    config = cell.config
    if config.get("graph") or config.get("x_value") is None or config.get("scan_output") is None:
        raise NotExpressible("the Loop is inside a body graph, or its sequence input or stacked states were not found")
    model = onnx.load(config["model_path"])
    node = next(n for n in model.graph.node if n.op_type == "Loop" and n.name == config["node"])
    loop = onnx.NodeProto()
    loop.CopyFrom(node)
    loop.input[0], loop.input[1], loop.input[config["state_input"]] = "gi_trip_count", "gi_cond", "gi_h0"
    for attr in loop.attribute:
        if attr.name == "body":  # shapes recorded at export (batch size) must not bind the run
            del attr.g.value_info[:]
            for value in list(attr.g.input)[2:] + list(attr.g.output)[1:]:
                value.type.tensor_type.ClearField("shape")
    output = loop.output[config["scan_output"]]
    T, N, I = xs.shape
    inputs = [helper.make_tensor_value_info("gi_trip_count", TensorProto.INT64, []),
              helper.make_tensor_value_info("gi_cond", TensorProto.BOOL, []),
              helper.make_tensor_value_info("gi_h0", TensorProto.FLOAT, [N, cell.units]),
              helper.make_tensor_value_info(config["x_value"], TensorProto.FLOAT, [T, N, I])]
    constants = [n for n in model.graph.node if n.op_type == "Constant"]
    graph = helper.make_graph(constants + [loop], "gruinspect_loop_oracle", inputs,
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
                              initializer=list(model.graph.initializer))
    small = helper.make_model(graph, opset_imports=list(model.opset_import))
    small.ir_version = model.ir_version
    onnxruntime.set_default_logger_severity(3)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(small.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (hs,) = session.run([output], {"gi_trip_count": np.array(T, np.int64), "gi_cond": np.array(True),
                                   "gi_h0": np.asarray(h0, np.float32), config["x_value"]: np.asarray(xs, np.float32)})
    if hs.shape[0] != T:
        raise NotExpressible(f"the exported Loop stops after {hs.shape[0]} steps (its body's own condition), "
                             f"not {T}")
    compute = compute_dtype(cell.dtype, ("float32",))
    return OracleRun(hs, compute, f"the file's own Loop node {config['node']} run by onnxruntime "
                                  f"({versions('onnxruntime')}, CPU)", upcast_note(cell, compute))
