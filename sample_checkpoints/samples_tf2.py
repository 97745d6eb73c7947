"""Generators for TF2 object checkpoints, SavedModels, V1 checkpoints and frozen GraphDefs.

Same contract as ``samples_tf1.py``: ``generate(folder: pathlib.Path) -> dict`` writes into the
empty folder ``sample_checkpoints/<name>/`` and returns the sample's manifest entry. Each
generator checks its own output with TensorFlow (the driver's ``verify_entry`` only knows TF1
bundles), so every entry below has been re-read by the framework that wrote it.

Manifest fields beyond the common ones:

- ``tensors`` of a cell maps the layout's roles to the names gruinspect exposes: Keras roles
  (``kernel``, ``recurrent_kernel``, ``bias``) for ``keras-gru`` cells, TF1 roles for
  ``tf-gru-cell`` cells;
- ``checkpoint_keys`` (object checkpoints and SavedModels): ``{exposed name: checkpoint key}``
  for every tensor whose exposed name differs from its key, so tests can ask
  ``tf.train.load_checkpoint`` for the same tensor;
- ``optimizer_slots``: optimizer state (names that ``is_optimizer_slot`` must recognise);
- ``shards`` (V1 sharded): the shard files.

Exposed names follow ``gruinspect/formats/_object_graph.py``: a model variable is named by its
``SerializedTensor.full_name`` (a SavedModel by ``SavedVariable.name``), other variables by
their key without `/.ATTRIBUTES/VARIABLE_VALUE`. The generator computes them from TensorFlow's
own protos (``trackable_object_graph_pb2``, ``saved_object_graph_pb2``), not with gruinspect.

Keras 3 (``import keras``) and tf_keras (``import tf_keras``) are imported as packages, so the
module works whatever ``TF_USE_LEGACY_KERAS`` says; the TF1 cells need it set (the driver does).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

SEQ_LEN = 5
VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"
TF1_ROLES = ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")


# --------------------------------------------------------------------------- helpers


def _tf():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def _keras3():
    _tf()
    import keras

    assert keras.__version__.startswith("3."), keras.__version__
    return keras


def _tf_keras():
    _tf()
    import tf_keras

    return tf_keras


def _randomize(weights, seed: int) -> None:
    """Seeded values for every weight, biases included, so no two GRU blocks are equal."""
    rng = np.random.default_rng(seed)
    for w in weights:
        if "float32" in str(w.dtype):  # not Keras 3 seed-generator states
            w.assign(rng.uniform(-0.9, 0.9, tuple(w.shape)).astype(np.float32))


def _build(keras, seed: int, *, nested_name: str = "inner_model"):
    """inputs [T, 3] -> nested Sequential(GRU 'inner_gru' 3->4, reset_after=False)
    -> Bidirectional 'bidi'(GRU 'bgru' 4->3, reset_after=True) -> Dense 'proj' (6->2)."""
    keras.utils.set_random_seed(seed)
    inner = keras.Sequential(
        [keras.Input((None, 3)), keras.layers.GRU(4, return_sequences=True, reset_after=False, name="inner_gru")],
        name=nested_name,
    )
    x = keras.Input((None, 3), name="x")
    h = inner(x)
    h = keras.layers.Bidirectional(keras.layers.GRU(3, name="bgru"), name="bidi")(h)
    y = keras.layers.Dense(2, name="proj")(h)
    return keras.Model(x, y, name="tf2_model")


def _train_step(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((2, SEQ_LEN, 3)).astype(np.float32)
    ys = rng.standard_normal((2, 2)).astype(np.float32)
    model.train_on_batch(xs, ys)


def _gru_layers(model, prefix=""):
    """(user layer path, layer) of every GRU, Bidirectional halves as `bidi/forward_bgru`."""
    for layer in model.layers:
        cls = type(layer).__name__
        if cls == "GRU":
            yield prefix + layer.name, layer
        elif cls == "Bidirectional":
            for sub in (layer.forward_layer, layer.backward_layer):
                yield "%s%s/%s" % (prefix, layer.name, sub.name), sub
        elif hasattr(layer, "layers"):
            yield from _gru_layers(layer, prefix + layer.name + "/")


def _act(value, keras3: bool) -> str:
    name = value if isinstance(value, str) else getattr(value, "__name__", str(value))
    if name == "hard_sigmoid":
        return "hard_sigmoid_keras3" if keras3 else "hard_sigmoid_keras2"
    return name


def _keras_cell(name, layer, names, *, keras3: bool, config_source: str) -> dict:
    """A manifest cell for a Keras GRU layer; ``names`` maps a weight to its exposed name."""
    cfg = layer.get_config()
    weights = layer.cell.weights if hasattr(layer, "cell") else layer.weights
    kernel = weights[0]
    roles = ("kernel", "recurrent_kernel", "bias")[: len(weights)]
    return {
        "name": name,
        "layout": "keras-gru",
        "input_size": int(kernel.shape[0]),
        "units": int(cfg["units"]),
        "reset_after": bool(cfg["reset_after"]),
        "dtype": "float32",
        "activation": _act(cfg["activation"], keras3),
        "recurrent_activation": _act(cfg["recurrent_activation"], keras3),
        "config_source": config_source,
        "use_bias": len(weights) == 3,
        "tensors": {role: names(w) for role, w in zip(roles, weights)},
    }


def _cell_tensors(cells) -> set:
    return {t for c in cells for t in c["tensors"].values()}


def _object_graph(tf, prefix: str):
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    reader = tf.train.load_checkpoint(prefix)
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor(OBJECT_GRAPH))
    return reader, graph


def _key_path(key: str) -> str:
    return key[: -len(VALUE_SUFFIX)] if key.endswith(VALUE_SUFFIX) else key


def _exposed(reader, model_names: dict, slot_like) -> tuple[dict, list, list]:
    """(checkpoint_keys, other_tensors, optimizer_slots) as gruinspect should expose them.

    ``model_names``: {checkpoint key: expected name} for the model's own weights (the cells and
    the Dense); every other key keeps its key path.
    """
    keys = sorted(reader.get_variable_to_shape_map())
    exposed = {key: model_names.get(key, _key_path(key)) for key in keys}
    assert len(set(exposed.values())) == len(exposed), "exposed names must be unique"
    checkpoint_keys = {name: key for key, name in exposed.items() if name != key}
    others, slots = [], []
    for key, name in exposed.items():
        if key in model_names:
            continue
        (slots if slot_like(name) else others).append(name)
    return checkpoint_keys, sorted(others), sorted(slots)


def _state_file(folder: Path, prefix_name: str) -> None:
    # Pin the state file (tf.train.Checkpoint writes timestamps) so reruns are byte-identical.
    (folder / "checkpoint").write_text(
        'model_checkpoint_path: "%s"\nall_model_checkpoint_paths: "%s"\n' % (prefix_name, prefix_name)
    )


def _model_keys(graph, weight_name) -> dict:
    """{checkpoint key: full_name} of the model's weights, found by full_name."""
    out = {}
    for node in graph.nodes:
        for attr in node.attributes:
            if attr.name == "VARIABLE_VALUE" and attr.full_name in weight_name:
                out[attr.checkpoint_key] = attr.full_name
    return out


def _check_values(reader, model, key_of_weight) -> None:
    for w in model.weights:
        np.testing.assert_array_equal(reader.get_tensor(key_of_weight(w)), np.asarray(w.numpy()))


# ------------------------------------------------------------- TF2 object checkpoints


def _object_checkpoint(folder: Path, *, keras3: bool) -> dict:
    tf = _tf()
    keras = _keras3() if keras3 else _tf_keras()
    seed = 201 if keras3 else 202
    model = _build(keras, seed)
    # tf_keras' legacy Adam keeps true slot variables (`.OPTIMIZER_SLOT`); Keras 3's optimizer
    # keeps its state as plain variables under `optimizer/_variables/N`.
    optimizer = keras.optimizers.Adam(0.01) if keras3 else keras.optimizers.legacy.Adam(0.01)
    model.compile(optimizer=optimizer, loss="mse")
    _randomize(model.weights, seed)
    _train_step(model, seed)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    saved = checkpoint.save(str(folder / "ckpt"))
    assert Path(saved).name == "ckpt-1", saved
    _state_file(folder, "ckpt-1")
    reader, graph = _object_graph(tf, saved)

    def weight_name(w):
        return w.path if keras3 else w.name[: -len(":0")]

    names = {weight_name(w) for w in model.weights}
    model_keys = _model_keys(graph, names)
    assert sorted(model_keys.values()) == sorted(names), (sorted(model_keys.values()), sorted(names))
    key_of = {name: key for key, name in model_keys.items()}
    _check_values(reader, model, lambda w: key_of[weight_name(w)])
    if keras3:
        # the GRU weights really are keyed under the optimizer here (docs/tf2-objects.md)
        assert all(k.startswith("optimizer/_trainable_variables/") for k in model_keys), model_keys
        slot_like = lambda n: n.startswith("optimizer/_variables/")  # noqa: E731
    else:
        assert all(k.startswith("model/layer_with_weights-") for k in model_keys), model_keys
        assert any(".OPTIMIZER_SLOT" in k for k in reader.get_variable_to_shape_map())
        slot_like = lambda n: ".OPTIMIZER_SLOT" in n  # noqa: E731
    checkpoint_keys, others, slots = _exposed(reader, model_keys, slot_like)
    assert "save_counter" in others and OBJECT_GRAPH in others, others
    cells = [_keras_cell(name, layer, weight_name, keras3=keras3, config_source="unknown")
             for name, layer in _gru_layers(model)]
    # tf_keras full names drop the nested model's name (`inner_gru/gru_cell/kernel`), so the
    # cell is `inner_gru` there; Keras 3 keeps `inner_model/inner_gru`.
    for cell in cells:
        cell["name"] = cell["tensors"]["kernel"][: -len("/gru_cell/kernel")]
    family = "Keras %s" % keras.__version__ if keras3 else "tf_keras %s" % keras.__version__
    return {
        "name": folder.name,
        "path": "%s/ckpt-1" % folder.name,
        "format": "tf-object-checkpoint",
        "description": (
            "%s Functional model (nested Sequential 'inner_model' with GRU 'inner_gru' 3->4 reset_after=False, "
            "Bidirectional 'bidi' of GRU 'bgru' 4->3, Dense 'proj'), one %s step, saved with "
            "tf.train.Checkpoint(model=..., optimizer=...).save" % (family, "Adam" if keras3 else "legacy Adam")
        ),
        "writer": family,
        "cells": cells,
        "other_tensors": sorted(set(others) | (names - _cell_tensors(cells))),
        "optimizer_slots": slots,
        "checkpoint_keys": checkpoint_keys,
    }


def gen_tf2_keras3_checkpoint(folder: Path) -> dict:
    return _object_checkpoint(folder, keras3=True)


def gen_tf2_tf_keras_checkpoint(folder: Path) -> dict:
    return _object_checkpoint(folder, keras3=False)


# ------------------------------------------------------------------------ SavedModels


def _saved_variable_names(folder: Path) -> dict:
    """{node id: SavedVariable.name} from saved_model.pb, decoded with TF's own proto."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((folder / "saved_model.pb").read_bytes())
    nodes = proto.meta_graphs[0].object_graph_def.nodes
    return {i: n.variable.name for i, n in enumerate(nodes) if n.WhichOneof("kind") == "variable"}


def _saved_model_entry(folder: Path, model, *, keras3: bool, config_source: str, description: str,
                       writer: str, mirrors: bool) -> dict:
    tf = _tf()
    reader, graph = _object_graph(tf, str(folder / "variables" / "variables"))
    var_names = _saved_variable_names(folder)
    weight_names = {(w.path if keras3 else w.name[: -len(":0")]) for w in model.weights}
    model_keys = {}  # every model variable (weights, and Keras 3 seed-generator states)
    for node_id, name in var_names.items():
        keys = [a.checkpoint_key for a in graph.nodes[node_id].attributes if a.name == "VARIABLE_VALUE"]
        assert len(keys) == 1, (node_id, name, keys)
        if mirrors and keys[0].startswith("_all_variables/"):
            continue  # Keras 3 export keeps a second copy of every weight there
        model_keys[keys[0]] = name
    assert weight_names <= set(model_keys.values()), (model_keys, weight_names)
    assert len(set(model_keys.values())) == len(model_keys)
    key_of = {name: key for key, name in model_keys.items()}
    _check_values(reader, model, lambda w: key_of[w.path if keras3 else w.name[: -len(":0")]])
    if mirrors:
        for node_id, name in var_names.items():
            key = [a.checkpoint_key for a in graph.nodes[node_id].attributes][0]
            if key.startswith("_all_variables/"):
                np.testing.assert_array_equal(reader.get_tensor(key), reader.get_tensor(key_of[name]))

    def slot_like(name):
        return name.startswith("optimizer/") or ".OPTIMIZER_SLOT" in name

    checkpoint_keys, others, slots = _exposed(reader, model_keys, slot_like)
    cells = [_keras_cell(name, layer, lambda w: w.path if keras3 else w.name[: -len(":0")],
                         keras3=keras3, config_source=config_source)
             for name, layer in _gru_layers(model)]
    if config_source != "file":
        # No layer records: the cell is the scope of its weights' names (Keras 3 full names
        # keep the user's layer path; a Sequential's own name becomes part of it).
        for cell in cells:
            cell["name"] = cell["tensors"]["kernel"][: -len("/gru_cell/kernel")]
    return {
        "name": folder.name,
        "path": folder.name,
        "format": "tf-saved-model",
        "description": description,
        "writer": writer,
        "cells": cells,
        "other_tensors": sorted(set(others) | (set(model_keys.values()) - _cell_tensors(cells))),
        "optimizer_slots": slots,
        "checkpoint_keys": checkpoint_keys,
    }


def gen_tf2_tf_keras_saved_model(folder: Path) -> dict:
    tf = _tf()
    keras = _tf_keras()
    model = _build(keras, 203)
    _randomize(model.weights, 203)
    target = folder / "model"
    # save_traces=False keeps saved_model.pb small (no traced call functions; an optimizer
    # would triple it, and optimizer state is covered by the checkpoint samples); the layer
    # configs are still in keras_metadata.pb and the model reloads from them.
    model.save(str(target), save_traces=False)
    for item in target.iterdir():
        shutil.move(str(item), str(folder / item.name))
    target.rmdir()
    assert (folder / "keras_metadata.pb").exists()
    loaded = keras.models.load_model(str(folder), compile=False)
    for a, b in zip(model.weights, loaded.weights):
        assert a.name == b.name
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    entry = _saved_model_entry(
        folder, model, keras3=False, config_source="file", mirrors=False,
        writer="tf_keras %s" % keras.__version__,
        description=(
            "tf_keras model.save(dir, save_traces=False) SavedModel (not compiled) with keras_metadata.pb "
            "(layer configs): nested Sequential 'inner_model' (GRU 'inner_gru' 3->4 reset_after=False), "
            "Bidirectional 'bidi' (GRU 'bgru' 4->3), Dense 'proj'"
        ),
    )
    assert tf.saved_model.contains_saved_model(str(folder))
    return entry


def gen_tf2_keras3_export(folder: Path) -> dict:
    tf = _tf()
    keras = _keras3()
    keras.utils.set_random_seed(204)
    # unroll=True over a fixed length of 2 keeps the traced graph (saved_model.pb) small.
    x = keras.Input((2, 3), name="x")
    h = keras.layers.GRU(5, unroll=True, name="enc")(x)
    y = keras.layers.Dense(2, name="proj")(h)
    model = keras.Model(x, y, name="exported")
    _randomize(model.weights, 204)
    target = folder / "model"
    model.export(str(target), verbose=False)
    for item in target.iterdir():
        shutil.move(str(item), str(folder / item.name))
    target.rmdir()
    assert not (folder / "keras_metadata.pb").exists()
    loaded = tf.saved_model.load(str(folder))
    xs = np.random.default_rng(204).standard_normal((1, 2, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.serve(xs).numpy(), model(xs).numpy(), rtol=1e-6, atol=1e-6)
    return _saved_model_entry(
        folder, model, keras3=True, config_source="unknown", mirrors=True,
        writer="Keras %s" % keras.__version__,
        description=(
            "Keras 3 model.export(dir) SavedModel (no Keras metadata): GRU 'enc' 3->5 (unroll=True, "
            "reset_after=True), Dense 'proj'; every weight is saved twice, under variables/N and the "
            "_all_variables/N mirror"
        ),
    )


# ---------------------------------------------------------------- TF1: V1 and frozen graph


def _tf1_cell(name, input_size, units) -> dict:
    return {
        "name": name, "layout": "tf-gru-cell", "input_size": input_size, "units": units,
        "reset_after": False, "dtype": "float32",
        "tensors": {role: "%s/%s" % (name, role) for role in TF1_ROLES},
    }


def _tf1_gru_graph(tf, input_size, units, seed, device_fn=None, partitioner=None):
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        tf.keras.utils.set_random_seed(seed)
        v1.set_random_seed(seed)
        x = v1.placeholder(tf.float32, [None, None, input_size], name="x")
        bias_init = v1.random_uniform_initializer(-1.0, 1.5, seed=seed)
        with g.device(device_fn), v1.variable_scope("", partitioner=partitioner):
            cell = v1.nn.rnn_cell.GRUCell(units, bias_initializer=bias_init)
            outputs, state = v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
    return g, x, outputs, state


def _v1_saver(tf, **kwargs):
    v1 = tf.compat.v1
    return v1.train.Saver(write_version=v1.train.SaverDef.V1, save_relative_paths=True, **kwargs)


def gen_tf1_v1_checkpoint(folder: Path) -> dict:
    tf = _tf()
    v1 = tf.compat.v1
    g, x, outputs, _ = _tf1_gru_graph(tf, 3, 4, 211)
    with g.as_default():
        # A Dense projection whose kernel is partitioned in two along axis 0 (V1 slices), a
        # global step (int64 scalar) and a string variable (string_val).
        with v1.variable_scope("proj", partitioner=v1.fixed_size_partitioner(2)):
            # no op seed: each partition's initializer then draws its own values (from the graph seed)
            kernel = v1.get_variable("kernel", [4, 2], initializer=v1.random_uniform_initializer(-1, 1))
        bias = v1.get_variable("proj/bias", [2], initializer=v1.random_uniform_initializer(-1, 1, seed=6))
        _ = tf.matmul(outputs[:, -1], kernel) + bias
        v1.train.get_or_create_global_step()
        tag = v1.get_variable("tag", initializer=tf.constant([b"gru", b"v1 \x00checkpoint"]), trainable=False)
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(outputs, {x: np.random.default_rng(211).standard_normal((2, SEQ_LEN, 3)).astype(np.float32)})
            prefix = str(folder / "model.ckpt")
            _v1_saver(tf).save(sess, prefix, write_meta_graph=False)
            values = {v.op.name: v for v in v1.global_variables()}
            assert "proj/kernel/part_0" in values, sorted(values)
            part_0, part_1 = sess.run([values["proj/kernel/part_0"], values["proj/kernel/part_1"]])
            assert not np.array_equal(part_0, part_1)
            assert sess.run(tag).tolist() == [b"gru", b"v1 \x00checkpoint"]
    _state_file(folder, "model.ckpt")
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint", "model.ckpt"]
    reader = tf.train.load_checkpoint(prefix)
    keys = set(reader.get_variable_to_shape_map())
    cell = _tf1_cell("rnn/gru_cell", 3, 4)
    others = sorted(keys - set(cell["tensors"].values()))
    assert others == ["global_step", "proj/bias", "proj/kernel", "tag"], others
    return {
        "name": folder.name,
        "path": "%s/model.ckpt" % folder.name,
        "format": "tf-checkpoint-v1",
        "description": (
            "Legacy V1 checkpoint (one SSTable file) from Saver(write_version=V1): GRUCell(4) on input 3 via "
            "dynamic_rnn, a Dense kernel partitioned in 2 along axis 0 (proj/kernel [4, 2]), proj/bias, "
            "global_step (int64) and a string variable 'tag'"
        ),
        "cells": [cell],
        "other_tensors": others,
        "partitioned_tensors": {"proj/kernel": [[0, 2], [2, 2]]},
    }


def gen_tf1_v1_sharded(folder: Path) -> dict:
    tf = _tf()
    v1 = tf.compat.v1

    def device_fn(op):
        return "/cpu:1" if "candidate" in op.name else "/cpu:0"

    g, x, outputs, _ = _tf1_gru_graph(tf, 5, 3, 212, device_fn=device_fn)
    with g.as_default():
        with v1.Session(graph=g, config=v1.ConfigProto(device_count={"CPU": 2})) as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(outputs, {x: np.random.default_rng(212).standard_normal((2, SEQ_LEN, 5)).astype(np.float32)})
            prefix = str(folder / "model.ckpt")
            _v1_saver(tf, sharded=True).save(sess, prefix, write_meta_graph=False)
    _state_file(folder, "model.ckpt")
    shards = sorted(p.name for p in folder.iterdir() if p.name != "checkpoint")
    assert shards == ["model.ckpt-00000-of-00002", "model.ckpt-00001-of-00002"], shards
    # TF's V1 reader takes a file pattern; a bare prefix finds no sharded files.
    reader = tf.train.load_checkpoint(prefix + "-?????-of-?????")
    cell = _tf1_cell("rnn/gru_cell", 5, 3)
    assert set(reader.get_variable_to_shape_map()) == set(cell["tensors"].values())
    return {
        "name": folder.name,
        "path": "%s/model.ckpt" % folder.name,
        "format": "tf-checkpoint-v1",
        "description": (
            "Legacy V1 checkpoint saved with Saver(sharded=True, write_version=V1) over two CPU devices: "
            "GRUCell(3) on input 5, gates in model.ckpt-00000-of-00002, candidate in model.ckpt-00001-of-00002"
        ),
        "cells": [cell],
        "other_tensors": [],
        "shards": shards,
    }


def gen_tf1_frozen_graph(folder: Path) -> dict:
    tf = _tf()
    v1 = tf.compat.v1
    g, x, outputs, state = _tf1_gru_graph(tf, 2, 5, 213)
    with g.as_default():
        out = tf.identity(state, name="final_state")
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            frozen = v1.graph_util.convert_variables_to_constants(sess, g.as_graph_def(), [out.op.name])
            weights = {v.op.name: sess.run(v) for v in v1.global_variables()}
            xs = np.random.default_rng(213).standard_normal((2, SEQ_LEN, 2)).astype(np.float32)
            expected = sess.run(out, {x: xs})
    (folder / "frozen.pb").write_bytes(frozen.SerializeToString())
    # The frozen graph computes the same thing, from constants named like the variables.
    consts = {n.name: n for n in frozen.node if n.op == "Const"}
    g2 = tf.Graph()
    with g2.as_default():
        tf.import_graph_def(frozen, name="")
        with v1.Session(graph=g2) as sess:
            np.testing.assert_array_equal(sess.run("final_state:0", {"x:0": xs}), expected)
    for name, value in weights.items():
        np.testing.assert_array_equal(tf.make_ndarray(consts[name].attr["value"].tensor), value)
    cell = _tf1_cell("rnn/gru_cell", 2, 5)
    return {
        "name": folder.name,
        "path": "%s/frozen.pb" % folder.name,
        "format": "tf-frozen-graph",
        "description": (
            "TF1 frozen GraphDef (graph_util.convert_variables_to_constants) of GRUCell(5) on input 2 via "
            "dynamic_rnn; the weights are Const nodes named like the variables, among the graph's other constants"
        ),
        "cells": [cell],
        "other_tensors": sorted(set(consts) - set(cell["tensors"].values())),
    }


GENERATORS = {
    "tf2_keras3_checkpoint": gen_tf2_keras3_checkpoint,
    "tf2_tf_keras_checkpoint": gen_tf2_tf_keras_checkpoint,
    "tf2_tf_keras_saved_model": gen_tf2_tf_keras_saved_model,
    "tf2_keras3_export": gen_tf2_keras3_export,
    "tf1_v1_checkpoint": gen_tf1_v1_checkpoint,
    "tf1_v1_sharded": gen_tf1_v1_sharded,
    "tf1_frozen_graph": gen_tf1_frozen_graph,
}
