"""Generators for the TF1-era sample checkpoints (TensorFlow checkpoint V2 bundles).

Every generator has the signature ``generate(folder: pathlib.Path) -> dict``. The driver
(``make_samples.py``) hands it an empty folder named after the sample, and the generator writes
``model.ckpt.index``, ``model.ckpt.data-*`` and the ``checkpoint`` state file there, then returns
its manifest entry (see README.md for the entry shape).

All graphs are built with ``tf.compat.v1`` in graph mode and saved with ``tf.compat.v1.train.Saver``
(V2 format, no ``.meta`` file, relative paths in ``checkpoint``). Everything is seeded, so running
the generators twice on the same TensorFlow build gives the same tensors.

TensorFlow must be imported with ``TF_USE_LEGACY_KERAS=1`` so that ``tf.compat.v1.nn.rnn_cell``
and ``tf.compat.v1.layers`` exist; this module sets it (``os.environ.setdefault``) before the
lazy import.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

PREFIX = "model.ckpt"
FORMAT = "tf-checkpoint-v2"

# Canonical TF >= 1.3 GRUCell leaf names (role -> variable name below the cell scope).
GRU_CELL_ROLES = ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")
CUDNN_ROLES = (
    "gates/kernel",
    "gates/bias",
    "candidate/input_projection/kernel",
    "candidate/input_projection/bias",
    "candidate/hidden_projection/kernel",
    "candidate/hidden_projection/bias",
)
# TF 1.0 - 1.2 leaf names.
R10_LEAVES = {
    "gates/kernel": "gates/weights",
    "gates/bias": "gates/biases",
    "candidate/kernel": "candidate/weights",
    "candidate/bias": "candidate/biases",
}
# TF <= 0.12 leaf names.
R012_LEAVES = {
    "gates/kernel": "Gates/Linear/Matrix",
    "gates/bias": "Gates/Linear/Bias",
    "candidate/kernel": "Candidate/Linear/Matrix",
    "candidate/bias": "Candidate/Linear/Bias",
}


# --------------------------------------------------------------------------- helpers


def _tf():
    """Import TensorFlow lazily, with the legacy (tf_keras) Keras that TF1 cells need."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def _save(sess, folder: Path, var_list=None, sharded=False) -> str:
    """Save with a TF1 Saver into folder/model.ckpt; returns the prefix (as a string)."""
    tf = _tf()
    saver = tf.compat.v1.train.Saver(
        var_list=var_list,
        sharded=sharded,
        save_relative_paths=True,
        write_version=tf.compat.v1.train.SaverDef.V2,
    )
    prefix = str(folder / PREFIX)
    saver.save(sess, prefix, write_meta_graph=False)
    # Saver already writes relative paths without timestamps; pin the content anyway so the
    # file is byte-identical between runs.
    (folder / "checkpoint").write_text(
        'model_checkpoint_path: "%s"\nall_model_checkpoint_paths: "%s"\n' % (PREFIX, PREFIX)
    )
    return prefix


def _entry(folder: Path, description: str, cells, other_tensors=(), **extra) -> dict:
    entry = {
        "name": folder.name,
        "path": "%s/%s" % (folder.name, PREFIX),
        "format": FORMAT,
        "description": description,
        "cells": list(cells),
        "other_tensors": sorted(other_tensors),
    }
    entry.update(extra)
    return entry


def _cell(name, input_size, units, dtype, layout="tf-gru-cell", leaves=None, reset_after=False):
    """A manifest cell; leaves maps canonical role -> leaf name (default: canonical names)."""
    roles = CUDNN_ROLES if layout == "tf-cudnn-compatible-gru-cell" else GRU_CELL_ROLES
    leaves = leaves or {}
    return {
        "name": name,
        "layout": layout,
        "input_size": int(input_size),
        "units": int(units),
        "reset_after": bool(reset_after),
        "dtype": np.dtype(dtype).name,
        "tensors": {role: "%s/%s" % (name, leaves.get(role, role)) for role in roles},
    }


def _var_key(var) -> str:
    """Checkpoint key a Saver uses for a plain variable (its op name)."""
    return var.op.name


def _seed(tf, seed):
    """Seed everything a graph's initializers draw from.

    The graph seed alone is not enough: tf_keras' default initializers for the legacy cells
    (glorot_uniform for GRUCell/LSTMCell/dense kernels) draw from Keras' own seed generator,
    which tf.keras.utils.set_random_seed seeds (along with Python's and numpy's RNGs).
    Call inside ``with graph.as_default()``.
    """
    tf.keras.utils.set_random_seed(seed)
    tf.compat.v1.set_random_seed(seed)


def _random_bias_init(tf, seed):
    # GRUCell's default biases are constant (1.0 for gates, 0.0 for the candidate), which would
    # make bias block naming unverifiable; use random biases so every block is distinguishable.
    return tf.compat.v1.random_uniform_initializer(-1.0, 1.5, seed=seed)


def _run_rnn_once(sess, x_ph, outputs, input_size, dtype, seed):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((2, 5, input_size)).astype(dtype)
    out = sess.run(outputs, {x_ph: xs})
    for o in out if isinstance(out, (tuple, list)) else [out]:
        assert np.all(np.isfinite(o)), "RNN produced non-finite output"


def _gru_cells_from_graph(scope_prefix, vars_):
    """{canonical role: variable} for the GRUCell variables whose op name starts with scope_prefix."""
    found = {}
    for v in vars_:
        name = _var_key(v)
        if name.startswith(scope_prefix + "/"):
            found[name[len(scope_prefix) + 1 :]] = v
    return found


# --------------------------------------------------------------- bundle index (self-check)


def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _block_entries(contents):
    num_restarts = struct.unpack_from("<I", contents, len(contents) - 4)[0]
    end = len(contents) - 4 - 4 * num_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(contents, pos)
        non_shared, pos = _varint(contents, pos)
        value_len, pos = _varint(contents, pos)
        key = key[:shared] + contents[pos : pos + non_shared]
        pos += non_shared
        yield key, contents[pos : pos + value_len]
        pos += value_len


def bundle_index(prefix):
    """(header, {key: BundleEntryProto}) of a bundle, keys as bytes (slice keys included).

    Used only to check that the samples really contain what they claim (shards, slices);
    gruinspect's own reader lives in gruinspect/formats.
    """
    _tf()
    from tensorflow.core.protobuf import tensor_bundle_pb2

    data = Path(str(prefix) + ".index").read_bytes()
    footer = data[-48:]
    assert footer[-8:] == bytes.fromhex("57fb808b247547db"), "bad table magic"
    _, pos = _varint(footer, 0)
    _, pos = _varint(footer, pos)
    idx_off, pos = _varint(footer, pos)
    idx_size, pos = _varint(footer, pos)

    def block(off, size):
        assert data[off + size] == 0, "compressed block"
        return data[off : off + size]

    header, entries = None, {}
    for _, handle in _block_entries(block(idx_off, idx_size)):
        off, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        for key, value in _block_entries(block(off, size)):
            if key == b"":
                header = tensor_bundle_pb2.BundleHeaderProto.FromString(value)
            else:
                entries[key] = tensor_bundle_pb2.BundleEntryProto.FromString(value)
    return header, entries


# ------------------------------------------------------------------------ generators


def gen_tf1_gru_single(folder: Path) -> dict:
    tf = _tf()
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        _seed(tf, 101)
        x = v1.placeholder(tf.float32, [None, None, 3], name="x")
        cell = v1.nn.rnn_cell.GRUCell(4)
        outputs, _ = v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        global_step = v1.train.get_or_create_global_step()
        loss = tf.reduce_mean(tf.square(outputs - 0.5))
        train = v1.train.AdamOptimizer(0.05).minimize(loss, global_step=global_step)
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            xs = np.random.default_rng(1).standard_normal((2, 5, 3)).astype(np.float32)
            sess.run(train, {x: xs})
            assert sess.run(global_step) == 1
            _save(sess, folder)
        keys = [_var_key(v) for v in v1.global_variables()]
    slots = sorted(k for k in keys if k.endswith("/Adam") or k.endswith("/Adam_1"))
    return _entry(
        folder,
        "GRUCell(4) on input 3 via dynamic_rnn, one Adam step (Adam slots, beta powers, global_step)",
        [_cell("rnn/gru_cell", 3, 4, np.float32)],
        other_tensors=["global_step", "beta1_power", "beta2_power"],
        optimizer_slots=slots,
    )


def gen_tf1_multi_rnn(folder: Path) -> dict:
    tf = _tf()
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        _seed(tf, 102)
        x = v1.placeholder(tf.float32, [None, None, 4], name="x")
        cells = [
            v1.nn.rnn_cell.GRUCell(5, bias_initializer=_random_bias_init(tf, 1)),
            v1.nn.rnn_cell.GRUCell(3, bias_initializer=_random_bias_init(tf, 2)),
        ]
        outputs, _ = v1.nn.dynamic_rnn(v1.nn.rnn_cell.MultiRNNCell(cells), x, dtype=tf.float32)
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            _run_rnn_once(sess, x, outputs, 4, np.float32, 2)
            _save(sess, folder)
    return _entry(
        folder,
        "MultiRNNCell([GRUCell(5), GRUCell(3)]) on input 4 (layers of different width)",
        [
            _cell("rnn/multi_rnn_cell/cell_0/gru_cell", 4, 5, np.float32),
            _cell("rnn/multi_rnn_cell/cell_1/gru_cell", 5, 3, np.float32),
        ],
    )


def gen_tf1_bidirectional(folder: Path) -> dict:
    tf = _tf()
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        _seed(tf, 103)
        x = v1.placeholder(tf.float32, [None, None, 3], name="x")
        fw = v1.nn.rnn_cell.GRUCell(4, bias_initializer=_random_bias_init(tf, 3))
        bw = v1.nn.rnn_cell.GRUCell(4, bias_initializer=_random_bias_init(tf, 4))
        outputs, _ = v1.nn.bidirectional_dynamic_rnn(fw, bw, x, dtype=tf.float32)
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            _run_rnn_once(sess, x, list(outputs), 3, np.float32, 3)
            _save(sess, folder)
    return _entry(
        folder,
        "bidirectional_dynamic_rnn with fw GRUCell(4) and bw GRUCell(4) on input 3",
        [
            _cell("bidirectional_rnn/fw/gru_cell", 3, 4, np.float32),
            _cell("bidirectional_rnn/bw/gru_cell", 3, 4, np.float32),
        ],
    )


def _single_dtype(folder: Path, dtype, input_size, units, seed, description) -> dict:
    tf = _tf()
    v1 = tf.compat.v1
    tf_dtype = tf.as_dtype(dtype)
    g = tf.Graph()
    with g.as_default():
        _seed(tf, seed)
        x = v1.placeholder(tf_dtype, [None, None, input_size], name="x")
        cell = v1.nn.rnn_cell.GRUCell(
            units, dtype=tf_dtype, bias_initializer=_random_bias_init(tf, seed)
        )
        outputs, _ = v1.nn.dynamic_rnn(cell, x, dtype=tf_dtype)
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            _run_rnn_once(sess, x, outputs, input_size, dtype, seed)
            _save(sess, folder)
    return _entry(folder, description, [_cell("rnn/gru_cell", input_size, units, dtype)])


def gen_tf1_float16(folder: Path) -> dict:
    return _single_dtype(folder, np.float16, 3, 4, 104, "GRUCell(4, dtype=float16) on input 3")


def gen_tf1_float64(folder: Path) -> dict:
    return _single_dtype(folder, np.float64, 2, 3, 105, "GRUCell(3, dtype=float64) on input 2")


def _r012_scope(scope: str) -> str:
    """rnn/multi_rnn_cell/cell_0/gru_cell -> RNN/MultiRNNCell/Cell0/GRUCell."""
    parts = []
    for part in scope.split("/"):
        if part == "rnn":
            parts.append("RNN")
        elif part == "multi_rnn_cell":
            parts.append("MultiRNNCell")
        elif part.startswith("cell_"):
            parts.append("Cell" + part[len("cell_") :])
        elif part == "gru_cell":
            parts.append("GRUCell")
        else:
            parts.append(part)
    return "/".join(parts)


def _legacy_names(folder: Path, leaves, scope_map, with_multi, seed, description) -> dict:
    """Real GRUCell values saved under legacy variable names (Saver(var_list={name: var}))."""
    tf = _tf()
    v1 = tf.compat.v1
    g = tf.Graph()
    specs = [("rnn/gru_cell", 3, 4)]
    with g.as_default():
        _seed(tf, seed)
        x = v1.placeholder(tf.float32, [None, None, 3], name="x")
        cell = v1.nn.rnn_cell.GRUCell(4, bias_initializer=_random_bias_init(tf, seed))
        outputs = [v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)[0]]
        x2 = None
        if with_multi:
            x2 = v1.placeholder(tf.float32, [None, None, 2], name="x2")
            multi = v1.nn.rnn_cell.MultiRNNCell(
                [
                    v1.nn.rnn_cell.GRUCell(5, bias_initializer=_random_bias_init(tf, seed + 1)),
                    v1.nn.rnn_cell.GRUCell(3, bias_initializer=_random_bias_init(tf, seed + 2)),
                ]
            )
            outputs.append(v1.nn.dynamic_rnn(multi, x2, dtype=tf.float32)[0])
            specs += [
                ("rnn/multi_rnn_cell/cell_0/gru_cell", 2, 5),
                ("rnn/multi_rnn_cell/cell_1/gru_cell", 5, 3),
            ]
        var_list, cells = {}, []
        all_vars = v1.global_variables()
        for scope, input_size, units in specs:
            found = _gru_cells_from_graph(scope, all_vars)
            assert sorted(found) == sorted(GRU_CELL_ROLES), found
            new_scope = scope_map(scope)
            for role, var in found.items():
                var_list["%s/%s" % (new_scope, leaves[role])] = var
            cells.append(_cell(new_scope, input_size, units, np.float32, leaves=leaves))
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            _run_rnn_once(sess, x, outputs[0], 3, np.float32, seed)
            if with_multi:
                _run_rnn_once(sess, x2, outputs[1], 2, np.float32, seed + 1)
            _save(sess, folder, var_list=var_list)
    return _entry(folder, description, cells)


def gen_tf1_legacy_r012(folder: Path) -> dict:
    return _legacy_names(
        folder,
        R012_LEAVES,
        _r012_scope,
        True,
        106,
        "TF <= 0.12 names (RNN/GRUCell/Gates/Linear/Matrix ...; plus RNN/MultiRNNCell/Cell<k>/GRUCell), "
        "real GRUCell values",
    )


def gen_tf1_legacy_r10(folder: Path) -> dict:
    return _legacy_names(
        folder,
        R10_LEAVES,
        lambda scope: scope,
        False,
        107,
        "TF 1.0-1.2 names (rnn/gru_cell/gates/weights, gates/biases, candidate/weights, "
        "candidate/biases), real GRUCell values",
    )


def _block_cell(folder: Path, input_size, units, swapped, seed, description) -> dict:
    tf = _tf()
    v1 = tf.compat.v1
    rng = np.random.default_rng(seed)
    rows = input_size + units
    w_ru = (0.5 * rng.standard_normal((rows, 2 * units))).astype(np.float32)
    b_ru = (1.0 + 0.2 * rng.standard_normal(2 * units)).astype(np.float32)
    w_c = (0.5 * rng.standard_normal((rows, units))).astype(np.float32)
    b_c = (0.2 * rng.standard_normal(units)).astype(np.float32)
    # V1 LayerRNNCell release stored the gate kernel as "w_c" and the candidate kernel as "w_ru".
    names = {"gates/kernel": "w_c", "candidate/kernel": "w_ru"} if swapped else {
        "gates/kernel": "w_ru",
        "candidate/kernel": "w_c",
    }
    names.update({"gates/bias": "b_ru", "candidate/bias": "b_c"})
    values = {"gates/kernel": w_ru, "gates/bias": b_ru, "candidate/kernel": w_c, "candidate/bias": b_c}
    g = tf.Graph()
    with g.as_default():
        with v1.variable_scope("rnn/gru_cell"):
            var = {
                role: v1.get_variable(names[role], initializer=values[role]) for role in values
            }
        xs = rng.standard_normal((2, input_size)).astype(np.float32)
        hs = rng.standard_normal((2, units)).astype(np.float32)
        step = tf.raw_ops.GRUBlockCell(
            x=xs,
            h_prev=hs,
            w_ru=var["gates/kernel"],
            w_c=var["candidate/kernel"],
            b_ru=var["gates/bias"],
            b_c=var["candidate/bias"],
        )
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            h = sess.run(step.h)
            assert h.shape == (2, units) and np.all(np.isfinite(h))
            _save(sess, folder)
    return _entry(
        folder,
        description,
        [_cell("rnn/gru_cell", input_size, units, np.float32, layout="tf-gru-block-cell", leaves=names)],
    )


def gen_gru_block_cell(folder: Path) -> dict:
    return _block_cell(
        folder, 3, 4, False, 108,
        "GRUBlockCell (V1 names): w_ru [I+H,2H] gate kernel, b_ru, w_c [I+H,H] candidate kernel, b_c; "
        "random values run through tf.raw_ops.GRUBlockCell",
    )


def gen_gru_block_cell_swapped(folder: Path) -> dict:
    return _block_cell(
        folder, 2, 3, True, 109,
        "GRUBlockCell release with swapped names: w_c holds the [I+H,2H] gate kernel, w_ru the "
        "[I+H,H] candidate kernel",
    )


def gen_cudnn_compatible(folder: Path) -> dict:
    tf = _tf()
    v1 = tf.compat.v1
    rng = np.random.default_rng(110)
    layers = [(3, 5), (5, 4)]
    g = tf.Graph()
    cells = []
    with g.as_default():
        for k, (input_size, units) in enumerate(layers):
            scope = "rnn/multi_rnn_cell/cell_%d/cudnn_compatible_gru_cell" % k
            shapes = {
                "gates/kernel": (input_size + units, 2 * units),
                "gates/bias": (2 * units,),
                "candidate/input_projection/kernel": (input_size, units),
                "candidate/input_projection/bias": (units,),
                "candidate/hidden_projection/kernel": (units, units),
                "candidate/hidden_projection/bias": (units,),
            }
            with v1.variable_scope(scope):
                for role in CUDNN_ROLES:
                    value = 0.5 * rng.standard_normal(shapes[role])
                    if role == "gates/bias":
                        value += 1.0
                    v1.get_variable(role, initializer=value.astype(np.float32))
            cells.append(
                _cell(scope, input_size, units, np.float32,
                      layout="tf-cudnn-compatible-gru-cell", reset_after=True)
            )
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            _save(sess, folder)
    return _entry(
        folder,
        "CudnnCompatibleGRUCell canonical variables, two layers (3->5, 5->4); random values "
        "written directly (contrib is absent)",
        cells,
    )


def gen_tf1_sharded(folder: Path) -> dict:
    tf = _tf()
    v1 = tf.compat.v1
    g = tf.Graph()

    def device_fn(op):
        # gates (and global_step) on CPU:0, candidate on CPU:1 -> two shards.
        return "/cpu:1" if "candidate" in op.name else "/cpu:0"

    with g.as_default():
        _seed(tf, 111)
        x = v1.placeholder(tf.float32, [None, None, 5], name="x")
        with g.device(device_fn):
            cell = v1.nn.rnn_cell.GRUCell(3, bias_initializer=_random_bias_init(tf, 111))
            outputs, _ = v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
            v1.train.get_or_create_global_step()
        config = v1.ConfigProto(device_count={"CPU": 2})
        with v1.Session(graph=g, config=config) as sess:
            sess.run(v1.global_variables_initializer())
            _run_rnn_once(sess, x, outputs, 5, np.float32, 111)
            prefix = _save(sess, folder, sharded=True)
    header, entries = bundle_index(prefix)
    assert header.num_shards == 2, header
    shard_of = {k.decode(): e.shard_id for k, e in entries.items()}
    assert shard_of["rnn/gru_cell/gates/kernel"] != shard_of["rnn/gru_cell/candidate/kernel"]
    return _entry(
        folder,
        "GRUCell(3) on input 5 saved with Saver(sharded=True) over two CPU devices: header "
        "num_shards=2, gates in one data file, candidate in the other",
        [_cell("rnn/gru_cell", 5, 3, np.float32)],
        other_tensors=["global_step"],
        num_shards=2,
        shards={k: v for k, v in sorted(shard_of.items())},
    )


def gen_tf1_partitioned(folder: Path) -> dict:
    tf = _tf()
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        _seed(tf, 112)
        x = v1.placeholder(tf.float32, [None, None, 3], name="x")
        # GRUCell accepts the scope partitioner: all four variables become PartitionedVariables
        # split along axis 0.
        with v1.variable_scope("", partitioner=v1.fixed_size_partitioner(2)):
            cell = v1.nn.rnn_cell.GRUCell(5, bias_initializer=_random_bias_init(tf, 112))
            outputs, _ = v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        parts = sorted(_var_key(v) for v in v1.global_variables())
        assert "rnn/gru_cell/gates/kernel/part_0" in parts, parts
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            _run_rnn_once(sess, x, outputs, 3, np.float32, 112)
            prefix = _save(sess, folder)
    _, entries = bundle_index(prefix)
    partitioned = {}
    for role in GRU_CELL_ROLES:
        key = "rnn/gru_cell/" + role
        entry = entries[key.encode()]
        assert len(entry.slices) == 2, (key, entry)
        spans = []
        for sl in entry.slices:
            ext = sl.extent[0]
            spans.append([ext.start, ext.length if ext.HasField("length") else -1])
        partitioned[key] = spans
    assert sum(1 for k in entries if k.startswith(b"\x00")) == 8
    return _entry(
        folder,
        "GRUCell(5) on input 3 under variable_scope(partitioner=fixed_size_partitioner(2)): every "
        "variable is stored as a full entry with 2 slices plus 2 slice entries (axis 0)",
        [_cell("rnn/gru_cell", 3, 5, np.float32)],
        partitioned_tensors=partitioned,
    )


def gen_no_gru(folder: Path) -> dict:
    tf = _tf()
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        _seed(tf, 113)
        x = v1.placeholder(tf.float32, [None, None, 3], name="x")
        cell = v1.nn.rnn_cell.LSTMCell(4)
        outputs, _ = v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        logits = v1.layers.dense(outputs, 2)
        v1.train.get_or_create_global_step()
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            _run_rnn_once(sess, x, logits, 3, np.float32, 113)
            _save(sess, folder)
        keys = [_var_key(v) for v in v1.global_variables()]
    return _entry(
        folder,
        "LSTMCell(4) on input 3 plus a dense layer and global_step; no GRU at all",
        [],
        other_tensors=keys,
    )


def _bf16_exact(values):
    return np.asarray(values, dtype=np.float32)


def gen_dtypes_misc(folder: Path) -> dict:
    tf = _tf()
    v1 = tf.compat.v1
    # Values chosen to be exact in every listed dtype (bfloat16 has 8 mantissa bits).
    specs = {
        "dtypes/float16": ("float16", np.array([[1.5, -2.0, 0.25], [65504.0, -0.0009765625, 3.0]], np.float16)),
        "dtypes/bfloat16": ("bfloat16", _bf16_exact([1.5, -2.0, 0.15625, 2.0**100])),
        "dtypes/float32": ("float32", np.array([[0.1, -1.0], [3.5, 1.0e-30]], np.float32)),
        "dtypes/float64": ("float64", np.array([0.1, -2.5, 1.0e300], np.float64)),
        "dtypes/int32": ("int32", np.array(-42, np.int32)),
        "dtypes/int64": ("int64", np.array([1, -2, 2**40], np.int64)),
        "dtypes/bool": ("bool", np.array([True, False, False, True], np.bool_)),
        "dtypes/string": ("string", np.array(["hello".encode(), b"", "w\u00f6rld!".encode()], object)),
        "dtypes/empty_float32": ("float32", np.zeros((0, 3), np.float32)),
        "dtypes/scalar_float32": ("float32", np.array(2.75, np.float32)),
    }
    g = tf.Graph()
    with g.as_default():
        for name, (dtype, value) in specs.items():
            if dtype == "bfloat16":
                init = tf.cast(tf.constant(value), tf.bfloat16)
            else:
                init = tf.constant(value, dtype=tf.as_dtype(dtype))
            v1.Variable(init, name=name)
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            _save(sess, folder)
    info = {}
    for name, (dtype, value) in specs.items():
        if dtype == "string":
            values = [b.decode("utf-8") for b in value.tolist()]
        elif dtype in ("float16", "bfloat16", "float32", "float64"):
            values = value.astype(np.float64).tolist()
        else:
            values = value.tolist()
        info[name] = {"dtype": dtype, "shape": list(value.shape), "values": values}
    return _entry(
        folder,
        "No GRU: one variable per dtype (float16, bfloat16, float32, float64, int32, int64, bool, "
        "string) plus an empty [0,3] and a scalar float32, for reader tests",
        [],
        other_tensors=list(specs),
        tensor_info=info,
    )


# name -> generator, in generation order. The driver imports this.
GENERATORS = {
    "tf1_gru_single": gen_tf1_gru_single,
    "tf1_multi_rnn": gen_tf1_multi_rnn,
    "tf1_bidirectional": gen_tf1_bidirectional,
    "tf1_float16": gen_tf1_float16,
    "tf1_float64": gen_tf1_float64,
    "tf1_legacy_r012": gen_tf1_legacy_r012,
    "tf1_legacy_r10": gen_tf1_legacy_r10,
    "gru_block_cell": gen_gru_block_cell,
    "gru_block_cell_swapped": gen_gru_block_cell_swapped,
    "cudnn_compatible": gen_cudnn_compatible,
    "tf1_sharded": gen_tf1_sharded,
    "tf1_partitioned": gen_tf1_partitioned,
    "no_gru": gen_no_gru,
    "dtypes_misc": gen_dtypes_misc,
}
