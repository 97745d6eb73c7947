"""`gruinspect convert`: every sample x every target, checked by running the real target framework.

The checks here do not reuse the converter's own proof: each written file is loaded the way a
user would load it (``nn.GRU.load_state_dict(safetensors.torch.load_file(...))``, an
onnxruntime session, the written ``load_keras.py``, TF1's GRUCell through the oracle) and its
outputs are compared with the explicit float64 GRU of the source blocks. Which conversions must be
refused is written out independently of the converter's capability tables.
"""
from __future__ import annotations

import json
import os
import re
import runpy

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TF1 GRUCell for the oracle; Keras 3 is imported by name
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from conftest import ROOT, run_cli, sample_path, samples
from gruinspect import gru
from gruinspect.blocks import read_blocks
from gruinspect.cell import GATES, Block, BlockSource, GruCell, stacked_blocks, vector_blocks
from gruinspect.convert import (TARGETS, Convention, conventions, convert_cells, verdict, verdict_table_markdown)
from gruinspect.inventory import open_cells
from gruinspect.store import MemoryStore

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("safetensors")

STEPS, BATCH = 6, 2

# What each target computes, written out here independently of gruinspect.convert's tables.
EXACT_ACTIVATIONS = {
    "pytorch": ({"sigmoid"}, {"tanh"}, {True}),
    "onnx": ({"sigmoid", "tanh", "relu", "softsign", "softplus", "elu", "linear", "hard_sigmoid_keras2",
              "hard_sigmoid_keras3"},) * 2 + ({True, False},),
    "keras": ({"sigmoid", "tanh", "hard_sigmoid_keras2", "hard_sigmoid_keras3", "relu", "linear", "softsign",
               "softplus", "elu", "selu", "swish", "silu", "exponential"},) * 2 + ({True, False},),
    "tf1": ({"sigmoid"}, {"tanh", "relu", "linear", "softsign", "softplus", "elu", "selu", "swish", "silu",
                          "exponential"}, {False}),
}


def must_refuse(target: str, reset_after: bool, recurrent_activation, activation, clip=0.0) -> bool:
    gates, candidate, resets = EXACT_ACTIVATIONS[target]
    return (bool(clip) or reset_after not in resets or (recurrent_activation or "sigmoid") not in gates
            or (activation or "tanh") not in candidate)


# ------------------------------------------------------------------------------ references


def reference_layer(cells_blocks, xs, h0s):
    """Forward and (for a pair) backward outputs aligned to input time, concatenated: [T, B, D*H]."""
    outs = []
    for d, ((cell, blocks), h0) in enumerate(zip(cells_blocks, h0s)):
        seq = xs[::-1] if d == 1 else xs
        kwargs = dict(reset_after=cell.reset_after, activation_name=cell.activation or "tanh",
                      recurrent_activation_name=cell.recurrent_activation or "sigmoid")
        out = gru.run(blocks, seq, h0, **kwargs)
        outs.append(out[::-1] if d == 1 else out)
    return np.concatenate(outs, axis=-1)


def _rng_inputs(seed, input_size, units, directions):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((STEPS, BATCH, input_size)).astype(np.float16).astype(np.float64)
    h0s = [(0.4 * rng.standard_normal((BATCH, units))).astype(np.float16).astype(np.float64)
           for _ in range(directions)]
    return xs, h0s


def source_cells(path, names):
    with open_cells(path) as (store, inventory):
        by_name = {c.name: (c, read_blocks(store, c)) for c in inventory.cells}
    return [by_name[n] for n in names]


def tol_for(dtype):
    return 2e-2 if dtype == "float16" else 1e-5


# ------------------------------------------------------------------------------ target checks


def check_pytorch(out, report, path):
    from safetensors.torch import load_file

    for record in report["files"]:
        module = record.get("torch.nn.GRU")
        if module is None:
            continue
        kwargs = dict(module)
        dtype = torch.float64 if kwargs.pop("dtype", None) == "float64" else torch.float32
        net = torch.nn.GRU(**kwargs, dtype=dtype)
        net.load_state_dict(load_file(str(out / record["file"])), strict=True)
        cells = source_cells(path, record["cells"])
        directions = 2 if module["bidirectional"] else 1
        xs, _ = _rng_inputs(7, module["input_size"], module["hidden_size"], directions)
        h0 = np.zeros((module["num_layers"] * directions, BATCH, module["hidden_size"]))
        with torch.no_grad():
            got = net(torch.tensor(xs, dtype=dtype), torch.tensor(h0, dtype=dtype))[0].numpy()
        x = xs
        for k in range(module["num_layers"]):  # the stack, layer by layer
            layer = cells[k * directions:(k + 1) * directions]
            x = reference_layer(layer, x, [np.zeros((BATCH, module["hidden_size"]))] * directions)
        np.testing.assert_allclose(got, x, atol=tol_for(record["dtype"]), rtol=0)


def check_onnx(out, report, path):
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in session.get_inputs()}
    by_node = {}
    for cell in report["cells"]:
        by_node.setdefault(cell["written_as"]["node"], []).append(cell)
    for k, (node, cells) in enumerate(by_node.items()):
        where = cells[0]["written_as"]
        x_name, h_name = where["inputs"]
        sources = source_cells(path, [c["name"] for c in sorted(cells, key=lambda c: c["written_as"]["direction_index"])])
        units, input_size = cells[0]["units"], cells[0]["input_size"]
        xs, h0s = _rng_inputs(11 + k, input_size, units, len(cells))
        dtype = np.float16 if inputs[x_name].type == "tensor(float16)" else np.float32
        feed = {}
        for name, arg in inputs.items():
            shape = [d if isinstance(d, int) else (1 if d == "T" else BATCH) for d in arg.shape]
            feed[name] = np.zeros(shape, dtype)
        feed[x_name] = xs.astype(dtype)
        feed[h_name] = np.stack(h0s).astype(dtype)
        y = session.run([where["outputs"][0]], feed)[0].astype(np.float64)  # [T, D, B, H]
        if where["direction"] == "reverse":
            (cell, blocks), = sources
            expected = gru.run(blocks, xs[::-1], h0s[0], reset_after=cell.reset_after)[::-1][:, None]
        else:
            ref = reference_layer(sources, xs, h0s)
            expected = np.stack([ref[..., d * units:(d + 1) * units] for d in range(len(cells))], axis=1)
        np.testing.assert_allclose(y, expected, atol=tol_for(str(np.dtype(dtype))), rtol=0)


def check_keras(out, report, path):
    keras = pytest.importorskip("keras")
    namespace = runpy.run_path(str(out / "load_keras.py"))
    layers = namespace["layers"]
    for k, (key, layer) in enumerate(layers.items()):
        names = key.split(" + ")
        sources = source_cells(path, names)
        cell0 = sources[0][0]
        xs, h0s = _rng_inputs(23 + k, cell0.input_size, cell0.units, len(names))
        got = keras.ops.convert_to_numpy(layer(np.swapaxes(xs, 0, 1).astype(np.float32),
                                               initial_state=[h.astype(np.float32) for h in h0s]))
        got = np.swapaxes(got, 0, 1).astype(np.float64)
        if len(names) == 1 and getattr(layer, "go_backwards", False):
            (cell, blocks), = sources
            expected = gru.run(blocks, xs[::-1], h0s[0], reset_after=cell.reset_after,
                               activation_name=cell.activation or "tanh",
                               recurrent_activation_name=cell.recurrent_activation or "sigmoid")
        else:
            expected = reference_layer(sources, xs, h0s)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def check_tf1(out, report, path):
    from gruinspect.oracle.tf1 import run_tf_gru_cell

    with np.load(out / "model.npz") as npz:
        for k, cell_report in enumerate(report["cells"]):
            (cell, blocks), = source_cells(path, [cell_report["name"]])
            xs, h0s = _rng_inputs(31 + k, cell.input_size, cell.units, 1)
            values = [npz[f"{cell.name}/{role}"].astype(np.float32)
                      for role in ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")]
            got = run_tf_gru_cell(*values, xs.astype(np.float32), h0s[0].astype(np.float32))
            expected = gru.run(blocks, xs, h0s[0], reset_after=False)
            np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


CHECKS = {"pytorch": check_pytorch, "onnx": check_onnx, "keras": check_keras, "tf1": check_tf1}


# ------------------------------------------------------------------------------ every sample x every target

# The framework targets; the code targets (c, numpy, pytorch-module) are tested in test_convert_code.py.
FRAMEWORK_TARGETS = tuple(CHECKS)
assert set(FRAMEWORK_TARGETS) <= set(TARGETS)
CASES = [pytest.param(p.values[0], target, id=f"{p.id}-{target}") for p in samples(with_cells=True)
         for target in FRAMEWORK_TARGETS]


@pytest.mark.parametrize("entry,target", CASES)
def test_convert_sample(entry, target, tmp_path):
    path = sample_path(entry)
    out = tmp_path / "out"
    with open_cells(path) as (_, inventory):
        found = {c.name: c for c in inventory.cells}
    refuse = any(must_refuse(target, c["reset_after"], found[c["name"]].recurrent_activation,
                             found[c["name"]].activation, found[c["name"]].config.get("clip"))
                 for c in entry["cells"])
    if refuse:
        result = run_cli("convert", path, "--to", target, "--out", out, "--json", exit_code=1)
        report = json.loads(result.stdout)
        assert report["status"] == "refused" and not out.exists()
        assert "Not representable" in result.stderr and "--approximate" in result.stderr
        for cell in report["cells"]:
            expected = must_refuse(target, found[cell["name"]].reset_after, found[cell["name"]].recurrent_activation,
                                   found[cell["name"]].activation, found[cell["name"]].config.get("clip"))
            assert (cell["verdict"] == "not-representable") == expected
            assert cell["proof"] is None
        result = run_cli("convert", path, "--to", target, "--out", out, "--json", "--approximate")
        report = json.loads(result.stdout)
        assert report["status"] == "written" and (out / "conversion.json").exists()
        for cell in report["cells"]:
            assert isinstance(cell["proof"]["max_abs_error"], float)
            if cell["verdict"] == "not-representable":
                assert cell["approximation"], cell
            else:
                assert cell["proof"]["passed"], cell
        return
    result = run_cli("convert", path, "--to", target, "--out", out, "--json")
    report = json.loads(result.stdout)
    assert report["status"] == "written"
    assert json.loads((out / "conversion.json").read_text())["cells"] == report["cells"]
    assert sorted(c["name"] for c in report["cells"]) == sorted(c["name"] for c in entry["cells"])
    for cell in report["cells"]:
        assert cell["verdict"] in ("exact", "exact-with-note")
        assert cell["verdict"] == verdict(Convention.of(found[cell["name"]]), target).kind
        proof = cell["proof"]
        assert proof["passed"] and proof["max_abs_error"] <= proof["tolerance"]
        assert proof["fallback_reason"] is None, proof  # the real framework proved it
        assert proof["max_abs_error"] <= (2e-2 if proof["compute_dtype"] == "float16" else 1e-5)
    for record in report["files"]:
        assert (out / record["file"]).exists()
    CHECKS[target](out, report, path)


# ------------------------------------------------------------------------------ the "done when"


def _keras_cell(name, kernel, recurrent_kernel, bias, *, reset_after, activation="tanh",
                recurrent_activation="sigmoid"):
    """A Keras GRU's canonical blocks, cut by hand from docs/conventions.md (z | r | h columns)."""
    input_size, units = kernel.shape[0], recurrent_kernel.shape[0]
    order = ("update", "reset", "candidate")
    tensors = {"kernel": f"{name}/kernel", "recurrent_kernel": f"{name}/recurrent_kernel"}
    arrays = {tensors["kernel"]: kernel, tensors["recurrent_kernel"]: recurrent_kernel}
    blocks = stacked_blocks(tensors["kernel"], gates=order, units=units, rows=[("input_kernel", 0, input_size)])
    blocks += stacked_blocks(tensors["recurrent_kernel"], gates=order, units=units,
                             rows=[("recurrent_kernel", 0, units)])
    if bias is not None:
        tensors["bias"] = f"{name}/bias"
        arrays[tensors["bias"]] = bias
        if reset_after:
            blocks += vector_blocks(tensors["bias"], gates=order, units=units, role="bias", row=0)
            blocks += vector_blocks(tensors["bias"], gates=order, units=units, role="recurrent_bias", row=1)
        else:
            blocks += vector_blocks(tensors["bias"], gates=order, units=units, role="bias")
    cell = GruCell(name=name, layout="keras-gru", input_size=input_size, units=units, reset_after=reset_after,
                   dtype=str(kernel.dtype), tensors=tensors, shapes={t: arrays[t].shape for t in tensors.values()},
                   blocks=blocks, activation=activation, recurrent_activation=recurrent_activation,
                   config_source="test")
    return cell, arrays


def _keras_gru_model(reset_after, seed=3, input_size=3, units=5):
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(seed)
    layer = keras.layers.GRU(units, reset_after=reset_after, return_sequences=True)
    layer.build((None, None, input_size))
    weights = [rng.uniform(-0.8, 0.8, w.shape).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights(weights)
    xs = rng.standard_normal((BATCH, STEPS, input_size)).astype(np.float32)
    h0 = (0.5 * rng.standard_normal((BATCH, units))).astype(np.float32)
    expected = keras.ops.convert_to_numpy(layer(xs, initial_state=[h0]))
    return layer, weights, xs, h0, expected


def test_keras_reset_after_true_reproduced_by_torch_and_onnxruntime(tmp_path):
    from safetensors.torch import load_file

    _, weights, xs, h0, expected = _keras_gru_model(reset_after=True)
    cell, arrays = _keras_cell("gru/gru_cell", *weights, reset_after=True)
    store = MemoryStore(arrays)

    result = convert_cells(store, [cell], "pytorch", str(tmp_path / "pt"))
    assert result.status == "written" and result.cells[0].verdict.kind == "exact"
    net = torch.nn.GRU(3, 5)
    net.load_state_dict(load_file(str(tmp_path / "pt" / "model.safetensors")))
    with torch.no_grad():
        got = net(torch.tensor(np.swapaxes(xs, 0, 1)), torch.tensor(h0[None]))[0].numpy()
    np.testing.assert_allclose(np.swapaxes(got, 0, 1), expected, atol=1e-5, rtol=0)

    result = convert_cells(store, [cell], "onnx", str(tmp_path / "onnx"))
    assert result.status == "written" and result.cells[0].verdict.kind == "exact"
    session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    y = session.run(["Y_l0"], {"X_l0": np.swapaxes(xs, 0, 1).copy(), "initial_h_l0": h0[None]})[0]
    np.testing.assert_allclose(np.swapaxes(y[:, 0], 0, 1), expected, atol=1e-5, rtol=0)


def test_keras_file_reset_after_true_to_torch_and_onnx(tmp_path):
    """The same through a real .keras file."""
    keras = pytest.importorskip("keras")
    from safetensors.torch import load_file

    layer, _, xs, h0, _ = _keras_gru_model(reset_after=True)
    model = keras.Sequential([keras.Input((None, 3)), layer])
    path = tmp_path / "model.keras"
    model.save(path)
    from gruinspect.inventory import list_cells

    assert [c.layout for c in list_cells(str(path)).cells] == ["keras-gru"]
    expected = keras.ops.convert_to_numpy(model(xs))
    run_cli("convert", path, "--to", "pytorch", "--out", tmp_path / "pt")
    net = torch.nn.GRU(3, 5)
    net.load_state_dict(load_file(str(tmp_path / "pt" / "model.safetensors")))
    with torch.no_grad():
        got = net(torch.tensor(np.swapaxes(xs, 0, 1)))[0].numpy()
    np.testing.assert_allclose(np.swapaxes(got, 0, 1), expected, atol=1e-5, rtol=0)
    run_cli("convert", path, "--to", "onnx", "--out", tmp_path / "onnx")
    session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    y = session.run(["Y_l0"], {"X_l0": np.swapaxes(xs, 0, 1).copy(), "initial_h_l0": np.zeros((1, BATCH, 5), np.float32)})[0]
    np.testing.assert_allclose(np.swapaxes(y[:, 0], 0, 1), expected, atol=1e-5, rtol=0)


def test_tf1_gru_cell_to_keras_reproduces_the_tf1_cell(tmp_path):
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    from gruinspect.oracle.tf1 import run_tf_gru_cell

    entry = next(p.values[0] for p in samples() if p.id == "tf1_gru_single")
    path = sample_path(entry)
    out = tmp_path / "keras"
    text = run_cli("convert", path, "--to", "keras", "--out", out).stdout
    assert "exact" in text and "proven" in text
    reader = tf.train.load_checkpoint(path)
    tensors = [reader.get_tensor(f"rnn/gru_cell/{r}") for r in ("gates/kernel", "gates/bias", "candidate/kernel",
                                                                 "candidate/bias")]
    xs, (h0,) = _rng_inputs(5, 3, 4, 1)
    expected = run_tf_gru_cell(*tensors, xs.astype(np.float32), h0.astype(np.float32))
    layer = runpy.run_path(str(out / "load_keras.py"))["layers"]["rnn/gru_cell"]
    assert layer.reset_after is False
    got = keras.ops.convert_to_numpy(layer(np.swapaxes(xs, 0, 1).astype(np.float32), initial_state=[h0.astype(np.float32)]))
    np.testing.assert_allclose(np.swapaxes(got, 0, 1), expected, atol=1e-5, rtol=0)


def test_tf1_to_pytorch_is_refused_with_the_reason_and_approximate_reports_its_error(tmp_path):
    entry = next(p.values[0] for p in samples() if p.id == "tf1_gru_single")
    out = tmp_path / "pt"
    result = run_cli("convert", sample_path(entry), "--to", "pytorch", "--out", out, exit_code=1)
    assert "not representable" in result.stdout  # the verdict, printed before anything would be written
    assert "applies the reset gate after the recurrent matmul" in result.stderr
    assert not out.exists()
    report = json.loads(run_cli("convert", sample_path(entry), "--to", "pytorch", "--out", out, "--approximate",
                                "--json").stdout)
    (cell,) = report["cells"]
    assert cell["verdict"] == "not-representable" and cell["approximation"][0]["short"] == "reset after, same weights"
    assert 1e-4 < cell["proof"]["max_abs_error"] < 1.0  # measured, and really not exact
    text = run_cli("convert", sample_path(entry), "--to", "pytorch", "--out", out, "--approximate", "--force").stdout
    assert "approximate" in text


# ------------------------------------------------------------------------------ every convention x every target


def _synthetic(conv: Convention, seed: int, input_size=3, units=4):
    """A cell of convention ``conv`` with one stored tensor per block."""
    rng = np.random.default_rng(seed)
    roles = ["input_kernel", "recurrent_kernel"]
    shapes = {"input_kernel": (input_size, units), "recurrent_kernel": (units, units), "bias": (units,),
              "recurrent_bias": (units,)}
    arrays, blocks = {}, []
    for gate in GATES:
        gate_roles = list(roles)
        if gate in conv.bias_present:
            gate_roles.append("bias")
        if gate in conv.recurrent_bias_present:
            gate_roles.append("recurrent_bias")
        for role in gate_roles:
            name = f"cell/{gate}_{role}"
            arrays[name] = rng.uniform(-0.9, 0.9, shapes[role]).astype(conv.dtype)
            blocks.append(Block(gate, role, shapes[role], BlockSource(name, tuple((0, n) for n in shapes[role]))))
    cell = GruCell(name="cell", layout="test", input_size=input_size, units=units, reset_after=conv.reset_after,
                   dtype=conv.dtype, tensors={n: n for n in arrays}, shapes={n: a.shape for n, a in arrays.items()},
                   blocks=blocks, activation=conv.activation, recurrent_activation=conv.recurrent_activation)
    return cell, MemoryStore(arrays)


CONVENTION_CASES = [pytest.param(conv, target, 10 * i + j, id=f"{i}-{target}")
                    for i, (conv, _) in enumerate(conventions()) for j, target in enumerate(FRAMEWORK_TARGETS)]


@pytest.mark.parametrize("conv,target,seed", CONVENTION_CASES)
def test_every_convention_converts_or_is_refused_as_the_table_says(conv, target, seed, tmp_path):
    cell, store = _synthetic(conv, seed=seed)
    expected_refusal = must_refuse(target, conv.reset_after, conv.recurrent_activation, conv.activation)
    assert (verdict(conv, target).kind == "not-representable") == expected_refusal
    result = convert_cells(store, [cell], target, str(tmp_path / "out"))
    if expected_refusal:
        assert result.status == "refused" and not (tmp_path / "out").exists()
        result = convert_cells(store, [cell], target, str(tmp_path / "out"), approximate=True)
        assert result.status == "written"
        assert np.isfinite(result.cells[0].proof["max_abs_error"])
        return
    assert result.status == "written", result.to_json()
    proof = result.cells[0].proof
    assert proof["passed"] and proof["max_abs_error"] <= 1e-5, proof


def test_hard_sigmoid_approximation_is_close_but_reported(tmp_path):
    conv = Convention(True, "hard_sigmoid_keras2", "tanh", "two")
    cell, store = _synthetic(conv, seed=1)
    result = convert_cells(store, [cell], "pytorch", str(tmp_path / "out"), approximate=True)
    (report,) = result.cells
    assert report.verdict.reasons[0].short == "hard_sigmoid (Keras 2)"
    assert report.plan.scale["reset"] == pytest.approx(0.8)
    assert 0 < report.proof["max_abs_error"] < 0.2


def test_keras_activation_names_mean_the_canonical_functions():
    keras = pytest.importorskip("keras")
    from gruinspect.convert.keras import KERAS_NAMES

    x = np.linspace(-7, 7, 2001)
    for canonical, name in KERAS_NAMES.items():
        got = keras.ops.convert_to_numpy(keras.activations.get(name)(keras.ops.convert_to_tensor(x)))
        np.testing.assert_allclose(got, gru.ACTIVATIONS[canonical](x), atol=1e-6, err_msg=canonical)


# ------------------------------------------------------------------------------ proof, failure and fallbacks


def test_a_wrong_mapping_fails_the_proof_and_writes_nothing(tmp_path, monkeypatch):
    from gruinspect.convert import pytorch

    monkeypatch.setattr(pytorch, "ORDER", ("update", "reset", "candidate"))  # Keras order into nn.GRU: wrong
    conv = Convention(True, "sigmoid", "tanh", "two")
    cell, store = _synthetic(conv, seed=2)
    result = convert_cells(store, [cell], "pytorch", str(tmp_path / "out"))
    assert result.status == "proof-failed" and not result.cells[0].proof["passed"]
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir()]  # no temporary folder left either


def test_cli_exit_1_when_the_proof_fails(tmp_path, monkeypatch):
    from gruinspect.convert import tf1

    original = tf1.fused
    monkeypatch.setattr(tf1, "fused", lambda blocks, dtype: {  # rows upside down: a wrong layout
        k: v[::-1].copy() for k, v in original(blocks, dtype).items()})
    entry = next(p.values[0] for p in samples() if p.id == "tf1_gru_single")
    result = run_cli("convert", sample_path(entry), "--to", "tf1", "--out", tmp_path / "o", exit_code=1)
    assert "proof of the conversion to tf1 failed" in result.stderr and not (tmp_path / "o").exists()


def test_numpy_fallback_when_the_framework_is_missing(tmp_path, monkeypatch):
    from gruinspect.convert import onnx as onnx_target, pytorch

    monkeypatch.setattr(pytorch, "implementation",
                        lambda: ("numpy transcription of the nn.GRU equations", "torch is not installed"))
    monkeypatch.setattr(onnx_target, "implementation",
                        lambda: ("numpy transcription of the ONNX GRU equations", "onnxruntime is not installed"))
    conv = Convention(True, "sigmoid", "tanh", "two")
    cell, store = _synthetic(conv, seed=4)
    for target in ("pytorch", "onnx"):
        result = convert_cells(store, [cell], target, str(tmp_path / target))
        proof = result.cells[0].proof
        assert result.status == "written" and proof["passed"]
        assert proof["implementation"].startswith("numpy") and "not installed" in proof["fallback_reason"]
    entry = next(p.values[0] for p in samples() if p.id == "tf1_bidirectional")
    result = run_cli("convert", sample_path(entry), "--to", "onnx", "--out", tmp_path / "cli")
    assert "not installed" in result.stderr  # says which implementation proved it


def test_missing_writer_dependency_is_exit_2_naming_the_extra(tmp_path, monkeypatch):
    from gruinspect.convert import pytorch
    from gruinspect.errors import MissingDependencyError

    def missing():
        raise MissingDependencyError(
            "Converting to PyTorch needs the safetensors package: pip install 'gruinspect[pytorch]'.")

    monkeypatch.setattr(pytorch, "check_dependencies", missing)
    entry = next(p.values[0] for p in samples() if p.id == "tf1_gru_single")
    result = run_cli("convert", sample_path(entry), "--to", "pytorch", "--out", tmp_path / "o", exit_code=2)
    assert "gruinspect[pytorch]" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_usage_errors_are_exit_2(tmp_path):
    entry = next(p.values[0] for p in samples() if p.id == "tf1_gru_single")
    run_cli("convert", sample_path(entry), "--to", "caffe", "--out", tmp_path / "o", exit_code=2)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    result = run_cli("convert", sample_path(entry), "--to", "keras", "--out", tmp_path / "full", exit_code=2)
    assert "--force" in result.stderr and (tmp_path / "full" / "x").read_text() == "keep"
    result = run_cli("convert", sample_path(entry), "--to", "keras", "--out", tmp_path / "o", "--cell", "nope*",
                     exit_code=2)
    assert "No cell matches" in result.stderr
    no_gru = next(p.values[0] for p in samples() if p.id == "no_gru")
    run_cli("convert", sample_path(no_gru), "--to", "keras", "--out", tmp_path / "o", exit_code=2)
    assert not (tmp_path / "o").exists()


def test_force_replaces_and_cell_glob_selects(tmp_path):
    entry = next(p.values[0] for p in samples() if p.id == "tf1_bidirectional")
    out = tmp_path / "o"
    run_cli("convert", sample_path(entry), "--to", "onnx", "--out", out)
    report = json.loads(run_cli("convert", sample_path(entry), "--to", "onnx", "--out", out, "--force",
                                "--cell", "*/bw/*", "--json").stdout)
    assert [c["name"] for c in report["cells"]] == ["bidirectional_rnn/bw/gru_cell"]
    assert report["cells"][0]["written_as"]["direction"] == "reverse"  # the lone backward half
    assert json.loads((out / "conversion.json").read_text())["status"] == "written"


def test_pytorch_loader_script_runs(tmp_path):
    entry = next(p.values[0] for p in samples() if p.id == "cudnn_compatible")
    out = tmp_path / "o"
    run_cli("convert", sample_path(entry), "--to", "pytorch", "--out", out)
    namespace = runpy.run_path(str(out / "load_pytorch.py"))
    assert {k for k in namespace if k.startswith("gru")} == {"gru_0", "gru_1"}  # 5 then 4 units: two modules


# ------------------------------------------------------------------------------ the README's verdict table


def test_verdict_table_is_generated_from_the_capabilities():
    table = verdict_table_markdown()
    assert table.count("\n") == len(conventions()) + 2
    assert "| reset before, sigmoid / tanh, one bias set |" in table


def test_readme_verdict_table_is_current():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- verdicts:start -->\n(.*?)<!-- verdicts:end -->", readme, re.S)
    assert match is not None, "README.md lost its verdict table markers"
    assert match.group(1) == verdict_table_markdown(), "regenerate with gruinspect.convert.verdict_table_markdown()"


def test_partial_biases_are_kept_or_folded_not_dropped(tmp_path):
    # reset gate: input bias only; candidate: recurrent bias only (outside r, since reset_after=False)
    conv = Convention(False, "sigmoid", "tanh", "partial", bias_gates=frozenset({"reset"}),
                      recurrent_bias_gates=frozenset({"candidate", "update"}))
    cell, store = _synthetic(conv, seed=9)
    assert Convention.of(cell) == conv
    for target in ("onnx", "keras", "tf1"):
        result = convert_cells(store, [cell], target, str(tmp_path / target))
        assert result.status == "written", result.to_json()
        assert result.cells[0].verdict.kind == "exact-with-note"
        assert result.cells[0].proof["passed"], (target, result.cells[0].proof)
