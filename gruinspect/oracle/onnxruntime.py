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
                 reverse: bool = False) -> np.ndarray:
    """States [T, batch, H] in consumption order of a one-direction ONNX GRU node.

    ``W`` [1, 3H, I], ``R`` [1, 3H, H], ``B`` [1, 6H] or None, float32; ``activations`` is
    ``[(f, alpha, beta), (g, alpha, beta)]``; with ``reverse`` the node runs direction="reverse"
    over ``xs`` reversed, so it consumes ``xs`` in the given order too.
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
    node = helper.make_node("GRU", ["X", "W", "R", "B" if B is not None else "", "", "initial_h"], ["Y"], **attrs)
    T, N, I = xs.shape
    graph = helper.make_graph(
        [node], "gruinspect_oracle",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, N, I]),
         helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [1, N, hidden_size])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, 1, N, hidden_size])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    X = np.ascontiguousarray(xs[::-1] if reverse else xs, dtype=np.float32)
    (Y,) = session.run(["Y"], {"X": X, "initial_h": np.asarray(h0, np.float32)[None]})
    states = Y[:, 0]
    return states[::-1] if reverse else states


def gru_node_oracle(cell, t, xs, h0, acts) -> OracleRun:
    """verify's oracle for ``onnx-gru`` cells: this direction of the node, run by onnxruntime."""
    d = cell.config["direction_index"]
    compute = compute_dtype(cell.dtype, ("float32",))
    B = t["B"][d:d + 1].astype(np.float32) if "B" in t else None
    hs = run_gru_node(t["W"][d:d + 1].astype(np.float32), t["R"][d:d + 1].astype(np.float32), B,
                      xs.astype(np.float32), h0.astype(np.float32), hidden_size=cell.units,
                      linear_before_reset=cell.reset_after,
                      activations=[tuple(a) for a in cell.config["activation_functions"]],
                      clip=cell.config.get("clip", 0.0), reverse=cell.config.get("go_backwards", False))
    notes = upcast_note(cell, compute)
    if cell.config.get("sequence_lens"):
        notes.append("sequence_lens is not applied: every verify sequence runs its full length")
    if cell.config.get("layout"):
        notes.append("layout=1 (batch-major X and Y) changes no weight; the oracle node runs layout=0")
    return OracleRun(hs, compute, f"onnxruntime GRU node ({versions('onnxruntime')}, CPU)", notes)
