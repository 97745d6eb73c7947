#!/usr/bin/env python
"""The ONNX benchmark input and its onnx-package baseline (run by ``run.py`` in their own processes).

    python benchmarks/onnx_inputs.py write DIR --size full|small|tiny
    python benchmarks/onnx_inputs.py onnx-load MODEL.onnx

``write`` builds ``DIR/model.onnx`` with ``onnx.helper``: 4 stacked forward GRU nodes of
``units`` hidden units on an input of ``units`` features (W and R float32 initializers in
raw_data, 100 MB per layer at 2048 units, so about 400 MB in all), and ``DIR/info.json``.
``onnx-load`` is what a user would write with the onnx package to see the same names and shapes:
``onnx.load`` (which parses every initializer's bytes) and a walk over the initializers.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

SIZES = {"full": 2048, "small": 512, "tiny": 16}
LAYERS = 4


def write(folder: str, size: str) -> dict:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    units = SIZES[size]
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    x = "X"
    for k in range(LAYERS):
        for name, cols in ((f"W_l{k}", units), (f"R_l{k}", units)):
            values = rng.standard_normal((1, 3 * units, cols), dtype=np.float32) * 0.02
            inits.append(numpy_helper.from_array(values, name))
        inits.append(numpy_helper.from_array(np.zeros((1, 6 * units), np.float32), f"B_l{k}"))
        nodes.append(helper.make_node("GRU", [x, f"W_l{k}", f"R_l{k}", f"B_l{k}"], [f"Y_l{k}"], name=f"gru_l{k}",
                                      hidden_size=units, linear_before_reset=1))
        nodes.append(helper.make_node("Squeeze", [f"Y_l{k}", "axis1"], [f"X_l{k + 1}"], name=f"squeeze_l{k}"))
        x = f"X_l{k + 1}"
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
    graph = helper.make_graph(nodes, "bench", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", units])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="gruinspect-bench")
    model.ir_version = 8
    path = os.path.join(folder, "model.onnx")
    onnx.save(model, path)
    info = {"size": size, "path": path, "bytes": os.path.getsize(path), "units": units, "layers": LAYERS,
            "largest_tensor_bytes": 3 * units * units * 4}
    with open(os.path.join(folder, "info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f)
    return info


def onnx_load(path: str) -> None:
    import onnx

    model = onnx.load(path)
    for t in model.graph.initializer:
        print(t.name, list(t.dims), t.data_type)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("folder")
    w.add_argument("--size", choices=sorted(SIZES), default="full")
    load = sub.add_parser("onnx-load")
    load.add_argument("path")
    args = parser.parse_args(argv)
    if args.command == "write":
        write(args.folder, args.size)
    else:
        onnx_load(args.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
