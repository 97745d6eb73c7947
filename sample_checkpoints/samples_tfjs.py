"""Generators for the TensorFlow.js layers-model samples, written by the ``tensorflowjs`` converter.

The ``tensorflowjs`` package (4.22) pins dependencies that do not install beside TensorFlow 2.21
(tensorflow-decision-forests, an older jax/flax), so it lives in its own interpreter, used only here:

    python -m venv /work/venv-tfjs
    echo <the main venv's site-packages> > /work/venv-tfjs/lib/python3.11/site-packages/main.pth
    /work/venv-tfjs/bin/pip install --no-deps tensorflowjs==4.22.0

and ``TFJS_PYTHON`` names that interpreter (default ``/work/venv-tfjs/bin/python``). The package's
``__init__`` files import every converter (SavedModel, JAX: tensorflow_decision_forests, jax), which
the Keras path never uses, so the child registers the two packages without running their
``__init__`` and imports only ``keras_h5_conversion``, ``read_weights`` and ``version``.

Each generator runs this file in that interpreter (``TF_USE_LEGACY_KERAS=1``, tf-keras)::

    $TFJS_PYTHON samples_tfjs.py --write NAME FOLDER ENTRY_JSON

The child builds a tf-keras model with seeded random weights (biases too), converts it with
``tensorflowjs.converters.save_keras_model`` (small shards, so weights span shard files; the
quantized sample maps one GRU to each of uint8, uint16 and float16), then records what the
converter produced, so tests can compare without tensorflowjs installed:

* ``expected.npz``: ``tfjs/<weight name>`` = the weights as tensorflowjs' own reader
  (``tensorflowjs.read_weights.read_weights``) decodes them from the shards, and
  ``keras/<weight name>`` = the weights of the tf-keras model the sample was converted from;
* the manifest entry: cells (name, layout, shapes, activations, reset_after) and the tfjs weight
  names of each cell's kernel / recurrent_kernel / bias.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TFJS_PYTHON = os.environ.get("TFJS_PYTHON", "/work/venv-tfjs/bin/python")

# name -> (description, shard size in bytes, quantization map)
SAMPLES = {
    "tfjs_layers": (
        "TensorFlow.js layers model (tensorflowjs 4.22 save_keras_model of a tf-keras 2.21 Functional model), "
        "float32 weights in 512-byte shards: GRU 'g1' (3->4, reset_after=True), Bidirectional 'bidi' of GRU 'gru' "
        "(4->3, reset_after=False, hard_sigmoid), nested Sequential 'inner_model' with GRU 'inner_gru' "
        "(6->5, relu, reset_after=False), TimeDistributed(Dense) 'td'",
        512, None,
    ),
    "tfjs_quantized": (
        "TensorFlow.js layers model with quantized weights (tensorflowjs 4.22, quantization_dtype_map): GRU 'q8' "
        "(3->4, reset_after=False) as uint8, GRU 'q16' (4->5, reset_after=False) as uint16, GRU 'h16' "
        "(5->3, reset_after=True, a GRU the tfjs runtime cannot run) as float16, Dense 'head' float32; "
        "one shard",
        4 * 1024 * 1024, {"uint8": ["q8/*"], "uint16": ["q16/*"], "float16": ["h16/*"]},
    ),
}


# --------------------------------------------------------------------------- driver side


def child_generators(script: str, samples: dict, python_of, env_of) -> dict:
    """``{name: generate(folder)}`` running ``python_of(name) script --write NAME FOLDER ENTRY_JSON``
    in the environment ``env_of(name)`` and returning the manifest entry the child wrote
    (shared by samples_tfjs.py and samples_tflite.py; ``samples[name][0]`` is the description)."""
    def generator(name):
        def generate(folder: Path) -> dict:
            folder = Path(folder)
            entry_file = folder.parent / (".%s.entry.json" % name)
            try:
                proc = subprocess.run([python_of(name), script, "--write", name, str(folder), str(entry_file)],
                                      env=env_of(name), capture_output=True, text=True, timeout=600)
                if proc.returncode != 0:
                    raise RuntimeError("writing sample %s failed:\n%s" % (name, proc.stderr[-4000:]))
                return json.loads(entry_file.read_text())
            finally:
                if entry_file.exists():
                    entry_file.unlink()

        generate.__name__ = "gen_" + name
        generate.__doc__ = samples[name][0]
        return generate

    return {name: generator(name) for name in samples}


GENERATORS = child_generators(str(Path(__file__).resolve()), SAMPLES, lambda name: TFJS_PYTHON,
                              lambda name: dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_USE_LEGACY_KERAS="1"))


# --------------------------------------------------------------------------- child side


def build(name: str, keras):
    """The tf-keras model of sample ``name`` (fresh, unweighted); tests rebuild it from here too."""
    L = keras.layers
    if name == "tfjs_layers":
        x = keras.Input((5, 3), name="x")
        h = L.GRU(4, return_sequences=True, reset_after=True, name="g1")(x)
        h = L.Bidirectional(L.GRU(3, return_sequences=True, reset_after=False, recurrent_activation="hard_sigmoid",
                                  name="gru"), merge_mode="concat", name="bidi")(h)
        inner = keras.Sequential([keras.Input((5, 6)), L.GRU(5, return_sequences=True, activation="relu",
                                                             reset_after=False, name="inner_gru")],
                                 name="inner_model")
        h = inner(h)
        y = L.TimeDistributed(L.Dense(2), name="td")(h)
        return keras.Model(x, y, name="tfjs_layers")
    x = keras.Input((5, 3), name="x")
    h = L.GRU(4, return_sequences=True, reset_after=False, name="q8")(x)
    h = L.GRU(5, return_sequences=True, reset_after=False, name="q16")(h)
    h = L.GRU(3, reset_after=True, name="h16")(h)
    y = L.Dense(2, name="head")(h)
    return keras.Model(x, y, name="tfjs_quantized")


def _cells(name: str, model, names: list[str]) -> list[dict]:
    """Manifest cells: every GRU of the model with the tfjs names of its three weights."""
    out = []

    def add(path: str, layer, wrapper_names):
        cfg = layer.get_config()
        act = {"hard_sigmoid": "hard_sigmoid_keras2"}.get(cfg["recurrent_activation"], cfg["recurrent_activation"])
        tensors = dict(zip(("kernel", "recurrent_kernel", "bias"), wrapper_names))
        out.append({
            "name": path, "layout": "keras-gru", "input_size": int(layer.cell.kernel.shape[0]),
            "units": int(cfg["units"]), "reset_after": bool(cfg["reset_after"]), "dtype": "float32",
            "activation": cfg["activation"], "recurrent_activation": act, "config_source": "file",
            "use_bias": bool(cfg["use_bias"]), "tensors": tensors,
            "tfjs_runnable": not cfg["reset_after"],
        })

    def weight_names(layer):
        found = [w.name[:-2] if w.name.endswith(":0") else w.name for w in layer.weights]
        assert all(n in names for n in found), (found, names)
        return found

    for layer in model.layers:
        cls = type(layer).__name__
        if cls == "GRU":
            add(layer.name, layer, weight_names(layer))
        elif cls == "Bidirectional":
            for direction, sub in (("forward", layer.forward_layer), ("backward", layer.backward_layer)):
                add("%s/%s" % (layer.name, sub.name), sub, weight_names(sub))
        elif cls in ("Sequential", "Functional"):
            for sub in layer.layers:
                if type(sub).__name__ == "GRU":
                    add("%s/%s" % (layer.name, sub.name), sub, weight_names(sub))
    return out


def _import_tfjs():
    """tensorflowjs' Keras converter, reader and version, without the package ``__init__`` files."""
    import importlib
    import importlib.util
    import types

    spec = importlib.util.find_spec("tensorflowjs")
    root = Path(spec.origin).parent
    for package, path in (("tensorflowjs", root), ("tensorflowjs.converters", root / "converters")):
        module = types.ModuleType(package)
        module.__path__ = [str(path)]
        sys.modules[package] = module
    return (importlib.import_module("tensorflowjs.converters.keras_h5_conversion"),
            importlib.import_module("tensorflowjs.read_weights").read_weights,
            importlib.import_module("tensorflowjs.version").version)


def _child_main(name: str, folder: Path, entry_file: Path) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np
    import tf_keras as keras

    keras_h5_conversion, read_weights, tfjs_version = _import_tfjs()

    description, shard_bytes, quantization = SAMPLES[name]
    seed = 2000 + sorted(SAMPLES).index(name)
    keras.utils.set_random_seed(seed)
    model = build(name, keras)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(-0.8, 0.8, size=w.shape).astype(np.float32) for w in model.get_weights()])
    keras_h5_conversion.save_keras_model(model, str(folder), quantization_dtype_map=quantization,
                                         weight_shard_size_bytes=shard_bytes)
    model_json = json.loads((folder / "model.json").read_text())
    manifest = model_json["weightsManifest"]
    decoded = {}
    for group in read_weights(manifest, str(folder)):
        for item in group:
            decoded[item["name"]] = item["data"]
    names = list(decoded)
    arrays = {"tfjs/" + n: v for n, v in decoded.items()}
    for w in model.weights:
        wname = w.name[:-2] if w.name.endswith(":0") else w.name
        arrays["keras/" + wname] = w.numpy()
    np.savez(folder / "expected.npz", **arrays)
    cells = _cells(name, model, names)
    in_cells = {t for c in cells for t in c["tensors"].values()}
    quantized = {w["name"]: w["quantization"]["dtype"] for g in manifest for w in g["weights"] if "quantization" in w}
    entry = {
        "name": name, "path": name, "format": "tfjs-layers-model", "description": description,
        "writer": "tensorflowjs %s, tf_keras %s" % (tfjs_version, keras.__version__),
        "cells": cells, "other_tensors": [n for n in names if n not in in_cells],
        "shards": [p for g in manifest for p in g["paths"]], "quantization": quantized,
    }
    entry_file.write_text(json.dumps(entry, indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--write":
        _child_main(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        sys.exit("usage: samples_tfjs.py --write NAME FOLDER ENTRY_JSON (normally run by make_samples.py)")
