"""Generators for the Keras sample files (Keras 3, tf-keras 2.x and a synthesized Keras 1 file).

Every generator has the signature ``generate(folder: pathlib.Path) -> dict`` (the contract of
``samples_tf1.py``): the driver hands it an empty folder named after the sample; the generator
writes the files there and returns the sample's manifest entry.

Keras 3 and tf-keras cannot share one process (``TF_USE_LEGACY_KERAS`` decides which Keras
``tensorflow`` exposes, and the driver sets it to 1 for the TF1 samples), so each generator runs
this module as a child process with the right environment::

    python samples_keras.py --write NAME FOLDER ENTRY_JSON

The child builds the model, gives every weight seeded random values (biases too, so that no two
blocks are equal), saves it with the framework's own saving API, loads it back with the same
framework to check it, maps every GRU weight to the stored tensor holding it (by value, with
h5py, independently of gruinspect) and writes the manifest entry.

The model builders (:func:`build`) are also used by ``tests/test_keras.py`` to rebuild the
architecture of weights-only samples and to build the twin models that load the CuDNNGRU and
Keras 1 files through tf-keras' own weight converters.

Manifest cell fields beyond the TF1 ones: ``activation`` / ``recurrent_activation`` are the
truth in gruinspect's canonical names (``hard_sigmoid_keras2`` / ``hard_sigmoid_keras3``);
``config_source`` is what ``gruinspect list`` must report: "file" (read from the layer config),
"unknown" (weights-only file: ``list`` shows no activations) or "layout" (CuDNNGRU: fixed);
``use_bias``; ``tensors`` maps the layout's roles (``kernel``, ``recurrent_kernel``, ``bias``;
``W_z`` ... ``b_h`` for Keras 1) to the stored tensor names gruinspect uses (HDF5 dataset paths).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEQ_LEN = 6
INPUT_SIZE = 3

# name -> (framework family, format, path inside the sample folder, description)
SAMPLES = {
    "keras3_archive": (
        "keras3", "keras3-archive", "model.keras",
        "Keras 3 .keras archive of a Functional model: GRU 'encoder' (3->4, reset_after=True), GRU 'decoder' "
        "(4->5, reset_after=False, relu, hard_sigmoid), nested Sequential 'block' holding GRU 'inner_gru' "
        "(5->3), TimeDistributed(Dense) 'td'",
    ),
    "keras3_weights_h5": (
        "keras3", "keras3-weights-h5", "model.weights.h5",
        "Keras 3 bare .weights.h5 (no config): Bidirectional 'bidi' of GRU 'gru' (3->3, reset_after=False) "
        "and GRU 'nobias' (6->4, use_bias=False)",
    ),
    "keras3_folder_bf16": (
        "keras3", "keras3-folder", "",
        "Keras 3 unzipped archive folder (save(zipped=False)): bfloat16 GRU 'gru_bf16' (3->4, reset_after=True) "
        "stored as |V2 datasets with attribute dtype=bfloat16, then Dense 'head'",
    ),
    "keras3_sharded": (
        "keras3", "keras3-weights-sharded", "model.weights.json",
        "Keras 3 sharded weights (save_weights(max_shard_size=4.7e-7 GB, about 500 bytes; the second GRU spans "
        "both shards)): index model.weights.json plus model_0000N.weights.h5 shards; GRU 'first' (3->3) and "
        "GRU 'second' (3->4, hard_sigmoid)",
    ),
    "tfkeras_full_h5": (
        "tf_keras", "keras-h5", "model.h5",
        "tf-keras 2 full-model HDF5 (model.save('model.h5')): GRU 'g1' (3->4, reset_after=True), Bidirectional "
        "'bidi' of GRU 'gru' (4->3, reset_after=False, hard_sigmoid), nested Sequential 'inner_model' with GRU "
        "'inner_gru' (6->5, relu), TimeDistributed(Dense) 'td'",
    ),
    "tfkeras_weights_h5": (
        "tf_keras", "keras-h5-weights", "weights.h5",
        "tf-keras 2 weights-only HDF5 (save_weights('weights.h5'), no config): GRU 'nobias' (3->4, "
        "use_bias=False), GRU 'classic' (4->3, reset_after=False), Dense 'head'",
    ),
    "tfkeras_cudnn_gru": (
        "tf_keras", "keras-h5", "model.h5",
        "tf-keras 2 full-model HDF5 with a CuDNNGRU 'cudnn' (3->4; kernel [3,12], recurrent_kernel [4,12], "
        "bias [24]) and Dense 'head'; written by tf-keras itself (tf.compat.v1.keras.layers.CuDNNGRU builds "
        "and saves on CPU but was never run) with seeded random weights",
    ),
    "keras1_gru": (
        "tf_keras", "keras-h5", "model.h5",
        "Keras 1 style full-model HDF5, synthesized with h5py (no Keras 1 install): no keras_version, Keras 1 "
        "Sequential config (output_dim, inner_activation=hard_sigmoid), GRU 'gru_1' (3->4) as 9 per-gate "
        "arrays gru_1_W_z:0 ... gru_1_b_h:0 (consume_less='cpu'), GRU 'gru_2' (4->3) as 3 concatenated "
        "arrays W, U, b (consume_less='gpu'), Dense 'dense_1'; layer_names split into chunked attributes "
        "layer_names0/layer_names1; loadable by tf-keras' own Keras 1 converter",
    ),
}

KERAS1_GATES = ("z", "r", "h")


# --------------------------------------------------------------------------- driver side


def _child_env(family: str) -> dict:
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if family == "tf_keras":
        env["TF_USE_LEGACY_KERAS"] = "1"
    else:
        env.pop("TF_USE_LEGACY_KERAS", None)
    return env


def _generate(name: str, folder: Path) -> dict:
    family = SAMPLES[name][0]
    entry_file = folder.parent / (".%s.entry.json" % name)
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--write", name, str(folder), str(entry_file)],
            env=_child_env(family), capture_output=True, text=True, timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError("writing sample %s failed:\n%s" % (name, proc.stderr[-4000:]))
        return json.loads(entry_file.read_text())
    finally:
        if entry_file.exists():
            entry_file.unlink()


def _generator(name):
    def generate(folder: Path) -> dict:
        return _generate(name, Path(folder))

    generate.__name__ = "gen_" + name
    generate.__doc__ = SAMPLES[name][3]
    return generate


# name -> generator, in generation order. The driver imports this.
GENERATORS = {name: _generator(name) for name in SAMPLES}


# --------------------------------------------------------------------------- model builders


def framework(family: str):
    """The Keras module of a family; the caller's environment must suit it (see ``_child_env``)."""
    if family == "keras3":
        import keras

        assert keras.__version__.startswith("3"), keras.__version__
        return keras
    import tf_keras

    return tf_keras


def build(name: str, keras, *, twin: bool = False):
    """The model of sample ``name`` built with ``keras`` (fresh, unweighted).

    ``twin=True`` gives, for the CuDNNGRU and Keras 1 samples, the plain tf-keras model whose
    ``load_weights`` reads the sample through tf-keras' converters (CuDNNGRU -> GRU(reset_after=True);
    Keras 1 per-gate arrays -> GRU).
    """
    L = keras.layers
    inp = lambda width: keras.Input((SEQ_LEN, width))  # noqa: E731
    if name == "keras3_archive":
        x0 = inp(INPUT_SIZE)
        x = L.GRU(4, return_sequences=True, name="encoder")(x0)
        x = L.GRU(5, return_sequences=True, reset_after=False, activation="relu",
                  recurrent_activation="hard_sigmoid", name="decoder")(x)
        block = keras.Sequential([keras.Input((SEQ_LEN, 5)), L.GRU(3, return_sequences=True, name="inner_gru")],
                                 name="block")
        x = block(x)
        x = L.TimeDistributed(L.Dense(2, name="dense"), name="td")(x)
        return keras.Model(x0, x, name="keras3_archive")
    if name == "keras3_weights_h5":
        return keras.Sequential([
            inp(INPUT_SIZE),
            L.Bidirectional(L.GRU(3, return_sequences=True, reset_after=False, name="gru"), name="bidi"),
            L.GRU(4, use_bias=False, name="nobias"),
        ], name="keras3_weights_h5")
    if name == "keras3_folder_bf16":
        # Orthogonal initialisation has no bfloat16 kernel in TensorFlow; values are replaced anyway.
        return keras.Sequential([
            inp(INPUT_SIZE),
            L.GRU(4, dtype="bfloat16", recurrent_initializer="glorot_uniform", name="gru_bf16"),
            L.Dense(2, name="head"),
        ], name="keras3_folder_bf16")
    if name == "keras3_sharded":
        return keras.Sequential([
            inp(INPUT_SIZE),
            L.GRU(3, return_sequences=True, name="first"),
            L.GRU(4, recurrent_activation="hard_sigmoid", name="second"),
        ], name="keras3_sharded")
    if name == "tfkeras_full_h5":
        x0 = inp(INPUT_SIZE)
        x = L.GRU(4, return_sequences=True, name="g1")(x0)
        x = L.Bidirectional(L.GRU(3, return_sequences=True, reset_after=False, recurrent_activation="hard_sigmoid",
                                  name="gru"), name="bidi")(x)
        inner = keras.Sequential([keras.Input((SEQ_LEN, 6)), L.GRU(5, return_sequences=True, activation="relu",
                                                                    name="inner_gru")], name="inner_model")
        x = inner(x)
        x = L.TimeDistributed(L.Dense(2), name="td")(x)
        return keras.Model(x0, x, name="tfkeras_full_h5")
    if name == "tfkeras_weights_h5":
        return keras.Sequential([
            inp(INPUT_SIZE),
            L.GRU(4, use_bias=False, return_sequences=True, name="nobias"),
            L.GRU(3, reset_after=False, name="classic"),
            L.Dense(2, name="head"),
        ], name="tfkeras_weights_h5")
    if name == "tfkeras_cudnn_gru":
        if twin:
            gru = L.GRU(4, return_sequences=True, reset_after=True, name="cudnn")
        else:
            import tensorflow as tf

            gru = tf.compat.v1.keras.layers.CuDNNGRU(4, return_sequences=True, name="cudnn")
        return keras.Sequential([inp(INPUT_SIZE), gru, L.Dense(2, name="head")], name="tfkeras_cudnn_gru")
    if name == "keras1_gru":
        assert twin, "the Keras 1 sample is synthesized; only its tf-keras twin can be built"
        return keras.Sequential([
            inp(INPUT_SIZE),
            L.GRU(4, return_sequences=True, reset_after=False, recurrent_activation="hard_sigmoid", name="gru_1"),
            L.GRU(3, return_sequences=True, reset_after=False, recurrent_activation="hard_sigmoid", name="gru_2"),
            L.Dense(2, name="dense_1"),
        ], name="keras1_gru")
    raise KeyError(name)


def gru_layers(model, prefix: str = ""):
    """``(user layer path, layer)`` for every GRU / CuDNNGRU in ``model``, in model order.

    Bidirectional gives ``bidi/forward_<inner>`` and ``bidi/backward_<inner>``; nested models give
    ``outer/inner``. These are the cell names gruinspect must report.
    """
    for layer in model.layers:
        cls = type(layer).__name__
        if cls in ("GRU", "CuDNNGRU"):
            yield prefix + layer.name, layer
        elif cls == "Bidirectional":
            for sub in (layer.forward_layer, layer.backward_layer):
                yield "%s%s/%s" % (prefix, layer.name, sub.name), sub
        elif hasattr(layer, "layers") and cls not in ("TimeDistributed",):
            yield from gru_layers(layer, prefix + layer.name + "/")


def canonical_activation(name: str, family: str) -> str:
    if name == "hard_sigmoid":
        return "hard_sigmoid_keras3" if family == "keras3" else "hard_sigmoid_keras2"
    return name


def _activation_name(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
    return getattr(value, "__name__", str(value))


def randomize(model, seed: int) -> None:
    """Seeded random values for every weight (so no two blocks are equal, biases included)."""
    rng = np.random.default_rng(seed)
    values = [rng.uniform(-0.9, 0.9, size=tuple(w.shape)).astype(np.float32) for w in model.weights]
    model.set_weights(values)


# --------------------------------------------------------------------------- child side


def _h5_datasets(sources) -> dict:
    """{dataset path: raw array} over HDF5 files/file objects (bfloat16 |V2 read as uint16)."""
    import h5py

    out = {}
    for src in sources:
        with h5py.File(src, "r") as f:
            def visit(path, obj):
                if isinstance(obj, h5py.Dataset):
                    value = obj[()]
                    if obj.dtype.kind == "V":
                        value = np.asarray(value).view(np.uint16)
                    out[path] = np.asarray(value)
            f.visititems(visit)
    return out


def _raw(array) -> np.ndarray:
    array = np.asarray(array)
    return array.view(np.uint16) if array.dtype.name == "bfloat16" else array


def _stored_name(datasets: dict, value, what: str) -> str:
    value = _raw(value)
    hits = [p for p, v in datasets.items() if v.shape == value.shape and v.dtype == value.dtype
            and np.array_equal(v, value)]
    assert len(hits) == 1, "%s: %d stored tensors hold its value (%s)" % (what, len(hits), hits)
    return hits[0]


def _sources(name: str, folder: Path) -> list:
    """What to open with h5py to see the sample's datasets."""
    if name == "keras3_archive":
        with zipfile.ZipFile(folder / "model.keras") as z:
            return [io.BytesIO(z.read("model.weights.h5"))]
    if name == "keras3_folder_bf16":
        return [str(folder / "model.weights.h5")]
    if name == "keras3_sharded":
        index = json.loads((folder / "model.weights.json").read_text())
        files = sorted({f for files in index["weight_map"].values() for f in files})
        return [str(folder / f) for f in files]
    return [str(folder / SAMPLES[name][2])]


def _cell_entry(cell_name, layer, family, datasets, *, config_source, layout="keras-gru", tensors=None):
    cfg = layer.get_config()
    weights = layer.get_weights()
    kernel = weights[0]
    units = int(cfg["units"])
    if layout == "keras-cudnn-gru":
        act, ract, reset_after = "tanh", "sigmoid", True
    else:
        act = canonical_activation(_activation_name(cfg["activation"]), family)
        ract = canonical_activation(_activation_name(cfg["recurrent_activation"]), family)
        reset_after = bool(cfg["reset_after"])
    if tensors is None:
        roles = ("kernel", "recurrent_kernel", "bias")[: len(weights)]
        tensors = {role: _stored_name(datasets, w, "%s %s" % (cell_name, role)) for role, w in zip(roles, weights)}
    dtype = np.asarray(kernel).dtype.name
    return {
        "name": cell_name,
        "layout": layout,
        "input_size": int(kernel.shape[0]),
        "units": units,
        "reset_after": reset_after,
        "dtype": dtype,
        "activation": act,
        "recurrent_activation": ract,
        "config_source": config_source,
        "use_bias": len(weights) == 3,
        "tensors": tensors,
    }


def _entry(name: str, folder: Path, cells: list, datasets: dict, framework_version: str) -> dict:
    family, fmt, rel, description = SAMPLES[name]
    used = {t for c in cells for t in c["tensors"].values()}
    return {
        "name": name,
        "path": "%s/%s" % (name, rel) if rel else name,
        "format": fmt,
        "description": description,
        "writer": framework_version,
        "cells": cells,
        "other_tensors": sorted(set(datasets) - used),
    }


def _check_same_weights(a, b, what):
    assert len(a.weights) == len(b.weights), what
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(_raw(wa), _raw(wb)), what


def _write_keras3(name: str, folder: Path, seed: int) -> dict:
    keras = framework("keras3")
    model = build(name, keras)
    randomize(model, seed)
    if name == "keras3_archive":
        model.save(str(folder / "model.keras"))
        loaded = keras.saving.load_model(str(folder / "model.keras"))
        config_source = "file"
    elif name == "keras3_folder_bf16":
        model.save(str(folder), zipped=False)
        loaded = keras.saving.load_model(str(folder))
        config_source = "file"
    elif name == "keras3_weights_h5":
        model.save_weights(str(folder / "model.weights.h5"))
        loaded = build(name, keras)
        loaded.load_weights(str(folder / "model.weights.h5"))
        config_source = "unknown"
    elif name == "keras3_sharded":
        model.save_weights(str(folder / "model.weights.json"), max_shard_size=4.7e-7)
        loaded = build(name, keras)
        loaded.load_weights(str(folder / "model.weights.json"))
        config_source = "unknown"
    else:
        raise KeyError(name)
    _check_same_weights(model, loaded, name)
    datasets = _h5_datasets(_sources(name, folder))
    cells = [_cell_entry(cell, layer, "keras3", datasets, config_source=config_source)
             for cell, layer in gru_layers(loaded)]
    return _entry(name, folder, cells, datasets, "keras " + keras.__version__)


def _write_tf_keras(name: str, folder: Path, seed: int) -> dict:
    keras = framework("tf_keras")
    if name == "keras1_gru":
        return _write_keras1(folder, seed)
    model = build(name, keras)
    randomize(model, seed)
    path = folder / SAMPLES[name][2]
    if name == "tfkeras_weights_h5":
        model.save_weights(str(path))
        loaded = build(name, keras)
        loaded.load_weights(str(path))
        config_source = "unknown"
    else:
        model.save(str(path))
        loaded = keras.models.load_model(str(path), compile=False)
        config_source = "file"
    _check_same_weights(model, loaded, name)
    datasets = _h5_datasets(_sources(name, folder))
    if name == "tfkeras_cudnn_gru":
        cells = [_cell_entry(cell, layer, "tf_keras", datasets, config_source="layout", layout="keras-cudnn-gru")
                 for cell, layer in gru_layers(loaded)]
        # tf-keras' own converter must accept the file for a GRU(reset_after=True) twin.
        twin = build(name, keras, twin=True)
        twin.load_weights(str(path))
        assert twin.layers[0].get_weights()[2].shape == (2, 12)
    else:
        cells = [_cell_entry(cell, layer, "tf_keras", datasets, config_source=config_source)
                 for cell, layer in gru_layers(loaded)]
    return _entry(name, folder, cells, datasets, "tf_keras " + keras.__version__)


def _keras1_layer_config(name, units, input_dim, consume_less, first):
    config = {
        "name": name, "trainable": True, "return_sequences": True, "go_backwards": False, "stateful": False,
        "unroll": False, "consume_less": consume_less, "input_dim": input_dim, "input_length": None,
        "output_dim": units, "init": "glorot_uniform", "inner_init": "orthogonal", "activation": "tanh",
        "inner_activation": "hard_sigmoid", "W_regularizer": None, "U_regularizer": None, "b_regularizer": None,
        "dropout_W": 0.0, "dropout_U": 0.0,
    }
    if first:
        config["batch_input_shape"] = [None, SEQ_LEN, input_dim]
        config["input_dtype"] = "float32"
    return {"class_name": "GRU", "config": config}


def _write_keras1(folder: Path, seed: int) -> dict:
    """The Keras 1.x `save_model` layout (keras/engine/topology.py of Keras 1.1), written with h5py."""
    import h5py

    keras = framework("tf_keras")
    rng = np.random.default_rng(seed)
    u = lambda *shape: rng.uniform(-0.9, 0.9, size=shape).astype(np.float32)  # noqa: E731
    gru_1 = []  # W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h: Keras 1 GRU.build order
    for _gate in KERAS1_GATES:
        gru_1 += [u(INPUT_SIZE, 4), u(4, 4), u(4)]
    gru_1_names = ["gru_1_%s_%s:0" % (kind, gate) for gate in KERAS1_GATES for kind in ("W", "U", "b")]
    gru_2 = [u(4, 9), u(3, 9), u(9)]
    gru_2_names = ["gru_2_W:0", "gru_2_U:0", "gru_2_b:0"]
    dense = [u(3, 2), u(2)]
    dense_names = ["dense_1_W:0", "dense_1_b:0"]
    model_config = {"class_name": "Sequential", "config": [
        _keras1_layer_config("gru_1", 4, INPUT_SIZE, "cpu", True),
        _keras1_layer_config("gru_2", 3, 4, "gpu", False),
        {"class_name": "Dense", "config": {
            "name": "dense_1", "trainable": True, "output_dim": 2, "init": "glorot_uniform", "activation": "linear",
            "W_regularizer": None, "b_regularizer": None, "activity_regularizer": None, "W_constraint": None,
            "b_constraint": None, "bias": True, "input_dim": 3}},
    ]}
    path = folder / "model.h5"
    with h5py.File(path, "w") as f:
        # Keras 1.0/1.1 wrote no keras_version; readers take its absence to mean Keras 1.
        f.attrs["model_config"] = json.dumps(model_config).encode("utf8")
        mw = f.create_group("model_weights")
        # Chunked attribute, as save_attributes_to_hdf5_group writes lists over 64512 bytes.
        mw.attrs["layer_names0"] = np.array([b"gru_1", b"gru_2"])
        mw.attrs["layer_names1"] = np.array([b"dense_1"])
        for layer, names, values in (("gru_1", gru_1_names, gru_1), ("gru_2", gru_2_names, gru_2),
                                     ("dense_1", dense_names, dense)):
            g = mw.create_group(layer)
            g.attrs["weight_names"] = np.array([n.encode("utf8") for n in names])
            for n, v in zip(names, values):
                g.create_dataset(n, data=v)

    # Independent check: tf-keras' Keras 1 converter (hdf5_format.preprocess_weights_for_loading)
    # concatenates W_z|W_r|W_h etc.; the twin must then hold exactly our values.
    twin = build("keras1_gru", keras, twin=True)
    twin.load_weights(str(path))
    got = twin.get_weights()
    want = [np.concatenate(gru_1[0::3], 1), np.concatenate(gru_1[1::3], 1), np.concatenate(gru_1[2::3], 0)]
    want += gru_2 + dense
    assert all(np.array_equal(a, b) for a, b in zip(got, want)), "tf-keras reads the Keras 1 file differently"

    datasets = _h5_datasets([str(path)])
    cells = [
        {"name": "gru_1", "layout": "keras1-gru", "input_size": INPUT_SIZE, "units": 4, "reset_after": False,
         "dtype": "float32", "activation": "tanh", "recurrent_activation": "hard_sigmoid_keras2",
         "config_source": "file", "use_bias": True,
         "tensors": {n.split(":")[0][len("gru_1_"):]: "model_weights/gru_1/" + n for n in gru_1_names}},
        {"name": "gru_2", "layout": "keras-gru", "input_size": 4, "units": 3, "reset_after": False,
         "dtype": "float32", "activation": "tanh", "recurrent_activation": "hard_sigmoid_keras2",
         "config_source": "file", "use_bias": True,
         "tensors": {role: "model_weights/gru_2/" + n
                     for role, n in zip(("kernel", "recurrent_kernel", "bias"), gru_2_names)}},
    ]
    return _entry("keras1_gru", folder, cells, datasets, "h5py (Keras 1 layout), checked with tf_keras "
                  + keras.__version__)


def _child_main(name: str, folder: Path, entry_file: Path) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    seed = 1000 + sorted(SAMPLES).index(name)
    family = SAMPLES[name][0]
    keras = framework(family)
    keras.utils.set_random_seed(seed)
    if family == "keras3":
        entry = _write_keras3(name, folder, seed)
    else:
        entry = _write_tf_keras(name, folder, seed)
    entry_file.write_text(json.dumps(entry, indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--write":
        _child_main(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        sys.exit("usage: samples_keras.py --write NAME FOLDER ENTRY_JSON (normally run by make_samples.py)")
