#!/usr/bin/env python
"""Write the benchmark inputs with TensorFlow itself (run by ``run.py`` in its own process).

    python benchmarks/generate.py --work DIR --size full|small|tiny

Writes into DIR:

- ``tf1/model.ckpt.{index,data-00000-of-00001}`` and ``tf1/checkpoint``: a TF1 checkpoint V2 of
  ``MultiRNNCell([GRUCell(units)] * 4)`` built with ``tf.compat.v1.nn.dynamic_rnn`` on an input of
  ``units`` features, plus 200 small dense variables (100 ``tf.compat.v1.layers.dense`` layers,
  kernel and bias), saved with ``tf.compat.v1.train.Saver``.
- ``keras/model.h5``: a tf_keras ``Sequential`` of 4 stacked ``GRU(units)`` layers (reset_after,
  the Keras 2 default) on the same input width, plus a small ``Dense`` head, saved with
  ``model.save("model.h5")``.
- ``info.json``: what was written (sizes, tensor names, the GRU cells) for ``run.py``.

Sizes: ``full`` is 2048 units (about 400 MB per file, the largest tensor 64 MiB), ``small`` 512
units (about 25 MB), ``tiny`` 16 units (for the CI smoke test). Values are seeded random numbers;
their exact values do not matter to the timings.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

# Must be set before TensorFlow is imported: tf.compat.v1.nn.rnn_cell and model.save(".h5")
# both come from tf_keras.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SIZES = {"full": 2048, "small": 512, "tiny": 16}
LAYERS = 4
DENSE_LAYERS = 100  # x (kernel, bias) = 200 small dense variables
DENSE_WIDTH = 32


def _tf():
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def write_tf1(folder: str, units: int, seed: int = 1) -> dict:
    tf = _tf()
    os.makedirs(folder, exist_ok=True)
    prefix = os.path.join(folder, "model.ckpt")
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        tf.keras.utils.set_random_seed(seed)
        x = tf.compat.v1.placeholder(tf.float32, [None, None, units], name="x")
        cells = [tf.compat.v1.nn.rnn_cell.GRUCell(units) for _ in range(LAYERS)]
        stacked = tf.compat.v1.nn.rnn_cell.MultiRNNCell(cells)
        tf.compat.v1.nn.dynamic_rnn(stacked, x, dtype=tf.float32)
        h = tf.compat.v1.placeholder(tf.float32, [None, DENSE_WIDTH], name="h")
        for i in range(DENSE_LAYERS):
            h = tf.compat.v1.layers.dense(h, DENSE_WIDTH, name=f"head/dense_{i}")
        saver = tf.compat.v1.train.Saver(save_relative_paths=True, write_version=tf.compat.v1.train.SaverDef.V2)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, prefix, write_meta_graph=False)
    names = [name for name, _ in tf.train.list_variables(prefix)]
    gru = [n for n in names if "/gru_cell/" in n]
    cell_names = sorted({n.rsplit("/", 2)[0] for n in gru})
    return {
        "prefix": prefix,
        "data_file": prefix + ".data-00000-of-00001",
        "bytes": sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)),
        "tensors": len(names),
        "gru_tensors": gru,
        "cells": [{"name": c, "layout": "tf-gru-cell", "input_size": units, "units": units} for c in cell_names],
        "largest_tensor_bytes": 4 * (2 * units) * (2 * units),
    }


def write_keras_h5(folder: str, units: int, seed: int = 1) -> dict:
    _tf()
    import tf_keras as keras

    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "model.h5")
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((None, units))]
    for i in range(LAYERS):
        # glorot for the recurrent kernel too: the default orthogonal initializer runs a QR of a
        # [3*units, units] matrix per layer, which is slow and irrelevant to the timings.
        layers.append(keras.layers.GRU(units, return_sequences=i < LAYERS - 1, name=f"gru_{i}",
                                       recurrent_initializer="glorot_uniform"))
    layers.append(keras.layers.Dense(DENSE_WIDTH, name="head"))
    model = keras.Sequential(layers)
    model.save(path)
    del model
    keras.backend.clear_session()
    import h5py

    with h5py.File(path, "r") as f:
        weights = []
        f["model_weights"].visititems(lambda name, obj: weights.append(name) if isinstance(obj, h5py.Dataset) else None)
    return {
        "path": path,
        "bytes": os.path.getsize(path),
        "tensors": len(weights),
        "gru_weights": sorted(w for w in weights if "/gru_" in "/" + w),
        "cells": [{"name": f"gru_{i}", "layout": "keras-gru", "input_size": units, "units": units}
                  for i in range(LAYERS)],
        "largest_tensor_bytes": 4 * units * 3 * units,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="Folder to write into (created).")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--only", choices=["tf1", "keras"], action="append",
                        help="Write only these inputs (repeatable; default both).")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # TF's deprecation notes for the TF1 APIs used on purpose
    units = SIZES[args.size]
    only = args.only or ["tf1", "keras"]
    info = {"size": args.size, "units": units, "layers": LAYERS}
    t0 = time.perf_counter()
    if "tf1" in only:
        info["tf1"] = write_tf1(os.path.join(args.work, "tf1"), units)
    if "keras" in only:
        info["keras_h5"] = write_keras_h5(os.path.join(args.work, "keras"), units)
    tf = _tf()
    import numpy as np

    info["versions"] = {"tensorflow": tf.__version__, "numpy": np.__version__}
    try:
        import tf_keras

        info["versions"]["tf_keras"] = tf_keras.__version__
    except ImportError:
        pass
    info["seconds"] = round(time.perf_counter() - t0, 1)
    with open(os.path.join(args.work, "info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
