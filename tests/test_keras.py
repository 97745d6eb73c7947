"""Keras weight files (Keras 1/2 HDF5, tf-keras, Keras 3 archives/folders/.weights.h5/shards).

For every Keras sample in sample_checkpoints/manifest.json:

* `list` shows the manifest's cells under the user's layer names, with its tensors and formats;
* the split blocks equal the framework's own ``layer.get_weights()`` sliced per docs/conventions.md (Keras GRU)
  (k = 0 update, 1 reset, 2 candidate; bias row 0 input, row 1 recurrent), loaded by Keras 3 or
  tf-keras themselves (the CuDNNGRU and Keras 1 files through tf-keras' own weight converters);
* the explicit numpy GRU (`gruinspect.gru.run`) on those blocks reproduces the framework's own
  GRU layer output (max abs error <= 1e-5, float32), for both reset_after modes and both
  hard_sigmoid definitions (Keras 2 vs Keras 3);
* `list`, `split` and `stats` never import TensorFlow or Keras.

The framework work runs once, in one child process (this file run as a script), which writes
weights, inputs and outputs to an .npz; the tests compare against it. Content detection and bad
inputs go through the CLI in-process.
"""
from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import require_or_skip

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_checkpoints"
KERAS_FORMATS = ("keras-h5", "keras-h5-weights", "keras3-archive", "keras3-folder", "keras3-weights-h5",
                 "keras3-weights-sharded")
GATE_COLUMNS = {"update": 0, "reset": 1, "candidate": 2}  # docs/conventions.md (Keras GRU)


def _manifest() -> list[dict]:
    with open(SAMPLES / "manifest.json", encoding="utf-8") as f:
        return [e for e in json.load(f)["samples"] if e["format"] in KERAS_FORMATS]


ENTRIES = _manifest()
PARAMS = [pytest.param(e, id=e["name"]) for e in ENTRIES]


def _path(entry: dict) -> str:
    return str(SAMPLES / entry["path"])


def _frameworks_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "tf_keras", "keras"))


# --------------------------------------------------------------------------- the oracle child


def _oracle_main(spec_file: str, out_file: str) -> None:
    """Child process: load every sample with its framework and dump weights, inputs and outputs."""
    import warnings

    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(SAMPLES))
    import keras
    import samples_keras
    import tf_keras

    entries = json.loads(Path(spec_file).read_text())
    out = {}
    rng = np.random.default_rng(7)
    for entry in entries:
        name, fmt, path = entry["name"], entry["format"], _path(entry)
        if fmt.startswith("keras3"):
            if fmt in ("keras3-archive", "keras3-folder"):
                model = keras.saving.load_model(path)
            else:
                model = samples_keras.build(name, keras)
                model.load_weights(path)
            fw = keras
        else:
            twin = name in ("tfkeras_cudnn_gru", "keras1_gru")
            if fmt == "keras-h5" and not twin:
                model = tf_keras.models.load_model(path, compile=False)
            else:
                # Weights-only files need the architecture; CuDNNGRU / Keras 1 files are read through
                # tf-keras' own converters into a plain GRU twin (hdf5_format.preprocess_weights_for_loading).
                model = samples_keras.build(name, tf_keras, twin=twin)
                model.load_weights(path)
            fw = tf_keras
        for cell_name, layer in samples_keras.gru_layers(model):
            key = f"{name}|{cell_name}"
            weights = [np.asarray(w).astype(np.float32) for w in layer.get_weights()]
            for i, w in enumerate(weights):
                out[f"{key}|w{i}"] = w
            config = layer.get_config()
            config.update(name="replica", return_sequences=True, return_state=False, go_backwards=False,
                          stateful=False, dropout=0.0, recurrent_dropout=0.0, dtype="float32")
            replica = type(layer).from_config(config)
            x = (1.5 * rng.standard_normal((2, 6, weights[0].shape[0]))).astype(np.float32)
            replica(x)  # build
            replica.set_weights(weights)
            out[f"{key}|x"] = x
            out[f"{key}|y"] = np.asarray(replica(x), dtype=np.float32)
            out[f"{key}|framework"] = np.array(fw.__name__)
    np.savez(out_file, **out)


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    if not _frameworks_available():
        require_or_skip("tensorflow, tf_keras and keras are needed for the framework oracle")
    tmp = tmp_path_factory.mktemp("keras_oracle")
    spec, out = tmp / "spec.json", tmp / "oracle.npz"
    spec.write_text(json.dumps(ENTRIES))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_USE_LEGACY_KERAS", None)  # Keras 3 must be itself; tf_keras is imported by name
    proc = subprocess.run([sys.executable, __file__, "--oracle", str(spec), str(out)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


# --------------------------------------------------------------------------- list


def test_manifest_has_the_keras_samples():
    names = {e["name"] for e in ENTRIES}
    assert {"keras3_archive", "keras3_weights_h5", "keras3_folder_bf16", "keras3_sharded", "tfkeras_full_h5",
            "tfkeras_weights_h5", "tfkeras_cudnn_gru", "keras1_gru"} <= names


@pytest.mark.parametrize("entry", PARAMS)
def test_list_names_cells_by_user_layer(entry):
    from gruinspect.inventory import list_cells

    inv = list_cells(_path(entry))
    assert inv.format == entry["format"]
    assert [c.name for c in inv.cells] == [c["name"] for c in entry["cells"]]
    for cell, want in zip(inv.cells, entry["cells"]):
        got = {k: getattr(cell, k) for k in ("layout", "input_size", "units", "reset_after", "dtype")}
        assert got == {k: want[k] for k in got}, cell.name
        assert cell.tensors == want["tensors"], cell.name
        assert cell.has_bias == want["use_bias"]
        if want["config_source"] == "unknown":
            assert (cell.activation, cell.recurrent_activation) == (None, None)
            assert cell.config_source.startswith("unknown")
        else:
            assert (cell.activation, cell.recurrent_activation) == (want["activation"], want["recurrent_activation"])
        assert cell.config["keras_generation"] in ("keras1", "keras2", "keras3")
    assert sorted(t.name for t in inv.other_tensors()) == entry["other_tensors"]
    assert not inv.problems


@pytest.mark.parametrize("entry", PARAMS)
def test_list_json_through_cli(entry, cli):
    result = cli("list", _path(entry), "--json")
    data = json.loads(result.stdout)
    assert data["source"]["format"] == entry["format"]
    assert [c["name"] for c in data["cells"]] == [c["name"] for c in entry["cells"]]


# --------------------------------------------------------------------------- split vs framework


def _expected_blocks(weights: list[np.ndarray], layout: str, units: int) -> dict[tuple[str, str], np.ndarray]:
    """docs/conventions.md slicing of Keras-layout weights [kernel, recurrent_kernel, (bias)]."""
    def col(a, gate):
        k = GATE_COLUMNS[gate]
        return a[..., k * units:(k + 1) * units]

    out = {}
    for gate in GATE_COLUMNS:
        out[(gate, "input_kernel")] = col(weights[0], gate)
        out[(gate, "recurrent_kernel")] = col(weights[1], gate)
        if len(weights) == 3:
            bias = weights[2]
            if bias.ndim == 2:
                out[(gate, "bias")] = col(bias[0], gate)
                out[(gate, "recurrent_bias")] = col(bias[1], gate)
            else:
                out[(gate, "bias")] = col(bias, gate)
    return out


def _oracle_weights(oracle, entry, cell) -> list[np.ndarray]:
    key = f"{entry['name']}|{cell['name']}"
    return [oracle[f"{key}|w{i}"] for i in range(3) if f"{key}|w{i}" in oracle]


@pytest.mark.parametrize("entry", PARAMS)
def test_split_blocks_equal_framework_weights(entry, oracle, tmp_path):
    from gruinspect.export import split

    result = split(_path(entry), str(tmp_path / "out"))
    cells = {c["name"]: c for c in result.manifest["cells"]}
    for want in entry["cells"]:
        expected = _expected_blocks(_oracle_weights(oracle, entry, want), want["layout"], want["units"])
        arrays = cells[want["name"]]["arrays"]
        assert {(a["gate"], a["role"]) for a in arrays} == set(expected), want["name"]
        for a in arrays:
            got = np.load(tmp_path / "out" / a["file"])
            assert got.shape == tuple(a["shape"])
            np.testing.assert_array_equal(got.astype(np.float32), expected[(a["gate"], a["role"])],
                                          err_msg=f"{entry['name']} {want['name']} {a['gate']} {a['role']}")


@pytest.mark.parametrize("entry", PARAMS)
def test_numpy_step_reproduces_framework_output(entry, oracle):
    from gruinspect.blocks import read_blocks
    from gruinspect.gru import run
    from gruinspect.inventory import open_cells

    with open_cells(_path(entry)) as (store, inv):
        for cell, want in zip(inv.cells, entry["cells"]):
            key = f"{entry['name']}|{want['name']}"
            blocks = {k: v.astype(np.float32) for k, v in read_blocks(store, cell).items()}
            x, y = oracle[f"{key}|x"], oracle[f"{key}|y"]
            # The file's own activations when it has them, else the truth from the manifest.
            act = cell.activation or want["activation"]
            ract = cell.recurrent_activation or want["recurrent_activation"]
            h = run(blocks, x.transpose(1, 0, 2), np.zeros((x.shape[0], cell.units)), reset_after=cell.reset_after,
                    activation_name=act, recurrent_activation_name=ract)
            err = np.abs(h.transpose(1, 0, 2) - y).max()
            assert err <= 1e-5, f"{entry['name']} {cell.name}: max abs error {err:.3g}"


def test_hard_sigmoid_generations_are_told_apart(oracle):
    """Keras 3's hard_sigmoid is not Keras 2's: swapping them must break the match."""
    from gruinspect.blocks import read_blocks
    from gruinspect.gru import run
    from gruinspect.inventory import open_cells

    swap = {"hard_sigmoid_keras2": "hard_sigmoid_keras3", "hard_sigmoid_keras3": "hard_sigmoid_keras2"}
    seen = set()
    for entry in ENTRIES:
        with open_cells(_path(entry)) as (store, inv):
            for cell in inv.cells:
                if cell.recurrent_activation not in swap:
                    continue
                seen.add(cell.recurrent_activation)
                key = f"{entry['name']}|{cell.name}"
                x, y = oracle[f"{key}|x"], oracle[f"{key}|y"]
                h = run(read_blocks(store, cell), x.transpose(1, 0, 2), np.zeros((x.shape[0], cell.units)),
                        reset_after=cell.reset_after, activation_name=cell.activation,
                        recurrent_activation_name=swap[cell.recurrent_activation])
                assert np.abs(h.transpose(1, 0, 2) - y).max() > 1e-3, key
    assert seen == set(swap)


def test_reset_after_both_ways_and_no_bias_are_covered():
    cells = [c for e in ENTRIES for c in e["cells"]]
    assert {c["reset_after"] for c in cells} == {True, False}
    assert any(not c["use_bias"] for c in cells)
    assert {c["layout"] for c in cells} == {"keras-gru", "keras-cudnn-gru", "keras1-gru"}
    assert any(c["dtype"] == "bfloat16" for c in cells)


@pytest.mark.parametrize("entry", PARAMS)
def test_fuse_undoes_split(entry):
    from gruinspect.blocks import fuse, read_blocks
    from gruinspect.inventory import open_cells

    with open_cells(_path(entry)) as (store, inv):
        for cell in inv.cells:
            for tensor, value in fuse(cell, read_blocks(store, cell)).items():
                stored = store.read(tensor)
                assert value.dtype == stored.dtype
                np.testing.assert_array_equal(value, stored)


# --------------------------------------------------------------------------- no TensorFlow


def test_list_split_stats_never_import_tensorflow(tmp_path):
    code = """
import json, sys
from gruinspect.inventory import list_cells
from gruinspect.export import split
from gruinspect.stats import compute_stats
paths = json.loads(sys.argv[1])
for i, p in enumerate(paths):
    list_cells(p)
    split(p, sys.argv[2] + "/" + str(i))
    compute_stats(p)
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "torch"))
assert not bad, bad
print("ok", len(paths))
"""
    paths = [_path(e) for e in ENTRIES]
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(paths), str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"ok {len(paths)}"


# --------------------------------------------------------------------------- content detection


def _one_line_error(cli, path, *needles):
    result = cli("list", str(path), exit_code=2)
    err = result.stderr.strip()
    assert err.count("\n") == 0, err
    assert str(path) in err
    for needle in needles:
        assert needle in err, err
    return err


def _write_h5(path, build):
    import h5py

    with h5py.File(path, "w") as f:
        build(f)
    return path


def test_hdf5_that_is_not_keras(cli, tmp_path):
    path = _write_h5(tmp_path / "data.h5", lambda f: f.create_dataset("images", data=np.zeros((2, 3))))
    _one_line_error(cli, path, "Unsupported", "HDF5 file that is not Keras weights")


def test_hdf5_with_no_weights(cli, tmp_path):
    path = _write_h5(tmp_path / "empty.h5", lambda f: f.create_group("nothing"))
    _one_line_error(cli, path, "Unsupported", "no datasets")
    path = _write_h5(tmp_path / "empty_keras.h5", lambda f: f.attrs.__setitem__("layer_names", np.array([b"dense"])))
    _one_line_error(cli, path, "Unsupported", "no weights")


def test_zip_that_is_not_keras(cli, tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("notes.txt", "hello")
    _one_line_error(cli, path, "Unsupported", "zip archive that is not a Keras archive", "notes.txt")
    npz = tmp_path / "arrays.npz"
    np.savez(npz, a=np.zeros(3))
    _one_line_error(cli, npz, "Unsupported", "numpy .npz archive")


def test_keras3_npz_weights_are_refused_without_unpickling(cli, tmp_path):
    # Keras 3.15's weights_format="npz" pickles its Variable objects (docs/keras-files.md).
    buf = io.BytesIO()
    np.savez(buf, **{"layers/gru/cell": np.array({"0": 1}, dtype=object)})
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("model.weights.npz", buf.getvalue())
    _one_line_error(cli, path, "Unsupported", "pickled Python objects")


def _patch_declared_size(data: bytes, member: bytes, size: int) -> bytes:
    """Make the zip's local and central headers of ``member`` declare ``size`` uncompressed bytes."""
    data = bytearray(data)
    pos = data.find(b"PK\x03\x04")
    while pos != -1:
        name_len = int.from_bytes(data[pos + 26:pos + 28], "little")
        if data[pos + 30:pos + 30 + name_len] == member:
            data[pos + 22:pos + 26] = size.to_bytes(4, "little")
        pos = data.find(b"PK\x03\x04", pos + 4)
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        name_len = int.from_bytes(data[pos + 28:pos + 30], "little")
        if data[pos + 46:pos + 46 + name_len] == member:
            data[pos + 24:pos + 28] = size.to_bytes(4, "little")
        pos = data.find(b"PK\x01\x02", pos + 4)
    return bytes(data)


def test_zip_bombs_are_refused_by_declared_size(cli, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", bytes(1 << 16))
    bomb = tmp_path / "bomb.keras"
    bomb.write_bytes(_patch_declared_size(buf.getvalue(), b"model.weights.h5", 3 << 30))
    _one_line_error(cli, bomb, "Unsupported", "expands 3221225472 bytes from")
    big_config = tmp_path / "config.keras"
    big_config.write_bytes(_patch_declared_size(buf.getvalue(), b"config.json", 1 << 30))
    _one_line_error(cli, big_config, "Unsupported", "config.json declares")


def test_truncated_files_say_so(cli, tmp_path):
    for entry in ENTRIES:
        if entry["name"] not in ("keras3_archive", "tfkeras_full_h5"):
            continue
        data = Path(_path(entry)).read_bytes()
        cut = tmp_path / Path(entry["path"]).name
        cut.write_bytes(data[: len(data) // 3])
        _one_line_error(cli, cut, "Unexpected end of file", "truncated")


# --------------------------------------------------------------------------- structure variants


def _entry(name):
    for e in ENTRIES:
        if e["name"] == name:
            return e
    raise AssertionError(f"sample {name} is not in the manifest")


def test_keras3_names_rebuilt_from_config_without_name_attributes(tmp_path):
    """Keras < 3.6 wrote no `name` attribute: names come from config.json (and compressed members work)."""
    import h5py

    from gruinspect.inventory import list_cells

    entry = _entry("keras3_archive")
    with zipfile.ZipFile(_path(entry)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    h5_path = tmp_path / "w.h5"
    h5_path.write_bytes(members["model.weights.h5"])
    with h5py.File(h5_path, "r+") as f:
        f.visititems(lambda p, o: o.attrs.__delitem__("name") if "name" in o.attrs else None)
    members["model.weights.h5"] = h5_path.read_bytes()
    archive = tmp_path / "old.keras"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    inv = list_cells(str(archive))
    assert [c.name for c in inv.cells] == [c["name"] for c in entry["cells"]]
    assert [c.tensors for c in inv.cells] == [c["tensors"] for c in entry["cells"]]
    # No config and no attributes: the file's own keys are all that is left.
    inv = list_cells(str(h5_path))
    assert [c.name for c in inv.cells] == ["gru", "gru_1", "sequential/gru"]


def test_keras2_chunked_names_mismatched_weight_names_and_extra_datasets(tmp_path):
    from gruinspect.inventory import list_cells

    rng = np.random.default_rng(0)
    k, rk, b = (rng.standard_normal(s).astype(np.float32) for s in ((3, 12), (4, 12), (2, 12)))
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "GRU", "config": {"name": "encoder", "units": 4, "activation": "tanh",
                                         "recurrent_activation": "hard_sigmoid", "reset_after": True,
                                         "use_bias": True}}]}}

    def build(f, full):
        f.attrs["keras_version"] = "2.3.1"
        f.attrs["backend"] = "tensorflow"
        f["stray_dataset"] = np.arange(3)  # an extra dataset at the root, in no layer
        root = f
        if full:
            f.attrs["model_config"] = json.dumps(config)
            root = f.create_group("model_weights")
        root.attrs["layer_names"] = np.array([b"encoder"])
        g = root.create_group("encoder")
        names = ["gru_7/gru_cell/kernel:0", "gru_7/gru_cell/recurrent_kernel:0", "gru_7/gru_cell/bias:0"]
        g.attrs["weight_names0"] = np.array([n.encode() for n in names[:2]])
        g.attrs["weight_names1"] = np.array([n.encode() for n in names[2:]])
        for n, v in zip(names, (k, rk, b)):
            g.create_dataset(n, data=v)

    full = _write_h5(tmp_path / "full.h5", lambda f: build(f, True))
    inv = list_cells(str(full))
    (cell,) = inv.cells
    assert (cell.name, cell.input_size, cell.units, cell.reset_after) == ("encoder", 3, 4, True)
    assert cell.recurrent_activation == "hard_sigmoid_keras2"
    assert cell.tensors["kernel"] == "model_weights/encoder/gru_7/gru_cell/kernel:0"
    assert "stray_dataset" in [t.name for t in inv.other_tensors()]
    weights_only = _write_h5(tmp_path / "weights.h5", lambda f: build(f, False))
    (cell,) = list_cells(str(weights_only)).cells
    assert (cell.name, cell.activation, cell.reset_after) == ("encoder/gru_7", None, True)


def test_cells_found_by_names_and_shapes_without_layer_records():
    """The TF2 checkpoint / SavedModel path: no store.layers, only names and shapes."""
    from gruinspect.blocks import read_blocks
    from gruinspect.layouts import find_cells
    from gruinspect.store import MemoryStore

    rng = np.random.default_rng(1)
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    t = {
        "model/gru/gru_cell/kernel": r(3, 12), "model/gru/gru_cell/recurrent_kernel": r(4, 12),
        "model/gru/gru_cell/bias": r(2, 12),
        "model/gru_1/gru_cell/kernel": r(4, 9), "model/gru_1/gru_cell/recurrent_kernel": r(3, 9),
        "model/gru_1/gru_cell/bias": r(9),
        "model/nobias/gru_cell/kernel": r(3, 6), "model/nobias/gru_cell/recurrent_kernel": r(2, 6),
        "model/cu_dnngru/kernel": r(3, 12), "model/cu_dnngru/recurrent_kernel": r(4, 12),
        "model/cu_dnngru/bias": r(24),
        "model/lstm/lstm_cell/kernel": r(3, 12), "model/lstm/lstm_cell/recurrent_kernel": r(3, 12),
        "model/lstm/lstm_cell/bias": r(12),
        "model/rnn/simple_rnn_cell/kernel": r(3, 4), "model/rnn/simple_rnn_cell/recurrent_kernel": r(4, 4),
        "model/dense/kernel": r(4, 2), "model/dense/bias": r(2),
        "optimizer/m/model/gru/gru_cell/kernel": r(3, 12),
    }
    store = MemoryStore(t)
    found = find_cells(store)
    cells = {c.name: c for c in found.cells}
    assert set(cells) == {"model/gru", "model/gru_1", "model/nobias", "model/cu_dnngru"}
    assert (cells["model/gru"].layout, cells["model/gru"].reset_after) == ("keras-gru", True)
    gru_1 = cells["model/gru_1"]
    assert (gru_1.input_size, gru_1.units, gru_1.reset_after) == (4, 3, False)
    assert cells["model/nobias"].reset_after is True and cells["model/nobias"].notes
    assert cells["model/cu_dnngru"].layout == "keras-cudnn-gru"
    assert all(c.activation is None for n, c in cells.items() if n != "model/cu_dnngru")
    blocks = read_blocks(store, cells["model/gru"])
    np.testing.assert_array_equal(blocks[("reset", "input_kernel")], t["model/gru/gru_cell/kernel"][:, 4:8])
    np.testing.assert_array_equal(blocks[("candidate", "recurrent_bias")], t["model/gru/gru_cell/bias"][1, 8:12])
    # CuDNNGRU: the tf_keras converter's formula (docs/conventions.md, Keras 2 CuDNNGRU), written out independently.
    cud = read_blocks(store, cells["model/cu_dnngru"])
    kernel, recurrent, bias = (t[f"model/cu_dnngru/{n}"] for n in ("kernel", "recurrent_kernel", "bias"))
    for gate, k in GATE_COLUMNS.items():
        block = kernel[:, k * 4:(k + 1) * 4]
        np.testing.assert_array_equal(cud[(gate, "input_kernel")], block.T.reshape(block.shape, order="F"))
        np.testing.assert_array_equal(cud[(gate, "recurrent_kernel")], recurrent[:, k * 4:(k + 1) * 4].T)
        np.testing.assert_array_equal(cud[(gate, "bias")], bias[k * 4:(k + 1) * 4])
        np.testing.assert_array_equal(cud[(gate, "recurrent_bias")], bias[12 + k * 4:12 + (k + 1) * 4])


def test_unzipped_archive_folder_and_sharded_index_are_detected_by_content(tmp_path):
    from gruinspect.formats import detect

    folder = _entry("keras3_folder_bf16")
    shutil.copytree(_path(folder), tmp_path / "anything")
    assert detect(str(tmp_path / "anything")).format == "keras3-folder"
    sharded = _entry("keras3_sharded")
    src = Path(_path(sharded)).parent
    shutil.copytree(src, tmp_path / "sh")
    (tmp_path / "sh" / "model.weights.json").rename(tmp_path / "sh" / "index.txt")
    assert detect(str(tmp_path / "sh" / "index.txt")).format == "keras3-weights-sharded"


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--oracle":
        _oracle_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: test_keras.py --oracle SPEC_JSON OUT_NPZ (run by the test's oracle fixture)")
