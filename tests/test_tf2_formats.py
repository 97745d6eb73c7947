"""Native readers for TF2 object checkpoints, SavedModels, V1 checkpoints and frozen GraphDefs.

The samples come from ``sample_checkpoints/samples_tf2.py`` (see manifest.json). Every tensor
gruinspect reads is compared bit for bit with what TensorFlow itself returns: its checkpoint
reader (by the original checkpoint key), the variables of the loaded SavedModel (by name), and
the Const values of the imported GraphDef. ``list`` must name model weights by the user's layer
paths and must not import TensorFlow.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gruinspect.blocks import read_blocks
from gruinspect.errors import GruInspectError
from gruinspect.formats import _object_graph, _tensor_proto, detect, graphdef, open_store, saved_model, tf_v1
from gruinspect.inventory import list_cells
from gruinspect.layouts._common import is_optimizer_slot

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_checkpoints"
FORMATS = {"tf-object-checkpoint", "tf-saved-model", "tf-checkpoint-v1", "tf-frozen-graph"}
READER_OF = {"tf-object-checkpoint": "tf_bundle", "tf-saved-model": "saved_model",
             "tf-checkpoint-v1": "tf_v1", "tf-frozen-graph": "graphdef"}


def _entries():
    manifest = SAMPLES / "manifest.json"
    if not manifest.exists():
        return []
    return [e for e in json.loads(manifest.read_text())["samples"] if e["format"] in FORMATS]


ENTRIES = _entries()
IDS = [e["name"] for e in ENTRIES]
# The Keras GRU layout is written separately; until it lands, Keras cells cannot be found.
def _path(entry) -> str:
    return str(SAMPLES / entry["path"])


def _expected_names(entry) -> set:
    cells = {t for c in entry["cells"] for t in c["tensors"].values()}
    return cells | set(entry["other_tensors"]) | set(entry.get("optimizer_slots", ()))


def assert_same(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    theirs = np.asarray(theirs)
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    if theirs.dtype == object or ours.dtype == object:
        assert ours.dtype == object, what
        assert [bytes(b) for b in ours.reshape(-1)] == [bytes(b) for b in theirs.reshape(-1)], what
        return
    assert ours.dtype == theirs.dtype, (what, ours.dtype, theirs.dtype)
    assert ours.tobytes() == theirs.tobytes(), what


# ------------------------------------------------------------------ samples vs TensorFlow


def test_samples_present():
    names = {e["name"] for e in ENTRIES}
    assert {"tf2_keras3_checkpoint", "tf2_tf_keras_checkpoint", "tf2_tf_keras_saved_model",
            "tf2_keras3_export", "tf1_v1_checkpoint", "tf1_v1_sharded", "tf1_frozen_graph"} <= names


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_detect_and_names(entry):
    path = _path(entry)
    reader, fmt = detect(path)
    assert reader.__name__.rsplit(".", 1)[1] == READER_OF[entry["format"]]
    assert fmt == entry["format"]
    with open_store(path) as store:
        assert store.format == entry["format"]
        assert set(store.infos()) == _expected_names(entry)
        for name in store.infos():
            assert "layer_with_weights" not in name or is_optimizer_slot(name), name
            assert "_trainable_variables" not in name, name
        for name in entry.get("optimizer_slots", ()):
            assert is_optimizer_slot(name), name
        for cell in entry["cells"]:
            for name in cell["tensors"].values():
                assert not is_optimizer_slot(name), name
        if "checkpoint_keys" in entry:
            assert store.metadata["checkpoint_keys"] == entry["checkpoint_keys"]


def _tf_reader(tf, entry):
    path = _path(entry)
    if entry["format"] == "tf-saved-model":
        return tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    if entry.get("shards"):
        return tf.train.load_checkpoint(path + "-?????-of-?????")
    return tf.train.load_checkpoint(path)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e["format"] != "tf-frozen-graph"],
                         ids=[e["name"] for e in ENTRIES if e["format"] != "tf-frozen-graph"])
def test_every_tensor_equals_tensorflow_reader(entry):
    tf = pytest.importorskip("tensorflow")
    reader = _tf_reader(tf, entry)
    keys = entry.get("checkpoint_keys", {})
    with open_store(_path(entry)) as store:
        assert set(keys.get(n, n) for n in store.infos()) == set(reader.get_variable_to_shape_map())
        for name, info in store.infos().items():
            ours = store.read(name)
            key = keys.get(name, name)
            if name in entry.get("partitioned_tensors", ()) or info.dtype == "string":
                theirs = _restore(tf, entry, key, tf.string if info.dtype == "string" else tf.as_dtype(ours.dtype))
            else:
                theirs = reader.get_tensor(key)
            assert_same(ours, theirs, name)
            assert list(ours.shape) == list(info.shape) and str(ours.dtype) in (info.dtype, "object")


def _restore(tf, entry, key, dtype):
    """One tensor through TensorFlow's restore ops: the checkpoint reader refuses sliced V1
    tensors, and hands strings out as numpy bytes arrays, which drop trailing NUL bytes."""
    path = _path(entry)
    if entry["format"] == "tf-checkpoint-v1":
        pattern = path + ("-?????-of-?????" if entry.get("shards") else "")
        value = tf.raw_ops.Restore(file_pattern=pattern, tensor_name=key, dt=dtype)
    else:
        prefix = os.path.join(path, "variables", "variables") if entry["format"] == "tf-saved-model" else path
        (value,) = tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=[key], shape_and_slices=[""], dtypes=[dtype])
    value = value.numpy()
    if dtype == tf.string:
        value = np.asarray(value, dtype=object)
    return value


def _saved_model_variables(tf, folder):
    """{name: value} of every variable of the SavedModel as TensorFlow restores it."""
    loaded = tf.saved_model.load(folder)
    found, seen, queue = {}, set(), [loaded]
    while queue:
        obj = queue.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, tf.Variable):
            found[obj.name.split(":")[0]] = obj.numpy()
            continue
        children = getattr(obj, "_trackable_children", None)
        if children is not None:
            queue.extend(children().values())
    return found


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e["format"] == "tf-saved-model"],
                         ids=[e["name"] for e in ENTRIES if e["format"] == "tf-saved-model"])
def test_saved_model_variables_equal_loaded_model(entry):
    tf = pytest.importorskip("tensorflow")
    variables = _saved_model_variables(tf, _path(entry))
    with open_store(_path(entry)) as store:
        for cell in entry["cells"]:
            for name in cell["tensors"].values():
                assert name in variables, (name, sorted(variables))
        for name, value in variables.items():
            assert name in store.infos(), (name, sorted(store.infos()))
            assert_same(store.read(name), value, name)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e["format"] == "tf-frozen-graph"],
                         ids=[e["name"] for e in ENTRIES if e["format"] == "tf-frozen-graph"])
def test_frozen_graph_constants_equal_imported_graph(entry):
    tf = pytest.importorskip("tensorflow")
    v1 = tf.compat.v1
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(_path(entry)).read_bytes())
    consts = [n.name for n in graph_def.node if n.op == "Const"]
    g = tf.Graph()
    with g.as_default():
        tf.import_graph_def(graph_def, name="")
        with v1.Session(graph=g) as sess:
            values = sess.run([n + ":0" for n in consts])
    with open_store(_path(entry)) as store:
        assert set(store.infos()) == set(consts)
        for name, value in zip(consts, values):
            assert_same(store.read(name), value, name)


# ------------------------------------------------------------------------- cells and blocks


def _cell_params(entries):
    out = []
    for e in entries:
        for c in e["cells"]:
            out.append(pytest.param(e, c, id="%s:%s" % (e["name"], c["name"])))
    return out


CELLS = _cell_params(ENTRIES)


def _found(inventory, cell):
    wanted = set(cell["tensors"].values())
    matches = [c for c in inventory.cells if set(c.tensors.values()) == wanted]
    assert len(matches) == 1, ([(c.name, sorted(c.tensors.values())) for c in inventory.cells], wanted)
    return matches[0]


@pytest.mark.parametrize("entry,cell", CELLS)
def test_list_finds_cell_under_layer_path(entry, cell):
    inventory = list_cells(_path(entry))
    assert inventory.format == entry["format"]
    found = _found(inventory, cell)
    assert found.name == cell["name"]
    assert found.layout == cell["layout"]
    assert (found.input_size, found.units, found.reset_after, found.dtype) == (
        cell["input_size"], cell["units"], cell["reset_after"], cell["dtype"])
    if cell.get("config_source") == "file":  # tf_keras SavedModel: keras_metadata.pb configs
        assert found.config_source == "file"
        assert (found.activation, found.recurrent_activation) == (cell["activation"], cell["recurrent_activation"])
    elif cell.get("config_source") == "unknown":  # bare checkpoints and Keras 3 exports say nothing
        assert found.activation is None and found.recurrent_activation is None


def _expected_blocks(layout, t, i, h):
    """The blocks of a cell cut from the framework's tensors by the framework's conventions."""
    if layout == "tf-gru-cell":  # docs/conventions.md: gates columns r | u, rows x then h
        G, gb, C, cb = t["gates/kernel"], t["gates/bias"], t["candidate/kernel"], t["candidate/bias"]
        return {
            ("reset", "input_kernel"): G[:i, :h], ("update", "input_kernel"): G[:i, h:],
            ("reset", "recurrent_kernel"): G[i:, :h], ("update", "recurrent_kernel"): G[i:, h:],
            ("candidate", "input_kernel"): C[:i], ("candidate", "recurrent_kernel"): C[i:],
            ("reset", "bias"): gb[:h], ("update", "bias"): gb[h:], ("candidate", "bias"): cb,
        }
    # keras-gru, docs/conventions.md: columns z | r | h
    K, U = t["kernel"], t["recurrent_kernel"]
    gates = {"update": 0, "reset": 1, "candidate": 2}
    out = {}
    for gate, k in gates.items():
        out[(gate, "input_kernel")] = K[:, k * h:(k + 1) * h]
        out[(gate, "recurrent_kernel")] = U[:, k * h:(k + 1) * h]
        if "bias" in t:
            b = t["bias"]
            if b.ndim == 1:
                out[(gate, "bias")] = b[k * h:(k + 1) * h]
            else:
                out[(gate, "bias")] = b[0, k * h:(k + 1) * h]
                out[(gate, "recurrent_bias")] = b[1, k * h:(k + 1) * h]
    return out


def _framework_tensors(tf, entry, cell) -> dict:
    """The cell's fused tensors as TensorFlow reads them, by layout role."""
    if entry["format"] == "tf-frozen-graph":
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(Path(_path(entry)).read_bytes())
        consts = {n.name: n for n in graph_def.node if n.op == "Const"}
        return {role: tf.make_ndarray(consts[n].attr["value"].tensor) for role, n in cell["tensors"].items()}
    reader = _tf_reader(tf, entry)
    keys = entry.get("checkpoint_keys", {})
    return {role: reader.get_tensor(keys.get(n, n)) for role, n in cell["tensors"].items()}


@pytest.mark.parametrize("entry,cell", CELLS)
def test_split_blocks_equal_framework_weights(entry, cell):
    tf = pytest.importorskip("tensorflow")
    framework = _framework_tensors(tf, entry, cell)
    expected = _expected_blocks(cell["layout"], framework, cell["input_size"], cell["units"])
    inventory = list_cells(_path(entry))
    found = _found(inventory, cell)
    with open_store(_path(entry)) as store:
        blocks = read_blocks(store, found)
    assert set(blocks) == set(expected)
    for key, value in expected.items():
        assert_same(blocks[key], np.ascontiguousarray(value), str(key))


def test_list_does_not_import_tensorflow():
    paths = [_path(e) for e in ENTRIES]
    code = (
        "import json, sys\n"
        "from gruinspect.inventory import list_cells\n"
        "out = [[c.name for c in list_cells(p).cells] for p in sys.argv[1:]]\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tf_keras', 'h5py') if m in sys.modules)\n"
        "print(json.dumps({'cells': out, 'heavy': heavy}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["heavy"] == []
    assert [sorted(names) for names in result["cells"]] == [sorted(c["name"] for c in e["cells"]) for e in ENTRIES]


# ------------------------------------------------------------------------- reader details


def test_sniffers_are_strict():
    frozen = SAMPLES / "tf1_frozen_graph" / "frozen.pb"
    tf_keras_sm = SAMPLES / "tf2_tf_keras_saved_model"
    assert graphdef.sniff(str(frozen))
    for other in (tf_keras_sm / "saved_model.pb", tf_keras_sm / "keras_metadata.pb",
                  tf_keras_sm / "fingerprint.pb", tf_keras_sm / "variables" / "variables.index",
                  SAMPLES / "tf1_v1_checkpoint" / "model.ckpt", SAMPLES / "manifest.json"):
        assert not graphdef.sniff(str(other)), other
    assert saved_model.sniff(str(tf_keras_sm)) and saved_model.sniff(str(tf_keras_sm / "saved_model.pb"))
    assert detect(str(tf_keras_sm / "saved_model.pb")).reader.__name__.endswith("saved_model")
    assert not saved_model.sniff(str(SAMPLES / "tf2_keras3_checkpoint"))
    # V1: the file, its folder (checkpoint state file) and one shard all name the checkpoint;
    # a V2 `.index` (same table container) is not a V1 file.
    assert tf_v1.sniff(str(SAMPLES / "tf1_v1_checkpoint"))
    assert tf_v1.locate(str(SAMPLES / "tf1_v1_sharded" / "model.ckpt-00001-of-00002"))[1] == [
        str(SAMPLES / "tf1_v1_sharded" / n) for n in ("model.ckpt-00000-of-00002", "model.ckpt-00001-of-00002")]
    assert not tf_v1.sniff(str(SAMPLES / "tf2_keras3_checkpoint" / "ckpt-1.index"))
    assert detect(str(SAMPLES / "tf1_v1_sharded")) == (tf_v1, "tf-checkpoint-v1")


def test_random_and_truncated_files_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"\x0a\x20" + rng.bytes(200))
    assert not graphdef.sniff(str(junk))
    frozen = (SAMPLES / "tf1_frozen_graph" / "frozen.pb").read_bytes()
    cut = tmp_path / "cut.pb"
    cut.write_bytes(frozen[: len(frozen) // 2])
    with pytest.raises(GruInspectError):
        with open_store(str(cut)) as store:
            for name in store.infos():
                store.read(name)
    v1 = (SAMPLES / "tf1_v1_checkpoint" / "model.ckpt").read_bytes()
    broken = tmp_path / "model.ckpt"
    broken.write_bytes(v1[:-10])
    assert not tf_v1.sniff(str(broken))  # no table magic: not claimed
    flipped = bytearray(v1)
    flipped[len(v1) // 2] ^= 0xFF
    broken.write_bytes(bytes(flipped))
    with pytest.raises(GruInspectError):
        with tf_v1.open(str(broken)) as store:
            for name in store.infos():
                store.read(name)


def test_infos_do_not_read_tensor_data():
    for name in ("tf1_frozen_graph/frozen.pb", "tf1_v1_checkpoint/model.ckpt"):
        with open_store(str(SAMPLES / name)) as store:
            store.infos()
            assert store.bytes_read == 0


def test_object_graph_names_fall_back_to_key_paths():
    def node(children=(), attrs=(), slots=()):
        return _object_graph.TrackableObject(list(children), list(attrs), list(slots))

    value = _object_graph.VALUE_SUFFIX
    nodes = [
        node(children=[(1, "a"), (2, "b"), (3, "c"), (4, "optimizer")]),
        node(attrs=[("VARIABLE_VALUE", "same", "a" + value)]),
        node(attrs=[("VARIABLE_VALUE", "same", "b" + value)]),
        node(attrs=[("VARIABLE_VALUE", "", "c" + value)]),
        node(children=[(5, "iter")], slots=[(1, "m", 6)]),
        node(attrs=[("VARIABLE_VALUE", "Adam/iter", "optimizer/iter" + value)]),
        node(attrs=[("VARIABLE_VALUE", "Adam/same/m", "a/.OPTIMIZER_SLOT/optimizer/m" + value)]),
    ]
    keys = ["a" + value, "b" + value, "c" + value, "optimizer/iter" + value,
            "a/.OPTIMIZER_SLOT/optimizer/m" + value, "other"]
    names = _object_graph.tensor_names(nodes, keys)
    assert names == {
        "a" + value: "a", "b" + value: "b", "c" + value: "c", "optimizer/iter" + value: "optimizer/iter",
        "a/.OPTIMIZER_SLOT/optimizer/m" + value: "a/.OPTIMIZER_SLOT/optimizer/m", "other": "other",
    }
    # a unique full_name wins; an exposed name that equals another key is not used
    nodes[2].attributes[0] = ("VARIABLE_VALUE", "other", "b" + value)
    nodes[1].attributes[0] = ("VARIABLE_VALUE", "layer/kernel", "a" + value)
    names = _object_graph.tensor_names(nodes, keys)
    assert names["a" + value] == "layer/kernel" and names["b" + value] == "b" + value


def test_tf1_saved_model_keeps_variable_names(tmp_path):
    # A TF1 SavedModel (simple_save) has no object graph: its bundle keys are the TF1 names.
    tf = pytest.importorskip("tensorflow")
    v1 = tf.compat.v1
    rng = np.random.default_rng(3)
    values = {"rnn/gru_cell/gates/kernel": rng.standard_normal((5, 4)), "rnn/gru_cell/gates/bias": rng.standard_normal(4),
              "rnn/gru_cell/candidate/kernel": rng.standard_normal((5, 2)), "rnn/gru_cell/candidate/bias": rng.standard_normal(2)}
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        variables = [v1.get_variable(n, initializer=v.astype(np.float32)) for n, v in values.items()]
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            v1.saved_model.simple_save(sess, str(tmp_path / "sm"), {"x": x}, {"y": tf.identity(variables[0])})
    inventory = list_cells(str(tmp_path / "sm"))
    assert inventory.format == "tf-saved-model"
    assert [(c.name, c.layout, c.input_size, c.units) for c in inventory.cells] == [("rnn/gru_cell", "tf-gru-cell", 3, 2)]
    with open_store(str(tmp_path / "sm" / "saved_model.pb")) as store:
        for name, value in values.items():
            assert_same(store.read(name), value.astype(np.float32), name)


def test_optimizer_state_under_the_model_is_recognised():
    # tf.train.Checkpoint(model=keras3_model): the optimizer hangs off the model, its state is
    # keyed `model/optimizer/...`, and the weights it trains are reached first through it.
    def node(children=(), attrs=()):
        return _object_graph.TrackableObject(list(children), list(attrs), [])

    value = _object_graph.VALUE_SUFFIX
    nodes = [
        node(children=[(1, "model")]),
        node(children=[(2, "optimizer"), (3, "_operations")]),
        node(children=[(4, "_iterations"), (5, "_trainable_variables"), (6, "_variables")]),
        node(children=[(7, "0")]),
        node(attrs=[("VARIABLE_VALUE", "adam/iteration", "model/optimizer/_iterations" + value)]),
        node(children=[(7, "0")]),
        node(children=[(8, "0")]),
        node(attrs=[("VARIABLE_VALUE", "gru/gru_cell/kernel", "model/optimizer/_trainable_variables/0" + value)]),
        node(attrs=[("VARIABLE_VALUE", "adam/gru_gru_cell_kernel_momentum", "model/optimizer/_variables/0" + value)]),
    ]
    keys = [a[2] for n in nodes for a in n.attributes]
    names = _object_graph.tensor_names(nodes, keys)
    assert sorted(names.values()) == ["gru/gru_cell/kernel", "model/optimizer/_iterations", "model/optimizer/_variables/0"]
    assert [is_optimizer_slot(n) for n in sorted(names.values())] == [False, True, True]


def test_duplicate_full_names_in_a_real_checkpoint(tmp_path):
    tf = pytest.importorskip("tensorflow")
    checkpoint = tf.train.Checkpoint(first=tf.Variable([1.0, 2.0], name="dup"),
                                     second=tf.Variable([3.0], name="dup"),
                                     third=tf.Variable(4.0, name="gru/kernel"))
    prefix = checkpoint.write(str(tmp_path / "ckpt"))
    with open_store(prefix) as store:
        assert store.format == "tf-object-checkpoint"
        assert set(store.infos()) == {"first", "second", "gru/kernel", "_CHECKPOINTABLE_OBJECT_GRAPH"}
        assert store.read("second").tolist() == [3.0]
        assert store.read("gru/kernel") == np.float32(4.0)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "uint8", "int8", "int16",
                                   "uint16", "float16", "bool", "complex64", "complex128", "string",
                                   "uint32", "uint64"])
def test_tensor_proto_decoding_matches_tensorflow(dtype):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(1)
    if dtype == "string":
        values = np.array([b"a", b"", b"\x00\xff"], dtype=object).reshape(3, 1)
    elif dtype == "bool":
        values = rng.integers(0, 2, (2, 3)).astype(bool)
    elif dtype.startswith("complex"):
        values = (rng.standard_normal((2, 2)) + 1j * rng.standard_normal((2, 2))).astype(dtype)
    elif dtype.startswith(("float",)):
        values = rng.standard_normal((2, 3)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        values = np.array([info.min, info.max, 0, 1, -1 if info.min < 0 else 7, 3], dtype=dtype).reshape(2, 3)
    for proto in (tf.make_tensor_proto(values),                                   # tensor_content
                  tf.make_tensor_proto(values.reshape(-1)[:1], shape=values.shape),  # splat
                  _typed_proto(tf, values)):                                       # typed fields
        if proto is None:
            continue
        ours = _tensor_proto.decode(memoryview(proto.SerializeToString()), dtype, values.shape)
        assert_same(ours, tf.make_ndarray(proto), dtype)


def _typed_proto(tf, values):
    """A TensorProto holding ``values`` in its typed repeated field (packed), as V1 writes them."""
    from tensorflow.core.framework import tensor_pb2

    proto = tensor_pb2.TensorProto()
    proto.CopyFrom(tf.make_tensor_proto(values))
    flat = values.reshape(-1)
    if not proto.tensor_content:
        return proto
    proto.tensor_content = b""
    kind = values.dtype
    if kind == np.float32:
        proto.float_val.extend(flat.tolist())
    elif kind == np.float64:
        proto.double_val.extend(flat.tolist())
    elif kind == np.float16:
        proto.half_val.extend(flat.view(np.uint16).tolist())
    elif kind == np.int64:
        proto.int64_val.extend(flat.tolist())
    elif kind == np.uint32:
        proto.uint32_val.extend(flat.tolist())
    elif kind == np.uint64:
        proto.uint64_val.extend(flat.tolist())
    elif kind == np.bool_:
        proto.bool_val.extend(flat.tolist())
    elif kind == np.complex64:
        proto.scomplex_val.extend(flat.view(np.float32).tolist())
    elif kind == np.complex128:
        proto.dcomplex_val.extend(flat.view(np.float64).tolist())
    else:
        proto.int_val.extend(flat.astype(np.int64).tolist())
    return proto


def test_unpacked_repeated_values_are_accepted():
    # float_val = 5 written unpacked (tag 0x2d, fixed32 each) and int_val = 7 unpacked (tag 0x38)
    floats = b"".join(b"\x2d" + np.float32(v).tobytes() for v in (1.5, -2.0))
    assert _tensor_proto.decode(memoryview(floats), "float32", (2,)).tolist() == [1.5, -2.0]
    ints = b"\x38\x05\x38" + b"\xfd\xff\xff\xff\xff\xff\xff\xff\xff\x01"
    assert _tensor_proto.decode(memoryview(ints), "int32", (2,)).tolist() == [5, -3]
