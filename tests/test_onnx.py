"""ONNX models: the native reader against onnx.numpy_helper, every cell against onnxruntime, the
external-data path rules, lowered Loops, and conversion verdicts."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import ROOT, run_cli, sample_path, samples
from gruinspect.blocks import read_blocks
from gruinspect.errors import InvalidFileError, TruncatedFileError
from gruinspect.formats import open_store
from gruinspect.listing import list_cells, open_cells
from gruinspect.verify import verify

ONNX_SAMPLES = samples(formats=["onnx"])


def _reference_tensors(path: str) -> dict[str, np.ndarray]:
    """Every initializer and Constant value of every graph, read by the onnx package."""
    model = onnx.load(path)
    out = {}

    def walk(graph):
        for t in graph.initializer:
            out[t.name] = numpy_helper.to_array(t, base_dir=os.path.dirname(path))
        for node in graph.node:
            if node.op_type == "Constant":
                out[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
    walk(model.graph)
    return out


def test_there_are_onnx_samples():
    assert len(ONNX_SAMPLES) >= 5


@pytest.mark.parametrize("entry", ONNX_SAMPLES)
def test_every_tensor_equals_numpy_helper(entry):
    path = sample_path(entry)
    expected = _reference_tensors(path)
    with open_store(path) as store:
        assert store.format == "onnx"
        assert set(store.infos()) == set(expected)
        for name, value in expected.items():
            info = store.infos()[name]
            assert (info.shape, info.dtype) == (value.shape, value.dtype.name)
            got = store.read(name)
            assert got.dtype == value.dtype and got.shape == value.shape and got.tobytes() == value.tobytes(), name


@pytest.mark.parametrize("entry", ONNX_SAMPLES)
def test_cells_are_the_manifest_cells(entry):
    inventory = list_cells(sample_path(entry))
    got = [(c.name, c.layout, c.input_size, c.units, c.reset_after, c.dtype) for c in inventory.cells]
    want = [(c["name"], c["layout"], c["input_size"], c["units"], c["reset_after"], c["dtype"]) for c in entry["cells"]]
    assert got == want
    for cell, want_cell in zip(inventory.cells, entry["cells"]):
        if "tensors" in want_cell:
            assert cell.tensors == want_cell["tensors"]


@pytest.mark.parametrize("entry", ONNX_SAMPLES)
def test_every_cell_verifies_against_onnxruntime(entry):
    report = verify(sample_path(entry), oracle="framework")
    assert report.cells, entry["name"]
    for cell in report.cells:
        by_name = {c.name: c for c in cell.checks}
        assert by_name["framework"].status == "passed", (cell.cell.name, by_name["framework"].message)
        assert "onnxruntime" in by_name["framework"].oracle
        assert all(c.status == "passed" for c in cell.checks), [(c.name, c.message) for c in cell.checks]


def test_list_reads_no_tensor_data_and_imports_no_numpy():
    paths = [sample_path(e) for e in manifest_entries()]
    code = ("import sys; from gruinspect.listing import open_cells\n"
            "for p in sys.argv[1:]:\n"
            "    with open_cells(p) as (store, inv):\n"
            "        assert store.bytes_read == 0 and inv.cells, p\n"
            "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_torch_bidirectional_blocks_are_pytorch_parameters():
    """W of the exported node is torch's weight_ih reordered r|z|n -> z|r|n: check against torch itself."""
    import torch

    entry = next(e for e in manifest_entries() if e["name"] == "onnx_torch_bigru")
    torch.manual_seed(12)  # the seed samples_onnx.py used
    gru = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    params = {k: v.detach().numpy() for k, v in gru.state_dict().items()}
    H = 4
    with open_cells(sample_path(entry)) as (store, inventory):
        cells = {c.name: c for c in inventory.cells}
        for layer, node in ((0, "/GRU"), (1, "/GRU_1")):
            for direction, suffix in (("forward", ""), ("backward", "_reverse")):
                blocks = read_blocks(store, cells[f"{node}/{direction}"])
                w_ih, w_hh = params[f"weight_ih_l{layer}{suffix}"], params[f"weight_hh_l{layer}{suffix}"]
                b_ih, b_hh = params[f"bias_ih_l{layer}{suffix}"], params[f"bias_hh_l{layer}{suffix}"]
                for k, gate in enumerate(("reset", "update", "candidate")):  # torch rows r | z | n
                    rows = slice(k * H, (k + 1) * H)
                    np.testing.assert_array_equal(blocks[(gate, "input_kernel")], w_ih[rows].T)
                    np.testing.assert_array_equal(blocks[(gate, "recurrent_kernel")], w_hh[rows].T)
                    np.testing.assert_array_equal(blocks[(gate, "bias")], b_ih[rows])
                    np.testing.assert_array_equal(blocks[(gate, "recurrent_bias")], b_hh[rows])


@pytest.mark.parametrize("sample, reset_after", [("onnx_tf2onnx_loop", True), ("onnx_tf2onnx_loop_reset_before", False)])
def test_loop_blocks_are_the_keras_weights(sample, reset_after):
    entry = next(e for e in manifest_entries() if e["name"] == sample)
    K, U, b = (np.array(entry["keras_weights"][k], np.float32) for k in ("kernel", "recurrent_kernel", "bias"))
    H = 4
    with open_cells(sample_path(entry)) as (store, inventory):
        (cell,) = inventory.cells
        assert (cell.layout, cell.reset_after, cell.activation, cell.recurrent_activation) == (
            "onnx-loop-gru", reset_after, "tanh", "sigmoid")
        blocks = read_blocks(store, cell)
    for k, gate in enumerate(("update", "reset", "candidate")):  # Keras columns z | r | h
        cols = slice(k * H, (k + 1) * H)
        np.testing.assert_array_equal(blocks[(gate, "input_kernel")], K[:, cols])
        np.testing.assert_array_equal(blocks[(gate, "recurrent_kernel")], U[:, cols])
        if reset_after:
            np.testing.assert_array_equal(blocks[(gate, "bias")], b[0, cols])
            np.testing.assert_array_equal(blocks[(gate, "recurrent_bias")], b[1, cols])
        else:
            np.testing.assert_array_equal(blocks[(gate, "bias")], b[cols])
            assert (gate, "recurrent_bias") not in blocks


def manifest_entries():
    return [p.values[0] for p in ONNX_SAMPLES]


def test_node_attributes_are_recorded():
    entry = next(e for e in manifest_entries() if e["name"] == "onnx_helper_lbr0_external")
    fw, bw = list_cells(sample_path(entry)).cells
    assert (fw.recurrent_activation, bw.recurrent_activation) == ("hard_sigmoid_keras2", "hard_sigmoid_keras3")
    assert fw.reset_after is False and fw.has_bias and fw.block("candidate", "recurrent_bias") is not None
    assert fw.config["activations"][0] == "HardSigmoid(alpha=0.2, beta=0.5)"
    assert bw.config["go_backwards"] and bw.config["direction"] == "bidirectional"
    clip_entry = next(e for e in manifest_entries() if e["name"] == "onnx_helper_scan_clip")
    (cell,) = list_cells(sample_path(clip_entry)).cells
    assert (cell.config["clip"], cell.config["layout"], cell.config["sequence_lens"]) == (0.5, 1, "lens")


def _model(tmp_path, initializers, nodes=(), inputs=(), name="model.onnx"):
    graph = helper.make_graph(list(nodes), "g", list(inputs),
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def test_typed_fields_of_every_float_dtype(tmp_path):
    rng = np.random.default_rng(0)
    a16 = rng.normal(size=(2, 3)).astype(np.float16)
    a64 = rng.normal(size=(4,))
    a32 = rng.normal(size=(3, 2)).astype(np.float32)
    inits = [
        helper.make_tensor("f16_typed", TensorProto.FLOAT16, a16.shape, a16.ravel().tolist()),
        helper.make_tensor("f64_typed", TensorProto.DOUBLE, a64.shape, a64.tolist()),
        helper.make_tensor("f32_typed", TensorProto.FLOAT, a32.shape, a32.ravel().tolist()),
        helper.make_tensor("bf16_typed", TensorProto.BFLOAT16, (3,), [1.5, -2.0, 0.25]),
        helper.make_tensor("i64_typed", TensorProto.INT64, (3,), [1, -2, 1 << 40]),
        helper.make_tensor("f16_raw", TensorProto.FLOAT16, a16.shape, a16.tobytes(), raw=True),
        helper.make_tensor("scalar", TensorProto.INT32, (), [7]),
    ]
    path = _model(tmp_path, inits)
    expected = _reference_tensors(str(path))
    with open_store(str(path)) as store:
        for name, value in expected.items():
            got = store.read(name)
            assert got.dtype == value.dtype and got.shape == value.shape and got.tobytes() == value.tobytes(), name


def _external(tmp_path, location, *, offset=0, length=None, data=b"\0" * 48):
    (tmp_path / "weights.bin").write_bytes(data)
    t = helper.make_tensor("W", TensorProto.FLOAT, (3, 4), [0.0] * 12)
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", None if length is None else str(length))):
        if value is not None:
            entry = t.external_data.add()
            entry.key, entry.value = key, value
    return _model(tmp_path, [t])


def test_external_data_is_read_from_the_model_folder(tmp_path):
    data = np.arange(16, dtype=np.float32).tobytes()
    path = _external(tmp_path, "weights.bin", offset=16, length=48, data=data)
    with open_store(str(path)) as store:
        np.testing.assert_array_equal(store.read("W"), np.arange(4, 16, dtype=np.float32).reshape(3, 4))
        assert store.bytes_read == 48


@pytest.mark.parametrize("location, error, words", [
    ("/etc/passwd", InvalidFileError, "absolute path"),
    ("../weights.bin", InvalidFileError, "leaves the model's folder"),
    ("sub/../../weights.bin", InvalidFileError, "leaves the model's folder"),
    ("missing.bin", InvalidFileError, "missing"),
])
def test_external_data_paths_are_refused(tmp_path, location, error, words):
    path = _external(tmp_path, location, length=48)
    with pytest.raises(error, match=words):
        open_store(str(path))
    result = run_cli("list", path, exit_code=2)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_external_data_link_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\0" * 48)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    os.symlink(outside, model_dir / "link.bin")
    path = _external(model_dir, "link.bin", length=48)
    with pytest.raises(InvalidFileError, match="links outside"):
        open_store(str(path))


def test_external_data_extent_is_checked_at_open(tmp_path):
    with pytest.raises(TruncatedFileError):
        open_store(str(_external(tmp_path, "weights.bin", offset=8, length=48)))
    with pytest.raises(InvalidFileError, match="40 bytes"):
        open_store(str(_external(tmp_path, "weights.bin", offset=8, length=40)))


def _gru_node(**attrs):
    return helper.make_node("GRU", ["X", "W", "R", "", "", ""], ["Y"], name="g", hidden_size=2, **attrs)


def test_gru_weights_fed_as_graph_inputs_are_explained(tmp_path):
    W = numpy_helper.from_array(np.zeros((1, 6, 3), np.float32), "W")
    path = _model(tmp_path, [W], [_gru_node()], [helper.make_tensor_value_info("R", TensorProto.FLOAT, [1, 6, 2])])
    inventory = list_cells(str(path))
    assert inventory.cells == []
    assert inventory.problems == ["GRU node g takes R from R, which is computed or a graph input, not a stored tensor"]


def test_unrecovered_loop_gets_one_line(tmp_path):
    """A Loop doing sigmoid and matmul work on weights it is fed (not stored) is explained, not '0 cells'."""
    body = helper.make_graph(
        [helper.make_node("MatMul", ["h", "U"], ["p"]), helper.make_node("Sigmoid", ["p"], ["h2"]),
         helper.make_node("Identity", ["c"], ["c2"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("h", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("c2", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h2", TensorProto.FLOAT, None)])
    loop = helper.make_node("Loop", ["M", "", "h0"], ["Y"], name="lowered", body=body)
    path = _model(tmp_path, [], [loop], [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                                         for n in ("M", "h0", "U")])
    inventory = list_cells(str(path))
    assert inventory.cells == [] and len(inventory.problems) == 1
    assert inventory.problems[0].startswith("Loop node lowered is a recurrence lowered by")
    assert "no GRU node to read" in inventory.problems[0]
    result = run_cli("list", path)
    assert "no GRU node to read" in result.stderr + result.stdout


def _conversion(path, target, out, exit_code=0):
    run_cli("convert", path, "--to", target, "--out", out, exit_code=exit_code)
    return json.loads((out / "conversion.json").read_text()) if exit_code == 0 else None


def test_bidirectional_node_converts_as_one_pytorch_layer(tmp_path):
    from safetensors.numpy import load_file

    entry = next(e for e in manifest_entries() if e["name"] == "onnx_torch_bigru")
    _conversion(sample_path(entry), "pytorch", tmp_path / "out")
    names = set(load_file(str(tmp_path / "out" / "model.safetensors")))
    assert {"weight_ih_l0", "weight_ih_l0_reverse"} <= names


@pytest.mark.parametrize("sample, target, words", [
    ("onnx_helper_lbr0_external", "pytorch", "reset gate after"),
    ("onnx_helper_scan_clip", "keras", "ONNX clip"),
    ("onnx_helper_scan_clip", "onnx", "ONNX clip"),
])
def test_not_representable_conversions_say_why(tmp_path, sample, target, words):
    entry = next(e for e in manifest_entries() if e["name"] == sample)
    result = run_cli("convert", sample_path(entry), "--to", target, "--out", tmp_path / "out", exit_code=1)
    assert words in result.stderr and not (tmp_path / "out").exists()


def test_lbr0_converts_exactly_to_keras_with_the_candidate_biases_summed(tmp_path):
    entry = next(e for e in manifest_entries() if e["name"] == "onnx_helper_lbr0_external")
    report = _conversion(sample_path(entry), "keras", tmp_path / "out")
    for cell in report["cells"]:
        assert cell["verdict"] == "exact-with-note" and cell["reset_after"] is False
        assert any(n["short"] == "biases summed" for n in cell["notes"])
        assert "candidate" in cell["target"]["recurrent_bias_moved_to_input"]


def test_activations_without_a_canonical_equal_verify_against_onnxruntime(tmp_path):
    """HardSigmoid(alpha=0.3, beta=0.6) is neither Keras hard sigmoid; LeakyRelu has no Keras name."""
    rng = np.random.default_rng(4)
    W, R = (numpy_helper.from_array(rng.normal(0, 0.7, s).astype(np.float32), n)
            for n, s in (("W", (1, 6, 3)), ("R", (1, 6, 2))))
    node = _gru_node(activations=["HardSigmoid", "LeakyRelu"], activation_alpha=[0.3, 0.05], activation_beta=[0.6])
    path = _model(tmp_path, [W, R], [node], [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, None, 3])])
    (cell,) = list_cells(str(path)).cells
    assert (cell.recurrent_activation, cell.activation) == ("HardSigmoid(alpha=0.3, beta=0.6)", "LeakyRelu(alpha=0.05)")
    report = verify(str(path), oracle="framework")
    checks = {c.name: c for c in report.cells[0].checks}
    assert all(c.status == "passed" for c in checks.values()), [(c.name, c.message) for c in checks.values()]
    assert "onnxruntime" in checks["framework"].oracle


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("layout", [0, 1])
def test_sequence_lens_are_run_by_the_oracle(tmp_path, direction, layout):
    """A node fed sequence_lens: verify runs onnxruntime's node with rows of different lengths and
    compares the states past each row's length with the zeros ONNX defines (an oracle ignoring the
    lengths would fail the check). layout=1 changes no weight; onnxruntime's CPU GRU cannot run it,
    so the oracle node runs layout=0 and says so."""
    rng = np.random.default_rng(7)
    D = 2 if direction == "bidirectional" else 1
    W, R, B = (numpy_helper.from_array(rng.normal(0, 0.6, s).astype(np.float32), n)
               for n, s in (("W", (D, 6, 3)), ("R", (D, 6, 2)), ("B", (D, 12))))
    node = helper.make_node("GRU", ["X", "W", "R", "B", "lens", ""], ["Y"], name="g", hidden_size=2,
                            direction=direction, layout=layout, linear_before_reset=1)
    x_shape = [None, None, 3]
    path = _model(tmp_path, [W, R, B], [node], [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape),
                                                helper.make_tensor_value_info("lens", TensorProto.INT32, [None])])
    cells = list_cells(str(path)).cells
    assert len(cells) == D and all(c.config["layout"] == layout for c in cells)
    report = verify(str(path), oracle="framework", batch=3, steps=4)
    for cell in report.cells:
        framework = cell.check("framework")
        assert framework.status == "passed", framework.message
        assert any("lengths [4, 3, 2]" in n for n in cell.notes), cell.notes
        assert any("runs layout=0" in n for n in cell.notes) == bool(layout)

    from gruinspect.oracle.onnxruntime import run_gru_node

    W0, R0, B0 = (numpy_helper.to_array(t)[:1] for t in (W, R, B))
    xs, h0 = rng.normal(size=(4, 3, 3)).astype(np.float32), np.zeros((3, 2), np.float32)
    lengths = np.array([4, 3, 2])
    for reverse in (False, True):
        full = run_gru_node(W0, R0, B0, xs, h0, hidden_size=2, linear_before_reset=True,
                            activations=[("Sigmoid", 0, 0), ("Tanh", 0, 0)], reverse=reverse)
        cut = run_gru_node(W0, R0, B0, xs, h0, hidden_size=2, linear_before_reset=True,
                           activations=[("Sigmoid", 0, 0), ("Tanh", 0, 0)], reverse=reverse,
                           lengths=lengths)
        for b, n in enumerate(lengths):  # each row consumes its own first n steps, in order, then stops
            short = run_gru_node(W0, R0, B0, xs[:n, b:b + 1], h0[b:b + 1], hidden_size=2, linear_before_reset=True,
                                 activations=[("Sigmoid", 0, 0), ("Tanh", 0, 0)], reverse=reverse)
            np.testing.assert_allclose(cut[:n, b], short[:, 0], atol=1e-6)
            assert not cut[n:, b].any()
        np.testing.assert_allclose(cut[:, 0], full[:, 0], atol=1e-6)  # the full-length row is the plain run
