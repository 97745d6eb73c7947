#!/usr/bin/env python
"""A TF1 checkpoint whose largest tensor is about 400 MB, written by TensorFlow's own Saver.

    python benchmarks/large_tf1.py write FOLDER --size full|small|tiny

One ``tf.compat.v1.nn.rnn_cell.GRUCell(UNITS)`` (tf_keras, ``TF_USE_LEGACY_KERAS=1``) on 64
input features, built with ``tf.compat.v1.nn.dynamic_rnn`` and saved with
``tf.compat.v1.train.Saver``: ``gates/kernel`` is [64 + UNITS, 2 * UNITS] float32, 400 MB at
UNITS 7040, and ``candidate/kernel`` [64 + UNITS, UNITS], 200 MB. ``stats`` and ``split`` must
stream the gates kernel, not hold it. Writes ``FOLDER/model.ckpt.*`` and ``FOLDER/info.json``
for run.py, in its own process (tf_keras and Keras 3 never share one).
"""
from __future__ import annotations

import json
import os
import warnings

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before TensorFlow: tf.compat.v1.nn.rnn_cell comes from tf_keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

UNITS = {"full": 7040, "small": 1760, "tiny": 16}
INPUTS = 64


def write(folder: str, size: str) -> dict:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    warnings.simplefilter("ignore")  # TF's deprecation notes for the TF1 APIs used on purpose
    os.makedirs(folder, exist_ok=True)
    units = UNITS[size]
    prefix = os.path.join(folder, "model.ckpt")
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(3)
        x = tf.compat.v1.placeholder(tf.float32, [None, None, INPUTS], name="x")
        tf.compat.v1.nn.dynamic_rnn(tf.compat.v1.nn.rnn_cell.GRUCell(units), x, dtype=tf.float32)
        saver = tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V2)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, prefix, write_meta_graph=False)
    shapes = dict(tf.train.list_variables(prefix))
    largest = max(shapes, key=lambda n: shapes[n][0] * (shapes[n][1] if len(shapes[n]) > 1 else 1))
    rows, cols = shapes[largest]
    info = {"size": size, "units": units, "inputs": INPUTS, "path": prefix, "largest_tensor": largest,
            "largest_tensor_bytes": rows * cols * 4, "bytes": os.path.getsize(prefix + ".data-00000-of-00001"),
            "tensors": {n: list(s) for n, s in shapes.items()}}
    with open(os.path.join(folder, "info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
    return info


if __name__ == "__main__":
    import large_inputs

    large_inputs.main(write, UNITS, __doc__)
