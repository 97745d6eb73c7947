"""ONNX samples, each written by a real exporter, in a child process of its own.

- ``onnx_torch_bigru``: ``torch.onnx.export`` (TorchScript exporter) of a 2-layer bidirectional
  ``nn.GRU(3, 4)``: two GRU nodes, initializers in raw_data, ``Constant`` nodes around them.
- ``onnx_keras_converted``: ``gruinspect convert --to onnx`` of the ``keras3_archive`` sample.
- ``onnx_tf2onnx_loop``: tf2onnx 1.16.1 ``from_function`` of a Keras 3 ``GRU(4)``: tf2onnx does
  not rewrite a Keras 3 GRU into a GRU node, it writes the TensorFlow while loop as an ONNX
  ``Loop`` whose body does the Gemm / Sigmoid / Tanh work. tf2onnx pins old protobuf, so it is
  installed apart (``pip install --no-deps --target DIR tf2onnx==1.16.1``) and found through
  ``TF2ONNX_PATH`` (default ``/work/tf2onnx-lib``).
- ``onnx_tf2onnx_loop_reset_before``: the same with ``GRU(4, reset_after=False)``: the body
  multiplies r into h before the candidate's matmul over a Slice of the recurrent kernel.
- ``onnx_helper_lbr0_external``: ``onnx.helper``: a bidirectional GRU with linear_before_reset=0,
  HardSigmoid gates (alpha 0.2 forward, 1/6 backward), W and R in an external data file, R
  reached through two ``Identity`` nodes, B in a ``Constant`` node with typed ``float_data``.
- ``onnx_helper_scan_clip``: ``onnx.helper``: a GRU node inside a ``Scan`` body (a subgraph)
  with ``clip`` = 0.5, ``layout`` = 1 and a ``sequence_lens`` input, float16 weights.

Manifest entries are computed with the onnx package from the written files, not by gruinspect.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = ("onnx_torch_bigru", "onnx_keras_converted", "onnx_tf2onnx_loop", "onnx_tf2onnx_loop_reset_before",
           "onnx_helper_lbr0_external", "onnx_helper_scan_clip")


def _env(name: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_USE_LEGACY_KERAS", None)  # the tf2onnx sample exports a Keras 3 model
    if name.startswith("onnx_tf2onnx_loop"):
        env["PYTHONPATH"] = os.environ.get("TF2ONNX_PATH", "/work/tf2onnx-lib")
    return env


def _generator(name):
    def generate(folder: Path) -> dict:
        entry_file = folder.parent / f".{name}.entry.json"
        subprocess.run([sys.executable, __file__, name, str(folder), str(entry_file)], check=True, env=_env(name))
        entry = json.loads(entry_file.read_text())
        entry_file.unlink()
        return entry
    return generate


GENERATORS = {name: _generator(name) for name in SAMPLES}


# ----------------------------------------------------------------------------- in the child


def _gru_cells(model_path: str, layout: str = "onnx-gru") -> list[dict]:
    """Manifest cells of every GRU node of every graph (onnx package reading)."""
    import onnx
    from onnx import helper

    model = onnx.load(model_path)
    out = []

    def walk(graph, path, outer):
        known = dict(outer)
        known.update({t.name: t for t in graph.initializer})
        for node in graph.node:
            if node.op_type == "Constant":
                known[node.output[0]] = node.attribute[0].t
        alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}

        def source(value):
            while value in alias:
                value = alias[value]
            return value

        for node in graph.node:
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g, f"{path}{node.name or node.output[0]}/{a.name}/", known)
            if node.op_type != "GRU":
                continue
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            direction = attrs.get("direction", b"forward").decode()
            dirs = ["forward", "backward"] if direction == "bidirectional" else [
                "backward" if direction == "reverse" else "forward"]
            W, R = known[source(node.input[1])], known[source(node.input[2])]
            tensors = {"W": source(node.input[1]), "R": source(node.input[2])}
            if len(node.input) > 3 and node.input[3]:
                tensors["B"] = source(node.input[3])
            for d in dirs:
                out.append({
                    "name": f"{path}{node.name or node.output[0]}/{d}", "layout": layout,
                    "input_size": int(W.dims[2]), "units": int(R.dims[2]),
                    "reset_after": bool(attrs.get("linear_before_reset", 0)),
                    "dtype": onnx.helper.tensor_dtype_to_np_dtype(W.data_type).name, "tensors": tensors})
    walk(model.graph, "", {})
    return out


def _entry(name, folder, file, description, cells, **extra) -> dict:
    entry = {"name": name, "path": f"{name}/{file}", "format": "onnx", "description": description, "cells": cells}
    entry.update(extra)
    return entry


def _torch_bigru(folder: Path) -> dict:
    import torch

    torch.manual_seed(12)
    gru = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    path = folder / "model.onnx"
    torch.onnx.export(gru, (torch.randn(5, 2, 3),), str(path), dynamo=False, input_names=["x"],
                      output_names=["y", "h_n"], opset_version=14)
    return _entry(folder.name, folder, "model.onnx",
                  f"torch {torch.__version__} torch.onnx.export(dynamo=False) of nn.GRU(3, 4, num_layers=2, "
                  "bidirectional=True), opset 14", _gru_cells(str(path)), torch=torch.__version__)


def _keras_converted(folder: Path) -> dict:
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        subprocess.run([sys.executable, "-m", "gruinspect", "convert", str(HERE / "keras3_archive" / "model.keras"),
                        "--to", "onnx", "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
        shutil.copy(out / "model.onnx", folder / "model.onnx")
    return _entry(folder.name, folder, "model.onnx", "gruinspect convert --to onnx of sample keras3_archive",
                  _gru_cells(str(folder / "model.onnx")))


def _tf2onnx_loop(folder: Path, reset_after: bool = True) -> dict:
    import keras
    import tensorflow as tf
    import tf2onnx

    keras.utils.set_random_seed(7)
    inp = keras.Input((5, 3), batch_size=2)
    out = keras.layers.GRU(4, return_sequences=True, name="gru", reset_after=reset_after)(inp)
    model = keras.Model(inp, out)
    spec = (tf.TensorSpec((2, 5, 3), tf.float32, name="x"),)

    @tf.function(input_signature=spec)
    def forward(x):
        return model(x)

    path = folder / "model.onnx"
    import io
    from contextlib import redirect_stderr, redirect_stdout

    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        tf2onnx.convert.from_function(forward, input_signature=spec, opset=14, output_path=str(path))
    import onnx

    loop = next(n for n in onnx.load(str(path)).graph.node if n.op_type == "Loop")
    kernel, recurrent, bias = (w.numpy() for w in model.get_layer("gru").weights)
    cells = [{"name": loop.name, "layout": "onnx-loop-gru", "input_size": 3, "units": 4, "reset_after": reset_after,
              "dtype": "float32"}]
    return _entry(folder.name, folder, "model.onnx",
                  f"tf2onnx {tf2onnx.__version__} from_function of a Keras {keras.__version__} "
                  f"GRU(4, reset_after={reset_after}) on [2, 5, 3] "
                  f"(TensorFlow {tf.__version__}): a Loop, no GRU node", cells, tf2onnx=tf2onnx.__version__,
                  keras_weights={"kernel": kernel.tolist(), "recurrent_kernel": recurrent.tolist(),
                                 "bias": bias.tolist()})


def _weights(seed: int, D: int, I: int, H: int, dtype, scale: float, bias_scale: float):
    """Seeded W [D, 3H, I], R [D, 3H, H], B [D, 6H] for an onnx.helper GRU node."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return (rng.normal(0, scale, (D, 3 * H, I)).astype(dtype), rng.normal(0, scale, (D, 3 * H, H)).astype(dtype),
            rng.normal(0, bias_scale, (D, 6 * H)).astype(dtype))


def _helper_lbr0_external(folder: Path) -> dict:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    I, H = 3, 4
    W, R, B = _weights(3, 2, I, H, np.float32, 0.6, 0.3)
    b_const = helper.make_tensor("B_value", TensorProto.FLOAT, B.shape, B.ravel().tolist())  # float_data
    nodes = [
        helper.make_node("Constant", [], ["B"], name="bias_constant", value=b_const),
        helper.make_node("Identity", ["R"], ["R_id1"], name="r_identity_1"),
        helper.make_node("Identity", ["R_id1"], ["R_id2"], name="r_identity_2"),
        helper.make_node("GRU", ["X", "W", "R_id2", "B", "", "initial_h"], ["Y", "Y_h"], name="gru_lbr0",
                         hidden_size=H, direction="bidirectional", linear_before_reset=0,
                         activations=["HardSigmoid", "Tanh", "HardSigmoid", "Tanh"],
                         activation_alpha=[0.2, 1.0 / 6.0], activation_beta=[0.5, 0.5]),
    ]
    graph = helper.make_graph(
        nodes, "lbr0", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", I]),
                        helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [2, "N", H])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", 2, "N", H]),
         helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [2, "N", H])],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="onnx.helper")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = folder / "model.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin",
              size_threshold=0)
    onnx.checker.check_model(str(path))
    return _entry(folder.name, folder, "model.onnx",
                  f"onnx {onnx.__version__} helper: bidirectional GRU, linear_before_reset=0, HardSigmoid(0.2, 0.5) "
                  "forward and HardSigmoid(1/6, 0.5) backward; W and R in weights.bin, R through two Identity nodes, "
                  "B a Constant", _gru_cells(str(path)))


def _helper_scan_clip(folder: Path) -> dict:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    I, H = 2, 3
    W, R, B = _weights(5, 1, I, H, np.float16, 0.8, 0.5)
    # Scan body: one scan input x_t [N, T, I] (batch-major, layout=1), GRU over it, no state.
    body = helper.make_graph(
        [helper.make_node("GRU", ["x_t", "W", "R", "B", "lens", ""], ["y_t", "yh_t"], name="gru_in_scan",
                          hidden_size=H, clip=0.5, layout=1, linear_before_reset=1)],
        "scan_body",
        [helper.make_tensor_value_info("x_t", TensorProto.FLOAT16, ["N", "T", I])],
        [helper.make_tensor_value_info("yh_t", TensorProto.FLOAT16, ["N", 1, H])],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"),
                     numpy_helper.from_array(B, "B"), numpy_helper.from_array(np.array([4, 3], np.int32), "lens")])
    scan = helper.make_node("Scan", ["X"], ["Yh"], name="scan", body=body, num_scan_inputs=1)
    graph = helper.make_graph(
        [scan], "scan_clip", [helper.make_tensor_value_info("X", TensorProto.FLOAT16, ["S", 2, 4, I])],
        [helper.make_tensor_value_info("Yh", TensorProto.FLOAT16, ["S", 2, 1, H])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="onnx.helper")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = folder / "model.onnx"
    onnx.save(model, str(path))
    return _entry(folder.name, folder, "model.onnx",
                  f"onnx {onnx.__version__} helper: a float16 GRU node (clip=0.5, layout=1, sequence_lens) in a "
                  "Scan body", _gru_cells(str(path)))


_WRITERS = {"onnx_torch_bigru": _torch_bigru, "onnx_keras_converted": _keras_converted,
            "onnx_tf2onnx_loop": _tf2onnx_loop,
            "onnx_tf2onnx_loop_reset_before": lambda folder: _tf2onnx_loop(folder, reset_after=False),
            "onnx_helper_lbr0_external": _helper_lbr0_external,
            "onnx_helper_scan_clip": _helper_scan_clip}


if __name__ == "__main__":
    name, folder, entry_file = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    entry_file.write_text(json.dumps(_WRITERS[name](folder)))
