"""TensorFlow.js layers models: the reader against what the tensorflowjs converter itself recorded.

The samples were written by tensorflowjs 4.22 (``sample_checkpoints/samples_tfjs.py``), which does
not install beside TensorFlow 2.21, so CI compares with the values the converter run recorded in
each sample's ``expected.npz``: ``tfjs/*`` as tensorflowjs' own reader decoded the shards, and
``keras/*`` as the tf-keras model held them before conversion. Every cell is also run through
tf-keras' GRUCell by the sample-wide ``verify`` test (tests/test_verify.py).
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import SAMPLES, run_cli, sample_path, samples
from gruinspect.errors import GruInspectError
from gruinspect.formats import detect, tfjs
from gruinspect.inventory import open_cells

TFJS = samples(formats=["tfjs-layers-model"])
NOT_RUNNABLE = "the TensorFlow.js runtime cannot run this GRU"


def _expected(entry) -> dict:
    with np.load(SAMPLES / entry["path"] / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def test_there_are_tfjs_samples_with_every_quantization():
    quantized = {q for p in TFJS for q in p.values[0]["quantization"].values()}
    assert len(TFJS) >= 2 and quantized == {"uint8", "uint16", "float16"}


@pytest.mark.parametrize("entry", TFJS)
def test_lists_the_cells_of_the_keras_model(entry):
    data = json.loads(run_cli("list", sample_path(entry), "--json").stdout)
    assert data["source"]["format"] == "tfjs-layers-model"
    got = {c["name"]: c for c in data["cells"]}
    assert list(got) == [c["name"] for c in entry["cells"]]
    for want in entry["cells"]:
        cell = got[want["name"]]
        for key in ("layout", "input_size", "units", "reset_after", "dtype", "activation", "recurrent_activation",
                    "config_source"):
            assert cell[key] == want[key], (want["name"], key)
        assert {role: t["name"] for role, t in cell["tensors"].items()} == want["tensors"]
        assert any(NOT_RUNNABLE in n for n in cell["notes"]) == (not want["tfjs_runnable"])


@pytest.mark.parametrize("entry", TFJS)
def test_values_are_bit_exact_to_the_converters_own_decoding(entry):
    expected = _expected(entry)
    with tfjs.open(sample_path(entry)) as store:
        names = list(store.infos())
        assert sorted(names) == sorted(k[len("tfjs/"):] for k in expected if k.startswith("tfjs/"))
        for name in names:
            value = store.read(name)
            want = expected["tfjs/" + name]
            assert value.dtype == want.dtype and value.shape == want.shape, name
            assert value.tobytes() == want.tobytes(), name


@pytest.mark.parametrize("entry", TFJS)
def test_values_match_the_keras_model_within_the_quantization_step(entry):
    expected = _expected(entry)
    quant = entry["quantization"]
    with tfjs.open(sample_path(entry)) as store:
        meta = store.metadata["quantization"]
        for name in store.infos():
            value, original = store.read(name), expected["keras/" + name]
            kind = quant.get(name)
            if kind is None:
                assert value.tobytes() == original.tobytes(), name
            elif kind == "float16":
                assert np.array_equal(value, original.astype(np.float16).astype(np.float32)), name
            else:
                step = meta[name]["scale"]
                err = np.abs(value.astype(np.float64) - original)
                assert 0 < err.max() <= step / 2 + 1e-7, (name, err.max(), step)


def test_folder_and_model_json_give_the_same_store():
    entry = TFJS[0].values[0]
    folder = SAMPLES / entry["path"]
    assert detect(str(folder)).reader is tfjs and detect(str(folder / "model.json")).reader is tfjs
    with tfjs.open(str(folder)) as a, tfjs.open(str(folder / "model.json")) as b:
        assert a.infos() == b.infos()
        assert [(x.name, x.weights) for x in a.layers] == [(x.name, x.weights) for x in b.layers]


def test_weights_span_shards_in_manifest_order():
    entry = next(p.values[0] for p in TFJS if p.id == "tfjs_layers")
    assert len(entry["shards"]) > 2
    # The shards concatenated, in manifest order, are the float32 weights back to back.
    blob = b"".join((SAMPLES / entry["path"] / s).read_bytes() for s in entry["shards"])
    expected = _expected(entry)
    manifest = json.loads((SAMPLES / entry["path"] / "model.json").read_text())["weightsManifest"]
    order = [w["name"] for w in manifest[0]["weights"]]
    assert blob == b"".join(expected["tfjs/" + n].astype("<f4").tobytes() for n in order)


def test_list_reads_no_weight_bytes():
    entry = TFJS[0].values[0]
    with open_cells(sample_path(entry)) as (store, inventory):
        assert inventory.cells and store.bytes_read == 0


def _copy(tmp_path, name="tfjs_quantized"):
    dst = tmp_path / name
    shutil.copytree(SAMPLES / name, dst)
    return dst


def _link_shard_outside(folder):
    """The shard replaced by a symbolic link to a copy outside the model's folder."""
    shard = folder / "group1-shard1of1.bin"
    outside = folder.parent / "elsewhere.bin"
    outside.write_bytes(shard.read_bytes())
    shard.unlink()
    shard.symlink_to(outside)


def _edit_json(folder, edit):
    model = json.loads((folder / "model.json").read_text())
    edit(model)
    (folder / "model.json").write_text(json.dumps(model))


@pytest.mark.parametrize("damage, words", [
    (lambda d: (d / "group1-shard1of1.bin").unlink(), "listed in weightsManifest group 1 is missing"),
    (lambda d: (d / "group1-shard1of1.bin").write_bytes((d / "group1-shard1of1.bin").read_bytes()[:-1]),
     "a shard is truncated or missing"),
    (lambda d: (d / "group1-shard1of1.bin").write_bytes((d / "group1-shard1of1.bin").read_bytes() + b"\0"),
     "does not describe these shards"),
    (lambda d: _edit_json(d, lambda m: m["weightsManifest"][0].update(paths=["../group1-shard1of1.bin"])),
     "outside the model's folder"),
    (lambda d: _link_shard_outside(d), "outside the model's folder"),
    (lambda d: _edit_json(d, lambda m: m["weightsManifest"][0]["weights"][0].update(shape=[1 << 20, 1 << 20])),
     "a shard is truncated or missing"),
    (lambda d: _edit_json(d, lambda m: m["weightsManifest"][0]["weights"][5]["quantization"].pop("scale")),
     "without a numeric scale and min"),
    (lambda d: _edit_json(d, lambda m: m["weightsManifest"][0]["weights"][0]["quantization"].update(dtype="int4")),
     "tfjs knows uint8, uint16, float16"),
    (lambda d: _edit_json(d, lambda m: m["weightsManifest"][0]["weights"][1].update(name="h16/gru_cell/kernel")),
     "is listed twice"),
    (lambda d: _edit_json(d, lambda m: m.update(format="graph-model")), "TensorFlow.js graph model"),
    (lambda d: (d / "model.json").write_text((d / "model.json").read_text()[:200]), "is not JSON"),
])
def test_damaged_models_are_one_line_errors(tmp_path, damage, words):
    folder = _copy(tmp_path)
    damage(folder)
    with pytest.raises(GruInspectError, match=words):
        tfjs.open(str(folder))
    result = run_cli("list", folder, exit_code=2)
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_topology_without_config_still_finds_the_grus_by_name(tmp_path):
    folder = _copy(tmp_path)
    _edit_json(folder, lambda m: m.pop("modelTopology"))
    with open_cells(str(folder)) as (_, inventory):
        cells = {c.name: c for c in inventory.cells}
    assert sorted(cells) == ["h16", "q16", "q8"]
    assert cells["h16"].reset_after and not cells["q8"].reset_after  # from the bias shapes
    assert cells["q8"].activation is None  # not recorded without the topology


def test_json_that_is_not_tfjs_is_not_claimed(tmp_path):
    other = tmp_path / "config.json"
    other.write_text(json.dumps({"name": "something", "layers": []}))
    assert tfjs.sniff(str(other)) is None
    assert "Unsupported file" in run_cli("list", other, exit_code=2).stderr
