"""`source.files`: every file gruinspect read for a result, and one warning per file read outside
what the user named (issue 18 item 9).

The oracle for "every file read" is Python's own audit hook: each ``open`` of a file below the
sample or test folder must be listed in ``source.files`` (libhdf5 opens files in C, unseen by
the hook, so the lists may hold more than the hook saw, never less).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import SAMPLES, run_cli, sample_path, samples

_AUDIT: dict = {"roots": None, "opened": set()}


def _audit(event, args):
    roots = _AUDIT["roots"]
    if roots is None or event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path, mode, flags = args
    writing = (mode and any(c in str(mode) for c in "wax+")) or (flags and flags & (os.O_WRONLY | os.O_RDWR))
    real = os.path.realpath(os.fsdecode(path))
    if not writing and os.path.isfile(real) and any(real.startswith(r) for r in roots):
        _AUDIT["opened"].add(real)


sys.addaudithook(_audit)  # hooks cannot be removed: it records only while roots is set


def _opened_by(roots, *args, exit_code=0):
    """(parsed JSON of `gruinspect ARGS`, the files below ``roots`` that Python opened for reading)."""
    _AUDIT["roots"] = [os.path.join(os.path.realpath(r), "") for r in roots]
    _AUDIT["opened"] = set()
    try:
        result = run_cli(*args, exit_code=exit_code)
    finally:
        _AUDIT["roots"] = None
    return json.loads(result.stdout), set(_AUDIT["opened"]), result.stderr


def _check_shape(source: dict, path: str):
    files = source["files"]
    assert source["path"] == path and source["format"]
    assert files == sorted(set(files)), files
    assert all(os.path.isabs(f) and f == os.path.realpath(f) and os.path.isfile(f) for f in files), files


def _warnings(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("gruinspect: warning:")]


# ------------------------------------------------------------------ every sample, every reader
@pytest.mark.parametrize("entry", samples())
def test_stats_lists_every_file_python_opened(entry):
    path = sample_path(entry)
    data, opened, stderr = _opened_by([SAMPLES], "stats", "--json", path)
    _check_shape(data["source"], path)
    files = set(data["source"]["files"])
    assert opened <= files, f"opened but not in source.files: {sorted(opened - files)}"
    folder = os.path.realpath(path if os.path.isdir(path) else os.path.dirname(path))
    assert all(f.startswith(folder + os.sep) for f in files), files
    assert not [w for w in _warnings(stderr) if "outside" in w], stderr  # every sample reads inside its folder


@pytest.mark.parametrize("entry", samples())
def test_list_reads_a_subset_of_what_stats_reads(entry):
    path = sample_path(entry)
    listed, opened, _ = _opened_by([SAMPLES], "list", "--json", path)
    _check_shape(listed["source"], path)
    assert opened <= set(listed["source"]["files"])
    stats = json.loads(run_cli("stats", "--json", path).stdout)
    assert set(listed["source"]["files"]) <= set(stats["source"]["files"])


def _rel(files, folder):
    return sorted(os.path.relpath(f, os.path.realpath(folder)) for f in files)


# Which files list and stats read, stated per format: companions opened only when their data is read.
EXPECTED = [
    ("tf1_gru_single/model.ckpt", ["model.ckpt.index"], ["model.ckpt.data-00000-of-00001", "model.ckpt.index"]),
    ("tf1_sharded", ["checkpoint", "model.ckpt.index"],
     ["checkpoint", "model.ckpt.data-00000-of-00002", "model.ckpt.data-00001-of-00002", "model.ckpt.index"]),
    ("tf1_v1_sharded", ["checkpoint", "model.ckpt-00000-of-00002", "model.ckpt-00001-of-00002"],
     ["checkpoint", "model.ckpt-00000-of-00002", "model.ckpt-00001-of-00002"]),
    ("tf2_keras3_checkpoint", ["checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"],  # the object graph
     ["checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"]),
    ("tf2_tf_keras_saved_model",
     ["keras_metadata.pb", "saved_model.pb", "variables/variables.data-00000-of-00001", "variables/variables.index"],
     ["keras_metadata.pb", "saved_model.pb", "variables/variables.data-00000-of-00001", "variables/variables.index"]),
    ("onnx_helper_lbr0_external/model.onnx", ["model.onnx"], ["model.onnx", "weights.bin"]),
    ("tfjs_layers", ["model.json"],
     ["group1-shard1of4.bin", "group1-shard2of4.bin", "group1-shard3of4.bin", "group1-shard4of4.bin", "model.json"]),
    ("keras3_archive/model.keras", ["model.keras"], ["model.keras"]),
    ("keras3_folder_bf16", ["config.json", "metadata.json", "model.weights.h5"],
     ["config.json", "metadata.json", "model.weights.h5"]),
    ("keras3_sharded/model.weights.json", ["model.weights.json", "model_00000.weights.h5", "model_00001.weights.h5"],
     ["model.weights.json", "model_00000.weights.h5", "model_00001.weights.h5"]),
    ("tfkeras_full_h5/model.h5", ["model.h5"], ["model.h5"]),
    ("tflite_int8/model.tflite", ["model.tflite"], ["model.tflite"]),
    ("torch_checkpoint/checkpoint.tar", ["checkpoint.tar"], ["checkpoint.tar"]),
    ("torch_bf16_safetensors/model.safetensors", ["model.safetensors"], ["model.safetensors"]),
    ("tf1_frozen_graph/frozen.pb", ["frozen.pb"], ["frozen.pb"]),
]


@pytest.mark.parametrize("rel, listed, read", EXPECTED, ids=[e[0].split("/")[0] for e in EXPECTED])
def test_files_read_per_format(rel, listed, read):
    path = str(SAMPLES / rel)
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    assert _rel(json.loads(run_cli("list", "--json", path).stdout)["source"]["files"], folder) == listed
    assert _rel(json.loads(run_cli("stats", "--json", path).stdout)["source"]["files"], folder) == read


def test_split_manifest_and_verify_report_name_the_files(tmp_path):
    path = str(SAMPLES / "tf1_sharded")
    run_cli("split", path, "--out", tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    expected = [str(SAMPLES.resolve() / "tf1_sharded" / n) for n in
                ("checkpoint", "model.ckpt.data-00000-of-00002", "model.ckpt.data-00001-of-00002", "model.ckpt.index")]
    assert manifest["source"] == {"path": path, "format": "tf-checkpoint-v2", "files": expected}
    report = json.loads(run_cli("verify", path, "--json", "--oracle", "numpy").stdout)
    assert report["source"] == manifest["source"]


def test_several_paths_each_name_their_own_files():
    a, b = str(SAMPLES / "tf1_gru_single" / "model.ckpt"), str(SAMPLES / "tflite_int8" / "model.tflite")
    data = json.loads(run_cli("list", "--json", a, b).stdout)
    assert [_rel(e["result"]["source"]["files"], SAMPLES) for e in data["files"]] == [
        ["tf1_gru_single/model.ckpt.index"], ["tflite_int8/model.tflite"]]


def test_library_stores_record_what_they_open():
    import numpy as np

    from gruinspect.formats import open_store
    from gruinspect.store import MemoryStore
    from gruinspect.verify import verify_store

    with open_store(str(SAMPLES / "onnx_helper_lbr0_external" / "model.onnx")) as store:
        assert [os.path.basename(f) for f in store.files_read] == ["model.onnx"]
        for name in store.infos():
            store.read(name)
        assert sorted(os.path.basename(f) for f in store.files_read) == ["model.onnx", "weights.bin"]
    memory = MemoryStore({"gru/gates/kernel": np.zeros((7, 8), np.float32),
                          "gru/candidate/kernel": np.zeros((7, 4), np.float32)})
    assert verify_store(memory, oracle="numpy").to_json()["source"]["files"] == []


# ------------------------------------------------------------------ files outside what was named
def _state_file_folder(tmp_path: Path, sample: str, *, absolute: bool) -> tuple[Path, Path]:
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(SAMPLES / sample, elsewhere)
    (elsewhere / "checkpoint").unlink()
    named = tmp_path / "named"
    named.mkdir()
    target = elsewhere / "model.ckpt" if absolute else "../elsewhere/model.ckpt"
    (named / "checkpoint").write_text(f'model_checkpoint_path: "{target}"\n')
    return named, elsewhere


@pytest.mark.parametrize("absolute", [False, True])
def test_state_file_outside_warns_once_per_file_read(tmp_path, absolute):
    named, elsewhere = _state_file_folder(tmp_path, "tf1_sharded", absolute=absolute)
    data, opened, stderr = _opened_by([tmp_path], "list", "--json", named)
    index = str(elsewhere.resolve() / "model.ckpt.index")
    assert data["source"]["files"] == sorted([str(named.resolve() / "checkpoint"), index])
    assert opened <= set(data["source"]["files"])
    assert [p for p in data["problems"] if "outside" in p] == [
        f"{named}: read {index}, outside the folder named (its `checkpoint` state file points there)."]
    shards = [str(elsewhere.resolve() / f"model.ckpt.data-0000{i}-of-00002") for i in range(2)]
    for command in (["stats"], ["stats", "--json"], ["split", "--out", tmp_path / "out"],
                    ["verify", "--oracle", "numpy"]):
        result = run_cli(command[0], named, *command[1:])
        warned = _warnings(result.stderr)
        assert len(warned) == 3 and len(set(warned)) == 3, result.stderr  # the index and each data shard, once
        assert all(any(f in w for w in warned) for f in [index, *shards]), result.stderr
        shutil.rmtree(tmp_path / "out", ignore_errors=True)


def test_sharded_v1_state_file_outside(tmp_path):
    named, elsewhere = _state_file_folder(tmp_path, "tf1_v1_sharded", absolute=False)
    result = run_cli("list", named)
    warned = _warnings(result.stderr)
    assert len(warned) == 2 and all("outside the folder named" in w for w in warned), result.stderr
    assert {w.split(" read ")[1].split(",")[0] for w in warned} == {
        str(elsewhere.resolve() / f"model.ckpt-0000{i}-of-00002") for i in range(2)}


def _linked_out(tmp_path: Path, sample: str, member: str, outside: str) -> tuple[Path, Path]:
    """A copy of ``sample`` in tmp_path/named whose ``member`` was moved to tmp_path/``outside``
    and replaced by a symbolic link to it."""
    named = tmp_path / "named"
    shutil.copytree(SAMPLES / sample, named)
    shutil.move(named / member, tmp_path / outside)
    (named / member).symlink_to(tmp_path / outside)
    return named, tmp_path / outside


def test_data_shard_linked_out_of_the_folder_warns_when_read(tmp_path):
    named, outside = _linked_out(tmp_path, "tf1_gru_single", "model.ckpt.data-00000-of-00001", "elsewhere.data")
    prefix = named / "model.ckpt"
    assert not _warnings(run_cli("list", prefix).stderr)  # list reads no data file
    data, _, stderr = _opened_by([tmp_path], "stats", "--json", prefix)
    assert str(outside) in data["source"]["files"]
    assert _warnings(stderr) == [f"gruinspect: warning: {prefix}: read {outside}, outside the folder of the file "
                                 f"named (a symbolic link leads there)."]


def test_saved_model_variables_linked_out(tmp_path):
    named, _ = _linked_out(tmp_path, "tf2_keras3_export", "variables", "vars")
    result = run_cli("list", named)
    warned = _warnings(result.stderr)
    assert len(warned) == 2 and all("a symbolic link leads there" in w for w in warned), result.stderr


def test_keras_shard_linked_out(tmp_path):
    named, moved = _linked_out(tmp_path, "keras3_sharded", "model_00001.weights.h5", "moved.h5")
    data = json.loads(run_cli("list", "--json", named / "model.weights.json").stdout)
    assert str(moved) in data["source"]["files"]
    assert sum("outside the folder of the file named" in p for p in data["problems"]) == 1, data["problems"]


@pytest.mark.parametrize("rel", ["keras3_archive/model.keras", "torch_bf16_safetensors/model.safetensors",
                                 "tflite_int8/model.tflite"])
def test_a_file_named_through_a_link_is_not_outside(tmp_path, rel):
    link = tmp_path / os.path.basename(rel)
    link.symlink_to(SAMPLES / rel)
    data, _, stderr = _opened_by([tmp_path, SAMPLES], "stats", "--json", link)
    assert data["source"]["files"] == [str((SAMPLES / rel).resolve())]
    assert not _warnings(stderr), stderr


def test_onnx_external_data_inside_is_read_without_warning(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(SAMPLES / "onnx_helper_lbr0_external", folder)
    data, opened, stderr = _opened_by([tmp_path], "stats", "--json", folder / "model.onnx")
    assert _rel(data["source"]["files"], folder) == ["model.onnx", "weights.bin"] and opened <= set(
        data["source"]["files"])
    assert not _warnings(stderr)


def test_keras_folder_with_npz_weights_names_them(tmp_path):
    import numpy as np

    np.savez(tmp_path / "model.weights.npz", **{"layers/dense/vars/0": np.zeros((3, 4), np.float32)})
    (tmp_path / "config.json").write_text("{}")
    data, opened, _ = _opened_by([tmp_path], "list", "--json", tmp_path)
    assert data["source"]["format"] == "keras3-folder"
    assert _rel(data["source"]["files"], tmp_path) == ["config.json", "model.weights.npz"]
    assert opened <= set(data["source"]["files"])


def test_diff_names_each_side_files_and_warns_about_a_shard_read_later(tmp_path):
    named, outside = _linked_out(tmp_path, "tf1_gru_single", "model.ckpt.data-00000-of-00001", "elsewhere.data")
    a, b = named / "model.ckpt", SAMPLES / "tf1_gru_single" / "model.ckpt"
    data = json.loads(run_cli("diff", a, b, "--json").stdout)
    assert str(outside) in data["a"]["files"]
    assert _rel(data["b"]["files"], SAMPLES) == ["tf1_gru_single/model.ckpt.data-00000-of-00001",
                                                 "tf1_gru_single/model.ckpt.index"]
    warned = _warnings(run_cli("diff", a, b).stderr)
    assert len(warned) == 1 and warned[0].startswith("gruinspect: warning: A: ") and "symbolic link" in warned[0]


def test_stats_and_split_print_reader_warnings_like_list(tmp_path):
    import warnings
    import zipfile

    path = tmp_path / "twice.keras"
    with zipfile.ZipFile(SAMPLES / "keras3_archive" / "model.keras") as src, zipfile.ZipFile(path, "w") as out:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
            for info in src.infolist():
                out.writestr(info, src.read(info))
            out.writestr("config.json", src.read("config.json"))  # the same member again, identical
    listed = _warnings(run_cli("list", path).stderr)
    assert len(listed) == 1 and "config.json" in listed[0], listed
    for args in (["stats"], ["stats", "--json"], ["split", "--out", tmp_path / "out"]):
        assert _warnings(run_cli(args[0], path, *args[1:]).stderr) == listed, args


def test_convert_warns_about_a_shard_read_outside_and_names_it(tmp_path):
    named, outside = _linked_out(tmp_path, "tf1_gru_single", "model.ckpt.data-00000-of-00001", "elsewhere.data")
    result = run_cli("convert", named / "model.ckpt", "--to", "numpy", "--out", tmp_path / "out")
    warned = _warnings(result.stderr)
    assert len(warned) == 1 and str(outside) in warned[0] and "symbolic link" in warned[0], result.stderr
    report = json.loads((tmp_path / "out" / "conversion.json").read_text())
    assert str(outside) in report["source"]["files"]
