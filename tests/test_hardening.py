"""Hostile files that are small but crafted: HDF5 links out of the file, hard-link DAGs, huge name
lists, deep JSON nesting, duplicate zip members.

Each case is written with the real library (h5py, zipfile, json) from a framework-written sample,
then opened through the command line, which must answer in one line (exit 2) or read the file
correctly, and never open a file the user did not name.
"""
from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import SAMPLES, run_cli
from gruinspect.errors import GruInspectError
from gruinspect.formats import _json, open_store

KERAS2_MODEL = SAMPLES / "tfkeras_full_h5" / "model.h5"
KERAS2_WEIGHTS = SAMPLES / "tfkeras_weights_h5" / "weights.h5"
KERAS3_WEIGHTS = SAMPLES / "keras3_weights_h5" / "model.weights.h5"
KERAS3_ARCHIVE = SAMPLES / "keras3_archive" / "model.keras"


def _one_line_error(result, *needles: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gruinspect: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copyfile(src, dst)
    return dst


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _first_weight(f) -> tuple[h5py.Group, str]:
    """(layer group, weight name) of the first weight listed by a Keras 1/2 file."""
    root = f["model_weights"] if "model_weights" in f else f
    for layer in root.attrs["layer_names"]:
        group = root[_text(layer)]
        names = list(group.attrs.get("weight_names", []))
        if names:
            return group, _text(names[0])
    raise AssertionError("sample has no weights")


# ------------------------------------------------------------------ HDF5 links out of the file
@pytest.mark.parametrize("sample", [KERAS2_MODEL, KERAS2_WEIGHTS], ids=["model", "weights"])
@pytest.mark.parametrize("kind", ["external-fifo", "external-valid", "soft"])
def test_keras_weight_behind_a_link_is_refused(tmp_path, sample, kind):
    path = _copy(sample, tmp_path)
    other = tmp_path / "other.h5"
    with h5py.File(path, "r+") as f:
        group, wn = _first_weight(f)
        target = f"{group.name}/{wn}"
        if kind == "external-fifo":
            os.mkfifo(other)
        else:
            with h5py.File(other, "w") as o:  # a file holding the very dataset: it must still not be read
                o.create_dataset(target, data=np.asarray(f[target]))
        moved = target + "_moved"
        f.move(target, moved)
        f[target] = h5py.SoftLink(moved) if kind == "soft" else h5py.ExternalLink(str(other), target)
    for command in ("list", "stats"):
        result = run_cli(command, path, exit_code=2)
        _one_line_error(result, str(path), "link")
    assert "corrupted" not in result.stderr


def test_model_weights_group_as_external_link_to_a_fifo(tmp_path):
    path = tmp_path / "model.h5"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with h5py.File(path, "w") as f:
        f["model_weights"] = h5py.ExternalLink(str(fifo), "/model_weights")
        f.attrs["layer_names"] = [b"gru"]
    result = run_cli("list", path, exit_code=2)
    line = _one_line_error(result, str(path))
    assert "corrupted" not in line


def test_keras3_vars_as_external_link(tmp_path):
    path = _copy(KERAS3_WEIGHTS, tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with h5py.File(path, "r+") as f:
        f.move("vars", "vars_moved") if "vars" in f else None
        f["vars"] = h5py.ExternalLink(str(fifo), "/vars")
    result = run_cli("list", path, exit_code=2)
    _one_line_error(result, str(path), "external link")


# ------------------------------------------------------------------ algorithmic blow-ups
def test_hard_link_dag_is_walked_once_per_group(tmp_path):
    """40 levels, each group hard-linked twice into the next: 2^40 paths, 41 groups."""
    path = _copy(KERAS2_WEIGHTS, tmp_path)
    with h5py.File(path, "r+") as f:
        level = f.create_group("dag0")
        level.create_dataset("leaf", data=np.zeros(2, np.float32))
        for i in range(1, 41):
            up = f.create_group(f"dag{i}")
            up["a"] = level
            up["b"] = level
            level = up
    result = run_cli("list", "--json", path)
    assert json.loads(result.stdout)["cells"], result.stdout


def test_hard_link_cycle_terminates(tmp_path):
    path = _copy(KERAS3_WEIGHTS, tmp_path)
    with h5py.File(path, "r+") as f:
        g = f.create_group("loop")
        g["back"] = f["/"]
        g["self"] = g
    result = run_cli("list", "--json", path)
    assert json.loads(result.stdout)["cells"]


def test_huge_weight_names_refused_before_decoding(tmp_path):
    path = _copy(KERAS2_WEIGHTS, tmp_path)
    with h5py.File(path, "r+") as f:
        group, _ = _first_weight(f)
        names = np.array([b"w%d" % i for i in range(200_000)])
        del group.attrs["weight_names"]
        for k, part in enumerate(np.array_split(names, 40)):  # as Keras splits a long list
            group.attrs.create(f"weight_names{k}", part)
    result = run_cli("list", path, exit_code=2)
    _one_line_error(result, str(path), "weight_names lists 200000 names")


def test_repeated_layer_names_bounded(tmp_path):
    path = _copy(KERAS2_WEIGHTS, tmp_path)
    with h5py.File(path, "r+") as f:
        names = [_text(n).encode() for n in f.attrs["layer_names"]]
        f.attrs["layer_names"] = np.array(names * 2000)
    result = run_cli("list", path, exit_code=2)
    _one_line_error(result, str(path), "layer_names lists")


# ------------------------------------------------------------------ nesting depth
def _deep(n: int) -> str:
    return "[" * n + "]" * n


@pytest.mark.parametrize("n", [_json.MAX_DEPTH + 1, 100_000])
def test_json_depth_bounded(n):
    with pytest.raises(GruInspectError, match=r"x\.json: its JSON nests more than 200 levels deep"):
        _json.loads(_deep(n), "x.json")
    assert _json.loads(_deep(_json.MAX_DEPTH), "x.json") is not None


def test_depth_is_counted_through_dicts():
    value = {}
    inner = value
    for _ in range(_json.MAX_DEPTH + 5):
        inner["k"] = {}
        inner = inner["k"]
    assert _json.depth(value, _json.MAX_DEPTH) == _json.MAX_DEPTH + 1
    assert _json.depth([1, [2, {"a": []}]], 10) == 4


def test_deep_model_config_in_keras_h5(tmp_path):
    path = _copy(KERAS2_MODEL, tmp_path)
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = '{"class_name": "Sequential", "config": ' + _deep(50_000) + "}"
    result = run_cli("list", path, exit_code=2)
    _one_line_error(result, str(path), "model_config attribute nests more than")


def test_deep_config_json_in_keras_archive(tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(KERAS3_ARCHIVE) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "config.json":
                data = ('{"class_name": "Sequential", "config": ' + _deep(50_000) + "}").encode()
            out.writestr(info, data)
    result = run_cli("list", path, exit_code=2)
    _one_line_error(result, "config.json", "nests more than")


def test_deep_safetensors_header(tmp_path):
    header = ('{"__metadata__": {}, "x": ' + _deep(50_000) + "}").encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    result = run_cli("list", path, exit_code=2)
    _one_line_error(result, str(path), "header nests more than")


# ------------------------------------------------------------------ duplicate zip members
def _with_duplicate(tmp_path: Path, member: str, same: bool) -> Path:
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(KERAS3_ARCHIVE) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            out.writestr(info, src.read(info))
        data = src.read(member)
        if not same:
            data = data.replace(b"{", b"{ ", 1) if member.endswith(".json") else data[:-1] + bytes([data[-1] ^ 1])
        with pytest.warns(UserWarning, match="Duplicate name"):
            out.writestr(member, data)
    return path


@pytest.mark.parametrize("member", ["config.json", "model.weights.h5"])
def test_duplicate_member_that_differs_is_refused(tmp_path, member):
    path = _with_duplicate(tmp_path, member, same=False)
    result = run_cli("list", path, exit_code=2)
    _one_line_error(result, str(path), f"{member} twice")


@pytest.mark.parametrize("member", ["config.json", "model.weights.h5"])
def test_identical_duplicate_member_is_read_with_a_warning(tmp_path, member):
    path = _with_duplicate(tmp_path, member, same=True)
    result = run_cli("list", "--json", path)
    data = json.loads(result.stdout)
    assert data["cells"] and any(f"{member} twice" in p for p in data["problems"]), data
    result = run_cli("list", path)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gruinspect: warning: ") and f"{member} twice" in lines[0]


def test_library_store_of_identical_duplicates_records_it(tmp_path):
    path = _with_duplicate(tmp_path, "config.json", same=True)
    store = open_store(str(path))
    try:
        assert store.metadata.get("duplicate_members") == ["config.json"]
    finally:
        store.close()


# ------------------------------------------------------------------ TF2 object graph rename chains
def _chain_graph(n: int):
    """Variables v0..v(n-1) where vi's full name is v(i+1)'s checkpoint key and the last one's is
    the key of a non-variable tensor: each revert to a key makes the next clash."""
    from gruinspect.formats._object_graph import VALUE_SUFFIX, TrackableObject

    keys = [f"v{i}{VALUE_SUFFIX}" for i in range(n)]
    root = TrackableObject(children=[(i + 1, f"v{i}") for i in range(n)])
    nodes = [root] + [TrackableObject(attributes=[("VARIABLE_VALUE", keys[i + 1] if i + 1 < n else "plain", keys[i])])
                      for i in range(n)]
    return nodes, keys + ["plain"]


@pytest.mark.parametrize("n", [3, 20_000])
def test_rename_chain_reverts_every_link(n):
    from gruinspect.formats._object_graph import tensor_names

    nodes, keys = _chain_graph(n)
    names = tensor_names(nodes, keys)
    assert names == {k: k for k in keys}  # every chained name collided, so each keeps its key
    assert len(set(names.values())) == len(keys)


def _reference_reverts(names: dict[str, str]) -> dict[str, str]:
    """The plain fixed point: revert every clashing non-self name at once, until none clash."""
    names = dict(names)
    while True:
        count: dict[str, int] = {}
        for name in names.values():
            count[name] = count.get(name, 0) + 1
        clashes = [k for k, n in names.items() if count[n] > 1 and n != k]
        if not clashes:
            return names
        for key in clashes:
            names[key] = key


def test_reverts_equal_the_fixed_point_on_random_names():
    import random

    from gruinspect.formats._object_graph import _revert_clashes

    rng = random.Random(18)
    for _ in range(300):
        keys = [f"k{i}" for i in range(rng.randint(1, 12))]
        pool = keys + ["x", "y", "z"]
        names = {k: rng.choice(pool) for k in keys}
        assert _revert_clashes(dict(names)) == _reference_reverts(names), names


# ------------------------------------------------------------------ expansion limits
def _gzip_zeros(tmp_path: Path) -> Path:
    path = _copy(KERAS2_WEIGHTS, tmp_path)
    with h5py.File(path, "r+") as f:  # 32 MiB of zeros gzip to a few KiB: ~1000:1
        f.create_dataset("extra/zeros", data=np.zeros(8 << 20, np.float32), compression="gzip", chunks=(1 << 20,))
    return path


def test_gzip_dataset_expansion_capped_and_overridable(tmp_path, monkeypatch):
    path = _gzip_zeros(tmp_path)
    store = open_store(str(path))
    try:
        with pytest.raises(GruInspectError, match=r"compressed tensor extra/zeros expands .* "
                                                  r"GRUINSPECT_MAX_EXPANSION_RATIO"):
            store.read("extra/zeros")
        monkeypatch.setenv("GRUINSPECT_MAX_EXPANSION_RATIO", "100000")
        assert store.read("extra/zeros").shape == (8 << 20,)
        monkeypatch.setenv("GRUINSPECT_MAX_EXPANSION_BYTES", str(1 << 20))
        with pytest.raises(GruInspectError, match=r"more than the 1048576 bytes .* GRUINSPECT_MAX_EXPANSION_BYTES"):
            store.read("extra/zeros")
    finally:
        store.close()


def test_bad_limit_setting_is_one_line(tmp_path, monkeypatch):
    path = _gzip_zeros(tmp_path)
    monkeypatch.setenv("GRUINSPECT_MAX_EXPANSION_RATIO", "lots")
    store = open_store(str(path))
    try:
        with pytest.raises(GruInspectError, match="GRUINSPECT_MAX_EXPANSION_RATIO='lots'"):
            store.read("extra/zeros")
    finally:
        store.close()


def test_keras_member_expansion_refused_before_writing(tmp_path, monkeypatch):
    """A 2 MB-class archive whose weights member deflates 1000:1 writes nothing to the temp dir."""
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(KERAS3_ARCHIVE) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "model.weights.h5":
                data = data + bytes(40 << 20)  # HDF5 ignores bytes after its end of file
            out.writestr(info.filename, data)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    result = run_cli("list", path, exit_code=2)
    _one_line_error(result, str(path), "member model.weights.h5 expands", "GRUINSPECT_MAX_EXPANSION_RATIO")
    assert not any(tmp.iterdir())
    monkeypatch.setenv("GRUINSPECT_MAX_EXPANSION_RATIO", "100000")
    result = run_cli("list", "--json", path)
    assert json.loads(result.stdout)["cells"]


def test_keras3_weight_behind_external_link_is_not_silently_lost(tmp_path):
    """The walk skips the link (no other file opened) and says so; the cell it broke is not listed."""
    path = _copy(KERAS3_WEIGHTS, tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with h5py.File(path, "r+") as f:
        names: list[str] = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        target = names[0]
        del f[target]
        f[target] = h5py.ExternalLink(str(fifo), "/x")
    from click.testing import CliRunner

    from gruinspect.cli import main

    result = CliRunner().invoke(main, ["list", str(path)], prog_name="gruinspect")
    assert result.exit_code in (0, 2), result.output  # 2 when no cell is left: either way, said
    lines = result.stderr.strip().splitlines()
    assert lines and any("external link" in ln and target in ln and str(fifo) in ln for ln in lines), result.stderr


# ------------------------------------------------------------------ paths outside the named folder
@pytest.mark.parametrize("absolute", [False, True])
def test_state_file_pointing_outside_the_folder_is_said(tmp_path, absolute):
    shutil.copytree(SAMPLES / "tf1_gru_single", tmp_path / "elsewhere")
    named = tmp_path / "named"
    named.mkdir()
    target = tmp_path / "elsewhere" / "model.ckpt" if absolute else "../elsewhere/model.ckpt"
    (named / "checkpoint").write_text(f'model_checkpoint_path: "{target}"\n')
    data = json.loads(run_cli("list", "--json", named).stdout)
    assert data["cells"]
    assert any("outside the folder named" in p and str(tmp_path / "elsewhere") in p for p in data["problems"]), data
    result = run_cli("list", named)
    assert "outside the folder named" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_state_file_inside_the_folder_says_nothing(tmp_path):
    named = tmp_path / "named"
    shutil.copytree(SAMPLES / "tf1_gru_single", named)
    (named / "checkpoint").write_text('model_checkpoint_path: "model.ckpt"\n')
    data = json.loads(run_cli("list", "--json", named).stdout)
    assert data["cells"] and not any("outside" in p for p in data["problems"])


# ------------------------------------------------------------------ sparse protobuf files
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child of a large pytest process
# would report its parent's peak.
_PEAK_RSS = """
import sys
from gruinspect.errors import GruInspectError
from gruinspect.formats import open_store
try:
    open_store(sys.argv[1]).close()
except GruInspectError:
    pass
print(next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")))
"""


@pytest.mark.parametrize("sample, member", [("tf2_keras3_export", "saved_model.pb"),
                                            ("tf1_frozen_graph", "frozen.pb")])
def test_sparse_protobuf_is_not_read_whole(tmp_path, sample, member):
    """1 GiB of file-system hole after a real protobuf: mapped, never read into memory."""
    import subprocess
    import sys

    folder = tmp_path / sample
    shutil.copytree(SAMPLES / sample, folder)
    with open(folder / member, "r+b") as f:
        f.truncate(os.path.getsize(folder / member) + (1 << 30))
    target = folder if member == "saved_model.pb" else folder / member
    out = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(target)], capture_output=True, text=True,
                         check=True, timeout=120)
    assert int(out.stdout.split()[-1]) < 512 << 20, out


# ------------------------------------------------------------------ splat constants
def _splat_graph(tmp_path: Path, value, shape) -> Path:
    """A frozen GraphDef written by TensorFlow whose Const ``c`` stores fewer values than it has
    (TensorFlow's make_tensor_proto keeps one value for a constant filled with it)."""
    import subprocess
    import sys

    path = tmp_path / "splat.pb"
    code = ("import sys, tensorflow as tf\n"
            "g = tf.Graph()\n"
            "with g.as_default():\n"
            f"    tf.constant({value!r}, dtype=tf.float32, shape={list(shape)!r}, name='c')\n"
            "open(sys.argv[1], 'wb').write(g.as_graph_def().SerializeToString())\n"
            "from tensorflow.python.framework import tensor_util\n"
            "t = g.get_operation_by_name('c').get_attr('value')\n"
            "print(len(t.float_val), len(t.tensor_content))\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                         env=env, timeout=300)
    stored, content = map(int, out.stdout.split()[-2:])
    assert stored < np.prod(shape) and content == 0, out.stdout  # really a splat in the file
    return path


def test_splat_constant_rows_stream_without_materialising(tmp_path):
    from gruinspect.formats import graphdef

    shape = (60_000, 1_200)  # 288 MB as float32, from a few hundred bytes
    path = _splat_graph(tmp_path, 0.25, shape)
    assert path.stat().st_size < 1000
    store = graphdef.open(str(path))
    try:
        reader = store.row_reader("c")
        assert reader is not None and reader.shape == shape
        buf = np.empty(1000 * 1_200, np.float32)
        rows = reader.read_rows(59_000, 60_000, buf)
        assert rows.shape == (1000, 1_200) and np.all(rows == np.float32(0.25))
    finally:
        store.close()


def test_splat_rows_equal_the_materialised_constant(tmp_path):
    from gruinspect.formats import graphdef

    path = _splat_graph(tmp_path, 0.5, (7, 5))
    store = graphdef.open(str(path))
    try:
        whole = store.read("c")
        reader = store.row_reader("c")
        buf = np.empty(35, np.float32)
        parts = [reader.read_rows(a, min(a + 3, 7), buf).copy() for a in range(0, 7, 3)]
        assert np.array_equal(np.concatenate(parts), whole) and whole.shape == (7, 5)
    finally:
        store.close()


# ------------------------------------------------------------------ verify --exported and symlinks
def test_verify_exported_warns_about_a_symlink_out_of_the_export(tmp_path):
    checkpoint = SAMPLES / "tf1_gru_single" / "model.ckpt"
    out = tmp_path / "export"
    run_cli("split", checkpoint, "--out", out)
    result = run_cli("verify", checkpoint, "--exported", out, "--oracle", "numpy")
    assert "outside the export folder" not in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    rel = next(rec["file"] for cell in manifest["cells"] for rec in cell["arrays"] if rec.get("file"))
    outside = tmp_path / "elsewhere.npy"
    shutil.move(out / rel, outside)
    os.symlink(outside, out / rel)
    result = run_cli("verify", checkpoint, "--exported", out, "--oracle", "numpy")  # same bytes: passes
    warned = [ln for ln in result.stderr.splitlines() if "outside the export folder" in ln]
    assert len(warned) == 1 and rel in warned[0] and str(outside) in warned[0], result.stderr
