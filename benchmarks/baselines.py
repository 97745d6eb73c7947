#!/usr/bin/env python
"""What a user would write with TensorFlow's own tools: the reference side of each benchmark.

    python benchmarks/baselines.py tf-list PREFIX
    python benchmarks/baselines.py tf-stats PREFIX INPUT_SIZE UNITS
    python benchmarks/baselines.py keras-list MODEL.h5
    python benchmarks/baselines.py keras-stats MODEL.h5
    python benchmarks/baselines.py h5py-list MODEL.h5|MODEL.keras
    python benchmarks/baselines.py h5py-stats MODEL.h5|MODEL.keras
    python benchmarks/baselines.py sha256 FILE
    python benchmarks/baselines.py tf-list-many LISTFILE   (one prefix a line, one process)

Each prints its result to stdout (``run.py`` sends it to /dev/null) so that nothing is skipped.
The statistics are the ones ``gruinspect stats`` reports (mean, std, min, max, L2 norm, zero
fraction, NaN and Inf counts) for every gate block, accumulated in float64 like gruinspect does;
the blocks are cut with plain numpy slicing, by a script that knows the layout in advance.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def block_stats(name: str, values) -> str:
    import numpy as np

    n = values.size
    return (f"{name} {list(values.shape)} mean={values.mean(dtype=np.float64):.6g} "
            f"std={values.std(dtype=np.float64):.6g} min={values.min():.6g} max={values.max():.6g} "
            f"l2={np.linalg.norm(values):.6g} zeros={np.count_nonzero(values == 0) / n:.3f} "
            f"nan={int(np.isnan(values).sum())} inf={int(np.isinf(values).sum())}")


def tf_list(prefix: str) -> None:
    import tensorflow as tf

    for name, shape in tf.train.list_variables(prefix):
        print(name, shape)


def tf_list_many(listfile: str) -> None:
    """tf.train.list_variables on every prefix of LISTFILE, TensorFlow imported once."""
    import tensorflow as tf

    with open(listfile, encoding="utf-8") as f:
        for prefix in f.read().split():
            for name, shape in tf.train.list_variables(prefix):
                print(prefix, name, shape)


def tf_stats(prefix: str, input_size: str, units: str) -> None:
    """tf.train.load_checkpoint, then numpy statistics of each block of every TF1 GRUCell tensor."""
    import tensorflow as tf

    inputs, units = int(input_size), int(units)
    reader = tf.train.load_checkpoint(prefix)
    names = sorted(n for n in reader.get_variable_to_shape_map() if "/gru_cell/" in n)
    for name in names:
        value = reader.get_tensor(name)
        gates = 2 if "/gates/" in name else 1
        for g in range(gates):
            cols = slice(g * units, (g + 1) * units)
            if value.ndim == 2:  # [input_size + units, gates * units]: input rows above state rows
                print(block_stats(f"{name}[{g}] input", value[:inputs, cols]))
                print(block_stats(f"{name}[{g}] recurrent", value[inputs:, cols]))
            else:
                print(block_stats(f"{name}[{g}]", value[cols]))
        del value


def _keras():
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras

    return tf_keras


def keras_list(path: str) -> None:
    keras = _keras()
    model = keras.models.load_model(path, compile=False)
    for w in model.weights:
        print(w.name, w.shape, w.dtype.name)


def keras_stats(path: str) -> None:
    """load_model, then numpy statistics of each gate block of every GRU layer."""
    keras = _keras()
    model = keras.models.load_model(path, compile=False)
    for layer in model.layers:
        if type(layer).__name__ != "GRU":
            continue
        kernel, recurrent, bias = layer.get_weights()
        units = recurrent.shape[0]
        for g, gate in enumerate(("update", "reset", "candidate")):
            cols = slice(g * units, (g + 1) * units)
            print(block_stats(f"{layer.name} {gate} kernel", kernel[:, cols]))
            print(block_stats(f"{layer.name} {gate} recurrent_kernel", recurrent[:, cols]))
            for row in range(bias.shape[0] if bias.ndim == 2 else 1):
                print(block_stats(f"{layer.name} {gate} bias[{row}]", (bias[row] if bias.ndim == 2 else bias)[cols]))


def _h5_source(path: str):
    """The HDF5 file itself, or a Keras 3 archive's weights member (read in place by h5py)."""
    import zipfile

    if zipfile.is_zipfile(path):
        import json

        archive = zipfile.ZipFile(path)
        print(len(json.loads(archive.read("config.json"))))  # what the model is, as gruinspect reads it
        return archive.open("model.weights.h5")
    return path


def h5py_list(path: str) -> None:
    """Every dataset's name, shape and dtype (a .keras archive: its config and weights member)."""
    import h5py

    def show(name, obj):
        if isinstance(obj, h5py.Dataset):
            print(name, obj.shape, obj.dtype)

    with h5py.File(_h5_source(path), "r") as f:
        f.visititems(show)


def h5py_stats(path: str) -> None:
    """Every GRU dataset read whole with h5py, then numpy statistics of each gate block (Keras
    orders the columns update | reset | candidate; a [2, 3 * units] bias one row at a time)."""
    import h5py

    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset) or "gru" not in name.lower() or not obj.shape:
            return
        value = obj[()]
        units = value.shape[-1] // 3
        rows = [value] if value.ndim != 2 or value.shape[0] != 2 or value.shape[1] != 3 * units else list(value)
        for r, part in enumerate(rows):
            for g, gate in enumerate(("update", "reset", "candidate")):
                print(block_stats(f"{name}[{r}] {gate}", part[..., g * units:(g + 1) * units]))
        del value

    with h5py.File(_h5_source(path), "r") as f:
        f.visititems(visit)


def sha256(path: str) -> None:
    """hashlib's SHA-256 of a file: the hashing alone that split's manifest needs for every byte."""
    import hashlib

    digest = hashlib.sha256()
    buffer = bytearray(8 << 20)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
    print(digest.hexdigest(), path)


COMMANDS = {"tf-list": tf_list, "tf-list-many": tf_list_many, "tf-stats": tf_stats, "keras-list": keras_list,
            "keras-stats": keras_stats, "h5py-list": h5py_list, "h5py-stats": h5py_stats, "sha256": sha256}


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
