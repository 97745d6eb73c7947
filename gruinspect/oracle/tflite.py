"""The TFLite interpreter as the oracle for GRUs recovered from ``.tflite`` graphs.

A recovered cell records where its step is in the file (``cell.config["step"]``: subgraph, the
step's input tensor, previous-state tensor, new-state tensor and the operators between them).
The oracle cuts exactly those operators out of the file with TensorFlow's own FlatBuffer tools
(``tensorflow/lite/tools/flatbuffer_utils.py``), makes the input and previous state the graph
inputs and the new state its output, and runs that one-step model in ``tf.lite.Interpreter``
from the seeded initial state, step after step: so the file's own operators and weights, run by
TFLite's kernels, are compared with the blocks gruinspect cut out.

Dynamic-range int8 models run their weights through hybrid kernels that also quantize the
activations at run time. For the proof each int8 weight is routed through a DEQUANTIZE operator
(the interpreter dequantizes it) so the step runs in float32 and must match within float32
tolerance; the step as deployed (hybrid int8) is run as well and its distance from the float
result is reported as the quantization error.
"""
from __future__ import annotations

import numpy as np

from . import NotExpressible, OracleRun, versions

_DEQUANTIZE = 6  # schema.fbs BuiltinOperator DEQUANTIZE


def _step_model(path: str, step: dict, *, dequantize: bool) -> tuple[bytes, int, int, int]:
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    with open(path, "rb") as f:
        data = bytearray(f.read())
    model = flatbuffer_utils.read_model_from_bytearray(data)
    for buffer in model.buffers:
        if buffer.offset > 1:  # bytes kept after the FlatBuffer: the re-packed model holds them inline
            buffer.data = np.frombuffer(bytes(data[buffer.offset : buffer.offset + buffer.size]), np.uint8)
            buffer.offset = buffer.size = 0
    sg = model.subgraphs[step["subgraph"]]
    ops = [sg.operators[i] for i in step["ops"]]
    if dequantize:
        code = next((i for i, oc in enumerate(model.operatorCodes)
                     if max(oc.builtinCode, oc.deprecatedBuiltinCode) == _DEQUANTIZE), None)
        if code is None:
            oc = schema.OperatorCodeT()
            oc.builtinCode = oc.deprecatedBuiltinCode = _DEQUANTIZE
            oc.version = 4
            model.operatorCodes.append(oc)
            code = len(model.operatorCodes) - 1
        front = []
        for op in ops:
            if max(model.operatorCodes[op.opcodeIndex].builtinCode,
                   model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) != 9:  # FULLY_CONNECTED
                continue
            w = int(op.inputs[1])
            tensor = sg.tensors[w]
            if tensor.type != schema.TensorType.INT8:
                continue
            out = schema.TensorT()
            out.shape = list(tensor.shape)
            out.type = schema.TensorType.FLOAT32
            out.buffer = 0
            out.name = (tensor.name or b"w") + b"/dequantized"
            sg.tensors.append(out)
            deq = schema.OperatorT()
            deq.opcodeIndex = code
            deq.inputs = [w]
            deq.outputs = [len(sg.tensors) - 1]
            front.append(deq)
            inputs = list(op.inputs)
            inputs[1] = len(sg.tensors) - 1
            op.inputs = inputs
        ops = front + ops
    sg.operators = ops
    sg.inputs = [step["x"], step["h"]]
    sg.outputs = [step["h_new"]]
    model.subgraphs = [sg]
    model.signatureDefs = []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), step["x"], step["h"], step["h_new"]


def run_steps(path: str, step: dict, xs: np.ndarray, h0: np.ndarray, *, dequantize: bool) -> np.ndarray:
    """States [T, batch, H]: the file's step operators run by the TFLite interpreter from ``h0``."""
    import tensorflow as tf

    content, x_id, h_id, out_id = _step_model(path, step, dequantize=dequantize)
    # TFLite's builtin kernels without the XNNPACK delegate (which would also log to stderr)
    resolver = tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = tf.lite.Interpreter(model_content=content, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    by_index = {d["index"]: d for d in interpreter.get_input_details()}
    x_shape, h_shape = tuple(by_index[x_id]["shape"]), tuple(by_index[h_id]["shape"])
    if int(np.prod(x_shape)) != xs.shape[2] or int(np.prod(h_shape)) != h0.shape[1]:
        raise NotExpressible(f"the step's tensors have shapes {list(x_shape)} and {list(h_shape)}, "
                             f"not one row of the input and state")
    T, batch = xs.shape[:2]
    out = np.zeros((T, batch, h0.shape[1]), np.float32)
    for b in range(batch):
        h = h0[b].astype(np.float32).reshape(h_shape)
        for t in range(T):
            interpreter.set_tensor(x_id, xs[t, b].astype(np.float32).reshape(x_shape))
            interpreter.set_tensor(h_id, h)
            interpreter.invoke()
            h = interpreter.get_tensor(out_id).copy()
            out[t, b] = h.reshape(-1)
    return out


def recovered_gru_oracle(cell, tensors, xs, h0, acts) -> OracleRun:
    step = cell.config.get("step")
    if not step or step.get("h") is None:
        raise NotExpressible("the cell records no runnable step of its file")
    if cell.dtype not in ("float32", "float16"):
        raise NotExpressible(f"TFLite float kernels run float32, not {cell.dtype}")
    hs = run_steps(step["path"], step, xs, h0, dequantize=True)
    notes = []
    if cell.dtype == "float16":
        notes.append("float16 weights: the file's DEQUANTIZE operators widen them, so the step runs in float32")
    quantized = cell.config.get("quantized") or {}
    if quantized:
        deployed = run_steps(step["path"], step, xs, h0, dequantize=False)
        err = float(np.max(np.abs(deployed.astype(np.float64) - hs.astype(np.float64))))
        notes.append(f"quantization error: the step as deployed (hybrid int8 kernels, activations quantized at run "
                     f"time) differs from the dequantized float32 weights by up to {err:.3g}")
    where = f"subgraph {step['subgraph']}, {len(step['ops'])} operators"
    how = "int8 weights through DEQUANTIZE, " if quantized else ""
    return OracleRun(hs, "float32", f"tf.lite.Interpreter ({versions('tensorflow')}) running the file's own GRU step "
                                    f"({where}; {how}one step per invoke)", notes)
