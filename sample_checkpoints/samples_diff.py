"""Samples for `gruinspect diff`: the TF1 GRUCell of ``tf1_gru_single`` ported to Keras 3, twice.

* ``diff_port_keras`` — the right port: ``gruinspect convert --to keras`` of the TF1 checkpoint
  (proven by Keras 3 itself), loaded into ``keras.layers.GRU(4, reset_after=False)`` with
  ``set_weights`` and saved by Keras as ``model.keras``.
* ``diff_port_keras_wrong`` — the port people write by hand: TF1's fused columns concatenated as
  they are (``kernel = [gates/kernel | candidate/kernel]`` for the x rows, the same for the h
  rows and the biases), so TF1's reset|update|candidate columns land in Keras'
  update|reset|candidate slots. Keras loads it without complaint.

Both are written by Keras 3 in a child process (Keras 3 must not share a process with tf-keras);
the TF1 tensors are read with ``tf.train.load_checkpoint``.

    python sample_checkpoints/make_samples.py --only diff_port_keras diff_port_keras_wrong
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "tf1_gru_single" / "model.ckpt"
SCOPE = "rnn/gru_cell/"
INPUT, UNITS = 3, 4

SAMPLES = {
    "diff_port_keras": "Keras 3 .keras archive: GRU 'gru' (3->4, reset_after=False) holding the TF1 GRUCell of "
                       "tf1_gru_single, ported right (gruinspect convert --to keras, then set_weights in Keras 3)",
    "diff_port_keras_wrong": "Keras 3 .keras archive: GRU 'gru' (3->4, reset_after=False) holding the TF1 GRUCell "
                             "of tf1_gru_single ported by hand the common wrong way: TF1's r|u|c columns "
                             "concatenated into Keras' z|r|h slots (update and reset swapped)",
}


def _child_env() -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_USE_LEGACY_KERAS", None)
    return env


def _generator(name: str):
    def generate(folder: Path) -> dict:
        entry_file = Path(folder).parent / f".{name}.entry.json"
        try:
            proc = subprocess.run([sys.executable, __file__, "--write", name, str(folder), str(entry_file)],
                                  env=_child_env(), capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"writing sample {name} failed:\n{proc.stderr[-4000:]}")
            return json.loads(entry_file.read_text())
        finally:
            if entry_file.exists():
                entry_file.unlink()

    generate.__name__ = "gen_" + name
    generate.__doc__ = SAMPLES[name]
    return generate


GENERATORS = {name: _generator(name) for name in SAMPLES}


# --------------------------------------------------------------------------- child side (Keras 3)


def _right_weights() -> list[np.ndarray]:
    """The Keras weights ``gruinspect convert --to keras`` writes (it proves them with Keras 3)."""
    from gruinspect.convert import convert

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "port"
        result = convert(str(SOURCE), "keras", str(out))
        assert result.status == "written", result.status
        with np.load(out / "model.npz") as npz:
            prefix = SCOPE.rstrip("/")
            return [npz[f"{prefix}/{role}"] for role in ("kernel", "recurrent_kernel", "bias")]


def _wrong_weights() -> list[np.ndarray]:
    """TF1's columns copied as stored: [x; h] rows split, gate and candidate columns side by side."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(SOURCE))
    gates, candidate = reader.get_tensor(SCOPE + "gates/kernel"), reader.get_tensor(SCOPE + "candidate/kernel")
    kernel = np.concatenate([gates[:INPUT], candidate[:INPUT]], axis=1)
    recurrent = np.concatenate([gates[INPUT:], candidate[INPUT:]], axis=1)
    bias = np.concatenate([reader.get_tensor(SCOPE + "gates/bias"), reader.get_tensor(SCOPE + "candidate/bias")])
    return [kernel, recurrent, bias]


def _child_main(name: str, folder: Path, entry_file: Path) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(HERE))
    import keras
    import samples_keras

    weights = _right_weights() if name == "diff_port_keras" else _wrong_weights()
    model = keras.Sequential([keras.Input((None, INPUT)),
                              keras.layers.GRU(UNITS, reset_after=False, return_sequences=True, name="gru")],
                             name="port")
    model.get_layer("gru").set_weights(weights)
    path = folder / "model.keras"
    model.save(str(path))
    loaded = keras.saving.load_model(str(path))
    for want, got in zip(weights, loaded.get_layer("gru").get_weights()):
        assert np.array_equal(np.asarray(want, np.float32), np.asarray(got)), name
    datasets = samples_keras._h5_datasets(samples_keras._sources("keras3_archive", folder))
    cells = [samples_keras._cell_entry(cell, layer, "keras3", datasets, config_source="file")
             for cell, layer in samples_keras.gru_layers(loaded)]
    used = {t for c in cells for t in c["tensors"].values()}
    entry = {"name": name, "path": f"{name}/model.keras", "format": "keras3-archive", "description": SAMPLES[name],
             "writer": "keras " + keras.__version__, "cells": cells, "other_tensors": sorted(set(datasets) - used)}
    entry_file.write_text(json.dumps(entry, indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--write":
        _child_main(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        sys.exit("usage: samples_diff.py --write NAME FOLDER ENTRY_JSON (normally run by make_samples.py)")
