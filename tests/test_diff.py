"""`diff`: each porting mistake, made on files the frameworks wrote, is named by the right code.

The mistakes are made the way people make them: the tensors of a file written by tf-keras or
Keras 3 (the bundled samples) are rewritten with h5py (gate slices swapped, a kernel transposed,
bias rows summed or zeroed, values cast to float16...), and, where a port is involved, the port
is written by the target framework itself. A child process runs tf-keras on the damaged files to
check that what diff calls equivalent really computes the same and what it calls a mistake does not.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import ml_dtypes
import numpy as np
import pytest

from conftest import SAMPLES, run_cli
from gruinspect.diff import diff

FULL_H5 = SAMPLES / "tfkeras_full_h5" / "model.h5"  # tf-keras model.save: g1 3->4 reset_after=True, ...
WEIGHTS3 = SAMPLES / "keras3_weights_h5" / "model.weights.h5"  # Keras 3: bidi of GRU 3->3 (square input kernel)
G1 = "model_weights/g1/g1/gru_cell/"
H = 4  # g1's units; Keras stores its gates z|r|h along the last axis


def _gates(v: np.ndarray, units: int) -> list[np.ndarray]:
    return [v[..., k * units:(k + 1) * units].copy() for k in range(3)]


def _join(parts) -> np.ndarray:
    return np.concatenate(parts, axis=-1)


def damaged(tmp_path: Path, name: str, mutate, source: Path = FULL_H5) -> str:
    path = tmp_path / f"{name}{''.join(source.suffixes)}"
    shutil.copy(source, path)
    with h5py.File(path, "r+") as f:
        mutate(f)
    return str(path)


def _rewrite(f, name: str, value: np.ndarray, dtype=None) -> None:
    """Replace a dataset, keeping its dtype unless ``dtype`` is given (h5py: a new dataset)."""
    dtype = dtype or f[name].dtype
    del f[name]
    f.create_dataset(name, data=np.asarray(value).astype(dtype))


def swap_update_reset(f):
    for t in ("kernel:0", "recurrent_kernel:0", "bias:0"):
        z, r, h = _gates(f[G1 + t][...], H)
        f[G1 + t][...] = _join([r, z, h])


def swap_recurrent_only(f):
    z, r, h = _gates(f[G1 + "recurrent_kernel:0"][...], H)
    f[G1 + "recurrent_kernel:0"][...] = _join([h, r, z])


def transpose_recurrent(f):
    f[G1 + "recurrent_kernel:0"][...] = _join([g.T for g in _gates(f[G1 + "recurrent_kernel:0"][...], H)])


def merge_all_biases(f):
    b = f[G1 + "bias:0"][...]
    f[G1 + "bias:0"][...] = np.stack([b[0] + b[1], np.zeros_like(b[1])])


def merge_reset_update_biases(f):
    b = f[G1 + "bias:0"][...]
    b[0, :2 * H] += b[1, :2 * H]
    b[1, :2 * H] = 0
    f[G1 + "bias:0"][...] = b


def drop_recurrent_bias(f):
    b = f[G1 + "bias:0"][...]
    b[1] = 0
    f[G1 + "bias:0"][...] = b


def _every_g1_tensor(f, fn, dtype=None):
    for t in ("kernel:0", "recurrent_kernel:0", "bias:0"):
        _rewrite(f, G1 + t, fn(f[G1 + t][...].astype(np.float64)), dtype)


def cast_float16(f):
    _every_g1_tensor(f, lambda v: v, np.float16)


def bfloat16_round_trip(f):
    _every_g1_tensor(f, lambda v: v.astype(ml_dtypes.bfloat16).astype(np.float32))


def int8_round_trip(f):
    def q(v):
        scale = np.abs(v).max() / 127
        return np.clip(np.round(v / scale), -127, 127) * scale
    _every_g1_tensor(f, q)


def fine_tune(f):
    rng = np.random.default_rng(5)
    _every_g1_tensor(f, lambda v: v + 1e-3 * rng.standard_normal(v.shape))


def _edit_config(f, layer: str, **changes):
    config = json.loads(f.attrs["model_config"])

    def walk(node):
        if isinstance(node, dict):
            if node.get("class_name") == "GRU" and node.get("config", {}).get("name") == layer:
                node["config"].update(changes)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(config)
    f.attrs["model_config"] = json.dumps(config)


def hard_sigmoid_gates(f):
    _edit_config(f, "g1", recurrent_activation="hard_sigmoid")


def relu_candidate(f):
    _edit_config(f, "g1", activation="relu")


def reset_before_port(f):
    # GRU(reset_after=False) holds one bias set: the two summed, as a port to such a layer does.
    b = f[G1 + "bias:0"][...]
    _rewrite(f, G1 + "bias:0", b[0] + b[1])
    _edit_config(f, "g1", reset_after=False)


def swap_and_cast(f):
    swap_update_reset(f)
    cast_float16(f)


MISTAKES = {
    # name: (mutation, verdict, finding codes of g1 in order)
    "gates_swapped": (swap_update_reset, "explained", ["gates_swapped"]),
    "recurrent_gates_swapped": (swap_recurrent_only, "explained", ["gates_swapped"]),
    "transposed": (transpose_recurrent, "explained", ["transposed"]),
    "biases_merged": (merge_all_biases, "explained", ["biases_merged", "biases_merged"]),
    "reset_update_biases_merged": (merge_reset_update_biases, "equivalent", ["biases_merged"]),
    "bias_missing": (drop_recurrent_bias, "explained", ["bias_missing"]),
    "float16": (cast_float16, "explained", ["dtype"]),
    "bfloat16": (bfloat16_round_trip, "explained", ["dtype"]),
    "int8": (int8_round_trip, "explained", ["dtype"]),
    "hard_sigmoid": (hard_sigmoid_gates, "explained", ["activation"]),
    "relu": (relu_candidate, "explained", ["activation"]),
    "reset_placement": (reset_before_port, "explained", ["biases_merged", "biases_merged", "reset_placement"]),
    "swapped_and_float16": (swap_and_cast, "explained", ["gates_swapped", "dtype"]),
    "fine_tuned": (fine_tune, "different", ["values"]),
}


def _pair(report, name="g1"):
    return next(p for p in report.pairs if p.a.name == name)


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_mistake_is_named(tmp_path, mistake):
    mutate, verdict, codes = MISTAKES[mistake]
    report = diff(str(FULL_H5), damaged(tmp_path, mistake, mutate))
    g1 = _pair(report)
    assert (g1.verdict, [f.code for f in g1.findings]) == (verdict, codes), [f.detail for f in g1.findings]
    others = [p.verdict for p in report.pairs if p is not g1]
    assert others == ["identical"] * 3
    assert report.exit_code == (0 if verdict == "equivalent" else 1)


def test_swapped_gates_say_which_gate_holds_which(tmp_path):
    g1 = _pair(diff(str(FULL_H5), damaged(tmp_path, "swap", swap_update_reset)))
    (finding,) = g1.findings
    assert finding.data["b_gate_holds_a_gate"] == {"reset": "update", "update": "reset", "candidate": "candidate"}
    assert "B's reset gate holds A's update gate" in finding.detail
    assert finding.data["roles"] == ["input_kernel", "recurrent_kernel", "bias", "recurrent_bias"]
    only = _pair(diff(str(FULL_H5), damaged(tmp_path, "rec", swap_recurrent_only))).findings[0]
    assert only.data["roles"] == ["recurrent_kernel"]
    assert only.data["b_gate_holds_a_gate"] == {"reset": "reset", "update": "candidate", "candidate": "update"}


def test_a_merged_candidate_bias_changes_a_reset_after_function(tmp_path):
    g1 = _pair(diff(str(FULL_H5), damaged(tmp_path, "merged", merge_all_biases)))
    by_gates = {tuple(f.data["gates"]): f for f in g1.findings}
    assert not by_gates[("reset", "update")].changes_function
    assert by_gates[("candidate",)].changes_function
    assert "reset gate" in by_gates[("candidate",)].detail


def test_transposed_square_input_kernel(tmp_path):
    base = "layers/bidirectional/forward_layer/cell/vars/0"

    def transpose_input(f):
        f[base][...] = _join([g.T for g in _gates(f[base][...], 3)])
    report = diff(str(WEIGHTS3), damaged(tmp_path, "t", transpose_input, WEIGHTS3))
    fw = _pair(report, "bidi/forward_gru")
    assert fw.verdict == "explained"
    assert [(f.code, f.data["role"], f.data["gates"]) for f in fw.findings] == \
        [("transposed", "input_kernel", ["reset", "update", "candidate"])]
    assert fw.notes  # weights-only files record no activations: the defaults were assumed, and said so


def test_untouched_copy_is_identical_and_exit_0(tmp_path):
    copy = damaged(tmp_path, "copy", lambda f: None)
    result = run_cli("diff", FULL_H5, copy, "--json")
    data = json.loads(result.stdout)
    assert [p["verdict"] for p in data["pairs"]] == ["identical"] * 4
    assert data["unpaired_a"] == data["unpaired_b"] == []
    assert {p["output_max_abs"] for p in data["pairs"]} == {0.0}


def test_lossless_dtype_change_is_equivalent(tmp_path):
    half = damaged(tmp_path, "half", cast_float16)
    wide = damaged(tmp_path, "wide", lambda f: _every_g1_tensor(f, lambda v: v, np.float32), Path(half))
    g1 = _pair(diff(half, wide))
    assert g1.verdict == "equivalent"
    assert [(f.code, f.changes_function) for f in g1.findings] == [("dtype", False)]


def test_json_contract(tmp_path):
    result = run_cli("diff", FULL_H5, damaged(tmp_path, "swap", swap_update_reset), "--json", exit_code=1)
    data = json.loads(result.stdout)
    assert set(data) >= {"a", "b", "pairs", "unpaired_a", "unpaired_b"}
    assert data["a"] == {"path": str(FULL_H5), "format": "keras-h5", "files": [os.path.realpath(FULL_H5)]}
    pair = data["pairs"][0]
    assert set(pair) >= {"a", "b", "verdict", "findings", "blocks", "output_max_abs"}
    assert pair["findings"][0]["code"] == "gates_swapped" and pair["findings"][0]["detail"]
    assert len(pair["blocks"]) == 12
    assert set(pair["blocks"][0]) >= {"gate", "role", "max_abs", "rel_l2"}
    reset_kernel = next(b for b in pair["blocks"] if (b["gate"], b["role"]) == ("reset", "input_kernel"))
    assert reset_kernel["max_abs"] > 0 and reset_kernel["shape_a"] == reset_kernel["shape_b"] == [3, 4]


def test_plain_output_names_the_mistake(tmp_path):
    out = run_cli("diff", FULL_H5, damaged(tmp_path, "tuned", fine_tune), exit_code=1).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["A", "CELL", "B", "CELL", "VERDICT", "OUTPUT", "MAX", "ABS", "FINDINGS"]
    assert "g1 -> g1: different" in lines
    assert any(line.startswith("candidate recurrent_kernel") for line in lines)  # sizes per block
    assert lines[-1].startswith("4 pairs: 1 different, 3 identical;")


def test_pairing_by_order_and_by_hand(tmp_path):
    # tf1_multi_rnn: cell_0 4->5, cell_1 5->3; tf1_gru_single: rnn/gru_cell 3->4. Nothing shares a name.
    multi = SAMPLES / "tf1_multi_rnn" / "model.ckpt"
    report = diff(str(FULL_H5), str(multi))
    assert report.pairs == [] and len(report.unpaired_a) == 4 and len(report.unpaired_b) == 2
    assert report.exit_code == 1
    # inner_gru is 6->5, cell_0 4->5: a pair by hand of different shapes is reported, not an error
    out = run_cli("diff", FULL_H5, multi, "--pair", "inner_model/inner_gru=rnn/multi_rnn_cell/cell_0/gru_cell",
                  "--json", exit_code=1)
    data = json.loads(out.stdout)
    assert [(p["a"], p["verdict"], p["findings"][0]["code"]) for p in data["pairs"]] == \
        [("inner_model/inner_gru", "different", "values")]
    assert "rnn/multi_rnn_cell/cell_1/gru_cell" in data["unpaired_b"]
    same_shape = diff(str(SAMPLES / "tf1_legacy_r10" / "model.ckpt"), str(SAMPLES / "tf1_gru_single" / "model.ckpt"))
    assert [(p.a.name, p.b.name, p.paired_by) for p in same_shape.pairs] == \
        [("rnn/gru_cell", "rnn/gru_cell", "name")]


def test_pairing_by_order_when_names_differ():
    report = diff(str(SAMPLES / "tf1_gru_single" / "model.ckpt"), str(SAMPLES / "tf1_legacy_r012" / "model.ckpt"))
    # r012 holds RNN/GRUCell (3->4) then a 2->5 and a 5->3 cell: only the 3->4 one pairs
    assert [(p.b.name, p.paired_by) for p in report.pairs] == [("RNN/GRUCell", "order")]
    assert len(report.unpaired_b) == 2


@pytest.mark.parametrize("args, message", [
    (["--pair", "g1"], "Invalid --pair 'g1'"),
    (["--pair", "nope=g1"], "No cell 'nope' in A"),
    (["--pair", "g1=g1", "--pair", "g1=bidi/forward_gru"], "each cell may be paired once"),
])
def test_bad_pairs_are_usage_errors(args, message):
    result = run_cli("diff", FULL_H5, FULL_H5, *args, exit_code=2)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unreadable_input_exit_2(tmp_path):
    bad = tmp_path / "x.h5"
    bad.write_bytes(b"not a model")
    result = run_cli("diff", FULL_H5, bad, exit_code=2)
    assert result.stderr.startswith("gruinspect: error: Unsupported file")


# --------------------------------------------------------------------------- the framework's word


def _keras_outputs_main(paths_json: str, out_file: str) -> None:
    """Child process: tf-keras loads each file and runs its layer g1 on one input sequence."""
    import warnings

    warnings.filterwarnings("ignore")
    import tf_keras

    import h5py

    x = np.random.default_rng(3).standard_normal((2, 6, 3)).astype(np.float32)
    out = {}
    models = {}  # model_config -> a model tf-keras built from it; weights then come from each file
    for key, path in json.loads(paths_json).items():
        with h5py.File(path, "r") as f:
            config = f.attrs["model_config"]
        if config not in models:
            models[config] = tf_keras.models.load_model(path, compile=False)
        model = models[config]
        model.load_weights(path)
        out[key] = np.asarray(model.get_layer("g1")(x), dtype=np.float64)  # its outputs as the model holds it
    np.savez(out_file, **out)


def test_tf_keras_agrees_with_the_verdicts(tmp_path):
    """What diff calls identical or equivalent, tf-keras computes the same; every mistake it names changes
    tf-keras' output."""
    paths = {"a": str(FULL_H5)}
    verdicts = {}
    for mistake, (mutate, verdict, _) in MISTAKES.items():
        paths[mistake] = damaged(tmp_path, mistake, mutate)
        verdicts[mistake] = _pair(diff(str(FULL_H5), paths[mistake])).verdict
    out = tmp_path / "outputs.npz"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_USE_LEGACY_KERAS="1")
    proc = subprocess.run([sys.executable, __file__, "--keras-outputs", json.dumps(paths), str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with np.load(out) as ys:
        for mistake, verdict in verdicts.items():
            gap = float(np.max(np.abs(ys[mistake] - ys["a"])))
            if verdict == "equivalent":
                assert gap < 1e-5, (mistake, gap)
            else:
                assert gap > 1e-4, (mistake, gap)




# --------------------------------------------------------------------------- ports across frameworks

KERAS3 = SAMPLES / "keras3_archive" / "model.keras"
ONNX_PORT = SAMPLES / "onnx_keras_converted" / "model.onnx"  # gruinspect convert --to onnx of KERAS3
TF1 = SAMPLES / "tf1_gru_single" / "model.ckpt"


def test_bundled_keras_ports_of_a_tf1_cell():
    """The README's worked example: the right port is equivalent (exit 0), the hand-written one swaps two gates."""
    right = run_cli("diff", TF1, SAMPLES / "diff_port_keras" / "model.keras", "--json")
    (pair,) = json.loads(right.stdout)["pairs"]
    assert (pair["a"], pair["b"], pair["paired_by"], pair["verdict"]) == ("rnn/gru_cell", "gru", "order", "equivalent")
    assert pair["output_max_abs"] == 0.0 and pair["findings"] == []
    wrong = run_cli("diff", TF1, SAMPLES / "diff_port_keras_wrong" / "model.keras", "--json", exit_code=1)
    (pair,) = json.loads(wrong.stdout)["pairs"]
    assert pair["verdict"] == "explained"
    (finding,) = pair["findings"]
    assert finding["code"] == "gates_swapped"
    assert "A's order was copied into B's slots unchanged" in finding["detail"]
    assert "reset|update|candidate" in finding["detail"] and "update|reset|candidate" in finding["detail"]


def test_onnx_port_of_a_keras_model_is_equivalent():
    report = diff(str(KERAS3), str(ONNX_PORT))
    assert [(p.a.name, p.b.name, p.verdict) for p in report.pairs] == [
        ("encoder", "encoder/forward", "equivalent"), ("decoder", "decoder/forward", "equivalent"),
        ("block/inner_gru", "block/inner_gru/forward", "equivalent")]
    assert report.exit_code == 0
    assert any("zero recurrent biases" in n for n in report.pairs[1].notes)  # ONNX always has Rb


def _onnx_damaged(tmp_path: Path, name: str, mutate) -> str:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(ONNX_PORT))
    inits = {i.name: i for i in model.graph.initializer}
    encoder = next(n for n in model.graph.node if n.name == "encoder")
    values = {k: numpy_helper.to_array(inits[k]).copy() for k in ("W_l0", "R_l0", "B_l0")}
    mutate(encoder, values)
    for k, v in values.items():
        inits[k].CopyFrom(numpy_helper.from_array(v, k))
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return str(path)


def _onnx_torch_order(node, v):
    # PyTorch's r|z|n row order written into ONNX's z|r|h rows
    for k in ("W_l0", "R_l0"):
        z, r, h = (v[k][:, g * 4:(g + 1) * 4].copy() for g in range(3))
        v[k] = np.concatenate([r, z, h], axis=1)
    for half in (0, 12):
        z, r, h = (v["B_l0"][:, half + g * 4:half + (g + 1) * 4].copy() for g in range(3))
        v["B_l0"][:, half:half + 12] = np.concatenate([r, z, h], axis=1)


def _onnx_untransposed(node, v):
    # R holds [3H, H] blocks in W @ h orientation; Keras' U (h @ U) copied as is
    v["R_l0"] = np.concatenate([v["R_l0"][:, g * 4:(g + 1) * 4].transpose(0, 2, 1) for g in range(3)], axis=1)


def _onnx_linear_before_reset_0(node, v):
    next(a for a in node.attribute if a.name == "linear_before_reset").i = 0


ONNX_MISTAKES = {
    "gates_swapped": (_onnx_torch_order, ["gates_swapped"]),
    "transposed": (_onnx_untransposed, ["transposed"]),
    "reset_placement": (_onnx_linear_before_reset_0, ["reset_placement"]),
}


@pytest.mark.parametrize("mistake", list(ONNX_MISTAKES))
def test_onnx_port_mistakes(tmp_path, mistake):
    mutate, codes = ONNX_MISTAKES[mistake]
    path = _onnx_damaged(tmp_path, mistake, mutate)
    report = diff(str(KERAS3), path)
    encoder = report.pairs[0]
    assert (encoder.verdict, [f.code for f in encoder.findings]) == ("explained", codes)
    assert [p.verdict for p in report.pairs[1:]] == ["equivalent", "equivalent"]
    # onnxruntime agrees that the damaged encoder computes something else
    import onnxruntime as ort

    def run(p):
        session = ort.InferenceSession(p, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(2)
        feeds = {}
        for i in session.get_inputs():
            shape = [d if isinstance(d, int) else 2 for d in i.shape]
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32) * (0.5 if "initial_h" in i.name else 1)
        return session.run(None, feeds)[0]
    assert float(np.max(np.abs(run(path) - run(str(ONNX_PORT))))) > 1e-4


def test_readme_example_is_what_diff_prints(monkeypatch):
    import re

    readme = (SAMPLES.parent / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r"```\n\$ (gruinspect diff [^\n]*)\n(.*?)```", readme, flags=re.S)
    assert len(shown) == 2
    monkeypatch.chdir(SAMPLES.parent)
    for command, output in shown:
        args = command.split()[1:]
        code = 0 if "wrong" not in command else 1
        assert run_cli(*args, exit_code=code).stdout == output


# --------------------------------------------------------------------------- PyTorch ports of a Keras GRU


@pytest.fixture(scope="module")
def torch_port(tmp_path_factory) -> dict:
    """g1 of the tf-keras sample written by `gruinspect convert --to pytorch` (proven by torch.nn.GRU),
    plus the Keras tensors a hand port starts from, as h5py reads them."""
    from gruinspect.convert import convert

    out = tmp_path_factory.mktemp("torch_port") / "port"
    assert convert(str(FULL_H5), "pytorch", str(out), patterns=["g1"]).status == "written"
    with h5py.File(FULL_H5, "r") as f:
        keras = {t: f[G1 + t + ":0"][...] for t in ("kernel", "recurrent_kernel", "bias")}
    return {"path": out / "model.safetensors", "keras": keras}


def _keras_gates(v: np.ndarray) -> dict[str, np.ndarray]:
    z, r, h = _gates(v, H)
    return {"update": z, "reset": r, "candidate": h}


def _torch_state(keras: dict, *, order=("reset", "update", "candidate"), transpose=True) -> dict[str, np.ndarray]:
    """The nn.GRU state dict a port writes from Keras tensors: rows in ``order``."""
    k, u = _keras_gates(keras["kernel"]), _keras_gates(keras["recurrent_kernel"])
    b, rb = _keras_gates(keras["bias"][0]), _keras_gates(keras["bias"][1])
    t = (lambda m: m.T) if transpose else (lambda m: m)
    return {"weight_ih_l0": np.concatenate([k[g].T for g in order]),
            "weight_hh_l0": np.concatenate([t(u[g]) for g in order]),
            "bias_ih_l0": np.concatenate([b[g] for g in order]),
            "bias_hh_l0": np.concatenate([rb[g] for g in order])}


def _keras_order_copied(keras):
    # the whole Keras tensors transposed into PyTorch's slots: z|r|h where nn.GRU reads r|z|n
    return {"weight_ih_l0": keras["kernel"].T, "weight_hh_l0": keras["recurrent_kernel"].T,
            "bias_ih_l0": keras["bias"][0], "bias_hh_l0": keras["bias"][1]}


def _merged(keras):
    state = _torch_state(keras)
    state["bias_ih_l0"] = state["bias_ih_l0"] + state["bias_hh_l0"]
    state["bias_hh_l0"] = np.zeros_like(state["bias_hh_l0"])
    return state


def _half(keras):
    return {k: v.astype(np.float16) for k, v in _torch_state(keras).items()}


def _no_bias(keras):
    state = _torch_state(keras)
    return {k: v for k, v in state.items() if k.startswith("weight")}


TORCH_MISTAKES = {
    # name: (state dict from the Keras tensors, codes)
    "keras_order_copied": (_keras_order_copied, ["gates_swapped"]),
    "per_gate_untransposed": (lambda keras: _torch_state(keras, transpose=False), ["transposed"]),
    "biases_merged": (_merged, ["biases_merged", "biases_merged"]),
    "float16": (_half, ["dtype"]),
    "bias_missing": (_no_bias, ["bias_missing", "bias_missing"]),
}


def test_correct_torch_port_is_equivalent(torch_port):
    result = run_cli("diff", FULL_H5, torch_port["path"], "--pair", "g1=l0", "--json")
    data = json.loads(result.stdout)
    (pair,) = data["pairs"]
    assert (pair["verdict"], pair["findings"]) == ("equivalent", [])
    assert data["unpaired_a"] == ["bidi/forward_gru", "bidi/backward_gru", "inner_model/inner_gru"]
    assert data["exit_code"] == 0  # cells left out of --pair do not fail it
    by_order = run_cli("diff", FULL_H5, torch_port["path"], exit_code=1)  # unpaired cells do
    assert "g1      l0      equivalent" in by_order.stdout


@pytest.mark.parametrize("mistake", list(TORCH_MISTAKES))
@pytest.mark.parametrize("writer", ["safetensors", "torch.save"])
def test_torch_port_mistakes(torch_port, tmp_path, mistake, writer):
    import torch

    make, codes = TORCH_MISTAKES[mistake]
    state = make(torch_port["keras"])
    if writer == "safetensors":
        from safetensors.numpy import save_file

        path = tmp_path / "port.safetensors"
        save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(path))
    else:
        path = tmp_path / "port.pt"
        torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, str(path))
    report = diff(str(FULL_H5), str(path), pairs=[("g1", "l0")])
    (pair,) = report.pairs
    assert (pair.verdict, [f.code for f in pair.findings]) == ("explained", codes), [f.detail for f in pair.findings]
    assert report.exit_code == 1
    if mistake == "keras_order_copied":
        (finding,) = pair.findings
        assert "B's reset gate holds A's update gate and B's update gate holds A's reset gate" in finding.detail
        assert "A's order was copied into B's slots unchanged" in finding.detail

    # torch.nn.GRU itself computes something else from the damaged weights than from the right port
    def run(weights):
        gru = torch.nn.GRU(3, H, bias="bias_ih_l0" in weights).double()
        gru.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in weights.items()})
        x = torch.from_numpy(np.random.default_rng(4).standard_normal((6, 2, 3)))
        with torch.no_grad():
            return gru(x)[0].numpy()
    assert float(np.max(np.abs(run(state) - run(_torch_state(torch_port["keras"]))))) > 1e-4


def test_nan_in_b_is_different_and_json_stays_valid(tmp_path):
    def poison(f):
        v = f[G1 + "kernel:0"][...]
        v[0, 0] = np.nan
        f[G1 + "kernel:0"][...] = v
    path = damaged(tmp_path, "nan", poison)
    data = json.loads(run_cli("diff", FULL_H5, path, "--json", exit_code=1).stdout)
    g1 = data["pairs"][0]
    assert (g1["verdict"], g1["findings"][0]["code"], g1["output_max_abs"]) == ("different", "values", None)
    assert next(b for b in g1["blocks"] if (b["gate"], b["role"]) == ("update", "input_kernel"))["max_abs"] is None
    again = json.loads(run_cli("diff", path, path, "--json").stdout)
    assert [p["verdict"] for p in again["pairs"]] == ["identical"] * 4


def test_terminal_output_is_a_rich_table(tmp_path, monkeypatch, capsys):
    from gruinspect import render
    from gruinspect.cli.diff_cmd import _show

    monkeypatch.setattr(render, "is_terminal", lambda stream=None: True)
    _show(diff(str(FULL_H5), damaged(tmp_path, "swap", swap_update_reset)), show_blocks=True)
    out = capsys.readouterr().out
    assert "explained" in out and "gates_swapped" in out and "─" in out  # rich's rule under the header
    assert out.count("recurrent_kernel") == 3  # the per-block table, shown with --blocks


def test_hard_sigmoid_slope_folded_into_the_weights_is_equivalent(tmp_path):
    """Keras 3's hard_sigmoid ported as ONNX HardSigmoid(alpha=0.2) (Keras 2's) of 5/6 of the gate
    pre-activations computes the same; the same alpha without the scaling does not."""
    import onnx
    from onnx import numpy_helper

    def port(name, scale):
        model = onnx.load(str(ONNX_PORT))
        inits = {i.name: i for i in model.graph.initializer}
        node = next(n for n in model.graph.node if n.name == "decoder")
        next(a for a in node.attribute if a.name == "activation_alpha").floats[:] = [0.2]
        units = 5
        for k, rows in (("W_l1", None), ("R_l1", None), ("B_l1", [(0, 2 * units), (3 * units, 5 * units)])):
            v = numpy_helper.to_array(inits[k]).copy()
            if rows is None:
                v[:, :2 * units] *= scale
            else:
                for a, b in rows:
                    v[:, a:b] *= scale
            inits[k].CopyFrom(numpy_helper.from_array(v, k))
        path = tmp_path / f"{name}.onnx"
        onnx.save(model, str(path))
        return str(path)

    folded = _pair(diff(str(KERAS3), port("folded", np.float32(5 / 6))), "decoder")
    assert folded.verdict == "equivalent"
    assert [(f.code, f.changes_function) for f in folded.findings] == [("activation", False)]
    assert folded.findings[0].data["scale"] == pytest.approx(5 / 6)
    renamed = _pair(diff(str(KERAS3), port("renamed", np.float32(1.0))), "decoder")
    assert (renamed.verdict, [(f.code, f.changes_function) for f in renamed.findings]) == \
        ("explained", [("activation", True)])


def swap_biases_only(f):
    b = f[G1 + "bias:0"][...]
    z, r, h = _gates(b, H)
    f[G1 + "bias:0"][...] = _join([r, z, h])


def merge_into_recurrent(f):
    b = f[G1 + "bias:0"][...]
    b[1, :2 * H] += b[0, :2 * H]
    b[0, :2 * H] = 0
    f[G1 + "bias:0"][...] = b


def swap_and_transpose(f):
    swap_update_reset(f)
    transpose_recurrent(f)


@pytest.mark.parametrize("mutate, verdict, findings", [
    (swap_biases_only, "explained", [("gates_swapped", ["bias", "recurrent_bias"])]),
    (merge_into_recurrent, "equivalent", [("biases_merged", ["reset", "update"])]),
    (swap_and_transpose, "explained", [("gates_swapped", ["input_kernel", "recurrent_kernel", "bias", "recurrent_bias"]),
                                       ("transposed", ["reset", "update", "candidate"])]),
])
def test_mistakes_in_part_of_the_cell(tmp_path, mutate, verdict, findings):
    g1 = _pair(diff(str(FULL_H5), damaged(tmp_path, mutate.__name__, mutate)))
    assert g1.verdict == verdict
    assert [(f.code, f.data.get("roles") or f.data.get("gates")) for f in g1.findings] == findings


# --------------------------------------------------------------------------- mistakes in a TF1 checkpoint

TF1_MISTAKES = {
    # name: (how the GRUCell variables are rewritten, codes)
    "gates_swapped": ("swap", ["gates_swapped"]),  # gates/kernel and gates/bias as u|r instead of r|u
    "candidate_transposed": ("transpose", ["transposed"]),  # the h rows of candidate/kernel transposed
    "float16": ("half", ["dtype"]),  # every variable saved as float16
}


def _tf1_write_main(out_dir: str) -> None:
    """Child process: TensorFlow reads tf1_gru_single and saves each damaged copy with a TF1 Saver."""
    import warnings

    warnings.filterwarnings("ignore")
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(TF1))
    scope = "rnn/gru_cell/"
    names = ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")
    for name, (how, _) in TF1_MISTAKES.items():
        values = {n: reader.get_tensor(scope + n) for n in names}
        units = values["candidate/bias"].shape[0]
        if how == "swap":
            for n in ("gates/kernel", "gates/bias"):
                v = values[n]
                values[n] = np.concatenate([v[..., units:], v[..., :units]], axis=-1)
        elif how == "transpose":
            v = values["candidate/kernel"].copy()
            v[-units:] = v[-units:].T
            values["candidate/kernel"] = v
        else:
            values = {n: v.astype(np.float16) for n, v in values.items()}
        graph = tf.Graph()
        with graph.as_default():
            variables = [tf.compat.v1.Variable(v, name=scope + n) for n, v in values.items()]
            saver = tf.compat.v1.train.Saver(variables)
            with tf.compat.v1.Session() as session:
                session.run(tf.compat.v1.global_variables_initializer())
                saver.save(session, os.path.join(out_dir, name, "model.ckpt"))


def test_tf1_checkpoint_mistakes(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, __file__, "--tf1-write", str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for name, (_, codes) in TF1_MISTAKES.items():
        (pair,) = diff(str(TF1), str(tmp_path / name / "model.ckpt")).pairs
        assert (pair.verdict, [f.code for f in pair.findings]) == ("explained", codes), name
        if name == "candidate_transposed":
            assert [(f.data["role"], f.data["gates"]) for f in pair.findings] == [("recurrent_kernel", ["candidate"])]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--keras-outputs":
        _keras_outputs_main(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "--tf1-write":
        _tf1_write_main(sys.argv[2])
