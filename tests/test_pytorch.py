"""PyTorch and safetensors files: read without torch, checked against torch itself.

* every torch sample in the manifest lists exactly its cells (names, sizes, dtype, tensors);
* every tensor the readers give equals ``torch.load(weights_only=True)`` byte for byte
  (``torch.jit.load`` for TorchScript, ``safetensors.torch.load_file``, a whole pickled model
  against the module it was saved from);
* ``verify`` passes against ``torch.nn.GRU`` / ``GRUCell``; ``split``, ``stats`` and ``convert``
  work on every sample, and a stacked bidirectional nn.GRU round-trips to the same nn.GRU;
* hostile pickles (``os.system``, ``exec``, ``eval``, ``subprocess``, a class used as a function,
  protocol 0/1 ``INST``/``OBJ``, ``copyreg``) are refused with one line before anything runs: the
  canary file their payload would create never appears;
* ``list`` imports neither torch nor numpy-heavy readers and reads no tensor data.
"""
from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import SAMPLES, manifest, run_cli, sample_path
from gruinspect import list_cells
from gruinspect.blocks import read_blocks
from gruinspect.formats import open_store
from gruinspect.layouts import spec_for

ENTRIES = [e for e in manifest() if e["name"].startswith("torch_")]
IDS = [e["name"] for e in ENTRIES]
CANARY = "gruinspect_canary"


def _torch():
    return pytest.importorskip("torch")


def _flatten(obj) -> dict:
    """Tensors of a torch.load'ed object by dotted path (the sample generator's own walk)."""
    _torch()
    sys.path.insert(0, str(SAMPLES))
    try:
        from samples_torch import flatten
    finally:
        sys.path.remove(str(SAMPLES))
    return flatten(obj)


def _torch_reference(entry) -> dict:
    """name -> torch.Tensor as torch itself reads the sample."""
    torch = _torch()
    path = sample_path(entry)
    if entry["format"] == "safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    if entry["format"] == "torchscript":
        return dict(torch.jit.load(path).state_dict())
    if entry["name"] == "torch_whole_model":
        return _whole_model_state_dict(path)
    return _flatten(torch.load(path, weights_only=True, map_location="cpu"))


def _whole_model_state_dict(path: str) -> dict:
    """torch.load(weights_only=False) of our own sample, in a child whose __main__ has the class."""
    import tempfile

    torch = _torch()
    code = ("import sys, torch, __main__\n"
            "sys.path.insert(0, sys.argv[3])\n"
            "import samples_torch\n"
            "__main__.Seq2Seq = samples_torch.Seq2Seq\n"
            "torch.save(torch.load(sys.argv[1], weights_only=False).state_dict(), sys.argv[2])\n")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "sd.pt")
        subprocess.run([sys.executable, "-c", code, path, out, str(SAMPLES)], check=True)
        return dict(torch.load(out, weights_only=True))


def _same_bytes(ours: np.ndarray, theirs) -> bool:
    torch = _torch()
    theirs = theirs.detach().contiguous()
    raw = theirs.view(torch.int16).numpy() if theirs.dtype == torch.bfloat16 else theirs.numpy()
    return ours.shape == tuple(theirs.shape) and ours.tobytes() == raw.tobytes()


def test_manifest_has_every_torch_sample():
    assert set(spec_for("pytorch-gru").samples) <= set(IDS)
    assert {e["format"] for e in ENTRIES} == {"pytorch-zip", "pytorch-legacy", "torchscript", "safetensors"}


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_list_finds_the_manifest_cells(entry):
    inv = list_cells(sample_path(entry))
    assert inv.format == entry["format"]
    got = [(c.name, c.layout, c.input_size, c.units, c.reset_after, c.dtype, c.has_bias, c.tensors,
            c.activation, c.recurrent_activation) for c in inv.cells]
    want = [(c["name"], c["layout"], c["input_size"], c["units"], c["reset_after"], c["dtype"], c["use_bias"],
             c["tensors"], c["activation"], c["recurrent_activation"]) for c in entry["cells"]]
    assert got == want
    assert sorted(t.name for t in inv.other_tensors()) == sorted(entry["other_tensors"])
    assert not inv.problems


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_every_tensor_equals_torch_byte_for_byte(entry):
    reference = _torch_reference(entry)
    with open_store(sample_path(entry)) as store:
        assert sorted(store.infos()) == sorted(reference)
        for name, tensor in reference.items():
            info = store.infos()[name]
            assert info.dtype == str(tensor.dtype).replace("torch.", ""), name
            assert _same_bytes(store.read(name), tensor), name


def test_whole_model_matches_module(tmp_path):
    """torch.save(model) of a model whose class lives in a module gruinspect never imports."""
    torch = _torch()
    code = (
        "import sys, torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(s):\n"
        "        super().__init__(); s.gru = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)\n"
        "        s.cell = torch.nn.GRUCell(8, 2); s.lstm = torch.nn.LSTM(3, 4)\n"
        "torch.manual_seed(1); m = Net()\n"
        "torch.save(m, sys.argv[1]); torch.save(m.state_dict(), sys.argv[2])\n"
    )
    whole, sd = tmp_path / "whole.pt", tmp_path / "sd.pt"
    subprocess.run([sys.executable, "-c", code, str(whole), str(sd)], check=True)
    reference = torch.load(sd, weights_only=True)
    with open_store(str(whole)) as store:
        assert sorted(store.infos()) == sorted(reference)
        for name, tensor in reference.items():
            assert _same_bytes(store.read(name), tensor), name
        assert {layer.class_name for layer in store.layers} >= {"__main__.Net", "torch.nn.modules.rnn.GRU"}
    inv = list_cells(str(whole))
    assert [c.name for c in inv.cells] == ["gru/l0", "gru/l0_reverse", "gru/l1", "gru/l1_reverse", "cell"]


def test_several_models_in_one_checkpoint(tmp_path):
    """A GAN-style checkpoint holding two state_dicts, each with GRUs, and an nn.LSTM that is none."""
    torch = _torch()
    torch.manual_seed(2)
    gen, disc = torch.nn.Module(), torch.nn.Module()
    gen.gru = torch.nn.GRU(3, 4, bidirectional=True)
    disc.rnn = torch.nn.GRUCell(5, 2)
    disc.lstm = torch.nn.LSTM(5, 6, proj_size=2)  # weight_hh [24, 2], weight_hh_l0 of an LSTM with a projection
    torch.save({"generator": gen.state_dict(), "discriminator": disc.state_dict(), "step": 7}, tmp_path / "gan.pt")
    inv = list_cells(str(tmp_path / "gan.pt"))
    assert [c.name for c in inv.cells] == ["generator.gru/l0", "generator.gru/l0_reverse", "discriminator.rnn"]
    assert not inv.problems
    reference = _flatten(torch.load(tmp_path / "gan.pt", weights_only=True))
    with open_store(str(tmp_path / "gan.pt")) as store:
        for name, tensor in reference.items():
            assert _same_bytes(store.read(name), tensor), name


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_verify_against_torch(entry):
    _torch()
    result = run_cli("verify", sample_path(entry), "--oracle", "framework", "--json")
    report = json.loads(result.stdout)
    assert report["status"] == "passed"
    for cell in report["cells"]:
        framework = next(c for c in cell["checks"] if c["name"] == "framework")
        assert framework["status"] == "passed" and "torch.nn.GRU" in framework["oracle"], framework


def test_verify_without_torch_uses_the_equations_and_says_so():
    """With torch absent (hidden from the child), the equations check runs and the framework check says why not."""
    path = sample_path(next(e for e in ENTRIES if e["name"] == "torch_legacy"))
    code = ("import sys; sys.modules['torch'] = None\n"
            "from gruinspect.cli import main\n"
            "main(sys.argv[1:], prog_name='gruinspect')\n")
    auto = subprocess.run([sys.executable, "-c", code, "verify", path, "--json"], capture_output=True, text=True)
    assert auto.returncode == 0, auto.stderr
    (cell,) = json.loads(auto.stdout)["cells"]
    checks = {c["name"]: c for c in cell["checks"]}
    assert checks["equations"]["status"] == "passed"
    assert checks["framework"]["status"] == "skipped" and "gruinspect[torch]" in checks["framework"]["message"]
    strict = subprocess.run([sys.executable, "-c", code, "verify", path, "--oracle", "framework"], capture_output=True,
                            text=True)
    assert strict.returncode == 2 and "torch not installed" in strict.stderr


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_split_and_stats(entry, tmp_path):
    run_cli("split", sample_path(entry), "--out", tmp_path / "out")
    split = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [c["name"] for c in split["cells"]] == [c["name"] for c in entry["cells"]]
    stats = json.loads(run_cli("stats", sample_path(entry), "--json").stdout)
    assert len(stats["cells"]) == len(entry["cells"])


def test_blocks_are_row_bands_transposed():
    """W_r is weight_ih[0:H].T, U_z is weight_hh[H:2H].T, b_hn is bias_hh[2H:3H] (torch GRU docstring)."""
    torch = _torch()
    entry = next(e for e in ENTRIES if e["name"] == "torch_zip_bigru")
    reference = torch.load(sample_path(entry), weights_only=True)
    with open_store(sample_path(entry)) as store:
        cell = next(c for c in list_cells(sample_path(entry)).cells if c.name == "encoder.gru/l1_reverse")
        blocks = read_blocks(store, cell)
    H = cell.units
    w_ih = reference["encoder.gru.weight_ih_l1_reverse"].numpy()
    w_hh = reference["encoder.gru.weight_hh_l1_reverse"].numpy()
    b_hh = reference["encoder.gru.bias_hh_l1_reverse"].numpy()
    assert np.array_equal(blocks[("reset", "input_kernel")], w_ih[:H].T)
    assert np.array_equal(blocks[("update", "recurrent_kernel")], w_hh[H:2 * H].T)
    assert np.array_equal(blocks[("candidate", "recurrent_bias")], b_hh[2 * H:])
    assert blocks[("candidate", "input_kernel")].shape == (8, 4)


def test_stacked_bidirectional_round_trips_to_the_same_nn_gru(tmp_path):
    torch = _torch()
    entry = next(e for e in ENTRIES if e["name"] == "torch_zip_bigru")
    run_cli("convert", sample_path(entry), "--to", "pytorch", "--out", tmp_path / "out", "--cell", "encoder.gru/*")
    report = json.loads((tmp_path / "out" / "conversion.json").read_text())
    (record,) = [f for f in report["files"] if "torch.nn.GRU" in f]
    assert record["torch.nn.GRU"] == {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bidirectional": True,
                                      "bias": True}
    from safetensors.torch import load_file

    written = load_file(str(tmp_path / "out" / record["file"]))
    source = torch.load(sample_path(entry), weights_only=True)
    assert sorted(written) == sorted(k.removeprefix("encoder.gru.") for k in source if k.startswith("encoder.gru."))
    for name, tensor in written.items():
        assert torch.equal(tensor, source[f"encoder.gru.{name}"]), name
    # and the written file reads back as the same four cells
    assert [c.name for c in list_cells(str(tmp_path / "out" / record["file"])).cells] == [
        "l0", "l0_reverse", "l1", "l1_reverse"]


def test_convert_to_tf1_says_reset_after_is_not_representable(tmp_path):
    entry = next(e for e in ENTRIES if e["name"] == "torch_legacy")
    result = run_cli("convert", sample_path(entry), "--to", "tf1", "--out", tmp_path / "out", exit_code=1)
    assert "reset" in result.stderr and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ hostile pickles


def _zip_pickle(path, data: bytes, storages: dict | None = None) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", data)
        zf.writestr("archive/byteorder", "little")
        for key, raw in (storages or {}).items():
            zf.writestr(f"archive/data/{key}", raw)
        zf.writestr("archive/version", "3\n")


def _legacy_pickle(path, data: bytes) -> None:
    head = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    path.write_bytes(head + data + pickle.dumps([], protocol=2))


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _call(module: str, name: str, *args: str) -> bytes:
    """GLOBAL module.name, then REDUCE on a tuple of string arguments (protocol 2)."""
    body = b"(" + b"".join(b"X" + struct.pack("<I", len(a)) + a.encode() for a in args) + b"t"
    return _global(module, name) + body + b"R"


TOUCH = f"touch {CANARY}"
HOSTILE = {
    "os.system": b"\x80\x02" + _call("os", "system", TOUCH) + b".",
    "posix.system": b"\x80\x02" + _call("posix", "system", TOUCH) + b".",
    "builtins.exec": b"\x80\x02" + _call("builtins", "exec", f"open({CANARY!r}, 'w')") + b".",
    "builtins.eval": b"\x80\x02" + _call("builtins", "eval", f"open({CANARY!r}, 'w')") + b".",
    "subprocess.call": b"\x80\x02" + _global("subprocess", "call") + b"((X\x05\x00\x00\x00touchX"
                       + struct.pack("<I", len(CANARY)) + CANARY.encode() + b"ltR.",
    "builtins.getattr": b"\x80\x02" + _call("builtins", "getattr", "os", "system") + b".",
    # protocol 0: INST calls the class with its arguments
    "INST os.system": b"(S'" + TOUCH.encode() + b"'\nios\nsystem\n.",
    # protocol 1: OBJ calls the class on the stack with the arguments above it
    "OBJ os.system": b"(" + _global("os", "system") + b"S'" + TOUCH.encode() + b"'\no.",
    # a class named by the file, used as a function
    "class as function": b"\x80\x02" + _call("__main__", "Net", TOUCH) + b".",
    "copyreg with os.system as base": b"\x80\x02" + _global("copyreg", "_reconstructor") + _global("__main__", "Net")
                                       + _global("os", "system") + b"X\x01\x00\x00\x00x\x87R.",
    # NEWOBJ builds an inert stand-in; REDUCE on the instance is a call too
    "call a built object": b"\x80\x02" + _global("__main__", "Net") + b")\x81)R.",
}


@pytest.mark.parametrize("kind", ["zip", "legacy"])
@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_pickle_is_refused_before_it_runs(case, kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    (_zip_pickle if kind == "zip" else _legacy_pickle)(path, HOSTILE[case])
    for command in (["list"], ["stats"], ["split", "--out", str(tmp_path / "out")], ["verify"]):
        result = run_cli(*command, path, exit_code=2)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "never executes code from a file" in lines[0], result.stderr
        assert "it asks to call" in lines[0] and str(path) in lines[0]
    assert not (tmp_path / CANARY).exists() and not (tmp_path / "out").exists()


def test_torch_saved_hostile_pickle_never_creates_its_file(tmp_path):
    """A payload written by torch.save itself: its __reduce__ asks pickle to call os.system."""
    _torch()
    code = (
        "import os, sys, torch\n"
        "class Evil:\n"
        "    def __reduce__(self):\n"
        f"        return (os.system, ('touch ' + sys.argv[2],))\n"
        "torch.save({'gru.weight_ih': torch.zeros(6, 3), 'payload': Evil()}, sys.argv[1])\n"
    )
    canary = tmp_path / CANARY
    path = tmp_path / "evil.pt"
    subprocess.run([sys.executable, "-c", code, str(path), str(canary)], check=True)
    assert not canary.exists()
    for command in (["list"], ["stats"], ["verify"], ["convert", "--to", "keras", "--out", str(tmp_path / "o")]):
        result = run_cli(*command, path, exit_code=2)
        assert "it asks to call posix.system" in result.stderr and "never executes code" in result.stderr
    assert not canary.exists()


def test_build_on_a_stand_in_only_records_state(tmp_path, monkeypatch):
    """NEWOBJ + BUILD whose state names __setstate__ / __class__: recorded, nothing runs."""
    monkeypatch.chdir(tmp_path)
    evil_state = (b"\x80\x02" + _global("__main__", "Net") + b")\x81}(X\x0c\x00\x00\x00__setstate__"
                  + _global("os", "system") + b"X\x09\x00\x00\x00__class__" + _global("os", "system") + b"ub.")
    path = tmp_path / "inert.pt"
    _zip_pickle(path, evil_state)
    run_cli("list", path)
    assert not (tmp_path / CANARY).exists()


# ------------------------------------------------------------------------------ speed contracts


def test_list_imports_no_framework_and_reads_no_tensor_data():
    paths = [sample_path(e) for e in ENTRIES]
    code = (
        "import sys, json\n"
        "from gruinspect.inventory import open_cells\n"
        "out = []\n"
        "for p in sys.argv[1:]:\n"
        "    with open_cells(p) as (store, inv):\n"
        "        out.append(store.bytes_read)\n"
        "print(json.dumps({'read': out, 'mods': [m for m in ('torch', 'safetensors', 'tensorflow', 'h5py', 'numpy') "
        "if m in sys.modules]}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, check=True)
    report = json.loads(result.stdout)
    assert report == {"read": [0] * len(paths), "mods": []}


def test_views_of_one_flat_storage_read_by_offset_and_stride():
    entry = next(e for e in ENTRIES if e["name"] == "torch_cuda_flat")
    with open_store(sample_path(entry)) as store:
        assert store.metadata["storage_locations"] == ["cuda:0"]
        storages = {n: k for n, k in store.metadata["tensor_storages"].items() if n.startswith("gru.")}
        assert len(storages) == 8 and len(set(storages.values())) == 1  # one shared storage
        before = store.bytes_read
        value = store.read("gru.weight_hh_l0_reverse")
        assert store.bytes_read - before == value.nbytes  # just its own part of the flat buffer


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_views_into_shared_storages_read_by_offset_and_stride(tmp_path, legacy):
    """Slices, transposes and rows of one storage, in float64, float16 and bfloat16, in both formats."""
    torch = _torch()
    w = torch.arange(60, dtype=torch.float64).reshape(6, 10)
    state = {"a": w[1:4, 2:7], "b": w.t(), "c": w[5], "h": torch.arange(12, dtype=torch.float16).reshape(3, 4).t(),
             "bf": torch.linspace(-1, 1, 3, dtype=torch.bfloat16)}
    path = tmp_path / "views.pt"
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    reference = torch.load(path, weights_only=True)
    with open_store(str(path)) as store:
        assert store.format == ("pytorch-legacy" if legacy else "pytorch-zip")
        assert len({store.metadata["tensor_storages"][k] for k in "abc"}) == 1
        for name, tensor in reference.items():
            assert _same_bytes(store.read(name), tensor), name


def test_samples_exist_on_disk():
    for entry in ENTRIES:
        assert (SAMPLES / entry["path"]).is_file(), entry["path"]
