"""`convert --to c | numpy | pytorch-module` in detail: every activation against Keras, float32 values
read back bit-exact, quantized arrays recomputed independently, the proof's fallback and failures, the
options, and the modules' nn.GRU interface. The bounds are the tests' own (see code_targets.py).
"""
from __future__ import annotations

import importlib
import json
import shutil
import subprocess

import numpy as np
import pytest

from code_targets import (ATOL, CODE_TARGETS, STEPS, Framework, cc_or_skip, converted, dump_arrays, entry, harness,
                          import_file, inputs)
from conftest import require_or_skip, run_cli, sample_path
from gruinspect.convert import c as c_target
from gruinspect.convert.c_build import read_c_arrays
from test_convert import _keras_cell

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")


# ------------------------------------------------------------------------------ every activation, against Keras


def _activation_cells():
    """One cell per activation the maths knows (as the candidate's, and the hard sigmoids as the gates'),
    alternating reset before and after, one without bias; stored as Keras weights."""
    from gruinspect.gru import ACTIVATIONS

    rng = np.random.default_rng(11)
    specs = [(name, "sigmoid") for name in ACTIVATIONS] + [("tanh", "hard_sigmoid_keras2"),
                                                            ("tanh", "hard_sigmoid_keras3")]
    cells, arrays = [], {}
    for i, (act, act_r) in enumerate(specs):
        reset_after, I, H = i % 2 == 0, 3, 4
        spread = 0.15 if act == "exponential" else 0.7  # keeps exp's states where float32 has 1e-5 to spare
        kernel = rng.uniform(-spread, spread, (I, 3 * H)).astype(np.float32)
        rk = rng.uniform(-spread, spread, (H, 3 * H)).astype(np.float32)
        bias = None if i == 3 else rng.uniform(-0.5, 0.5, (2, 3 * H) if reset_after else (3 * H,)).astype(np.float32)
        cell, a = _keras_cell(f"act{i}_{act}_{act_r}", kernel, rk, bias, reset_after=reset_after, activation=act,
                              recurrent_activation=act_r)
        cells.append(cell)
        arrays.update(a)
    return cells, arrays


def _keras_states(cell, arrays, xs, h0):
    from gruinspect.oracle import keras as oracle

    kernel, rk = arrays[cell.tensors["kernel"]], arrays[cell.tensors["recurrent_kernel"]]
    bias = arrays.get(cell.tensors.get("bias"))
    kwargs = dict(units=cell.units, reset_after=cell.reset_after, use_bias=bias is not None,
                  activation=cell.activation.split("_keras")[0],
                  recurrent_activation=cell.recurrent_activation.split("_keras")[0])
    if "hard_sigmoid_keras2" in (cell.activation, cell.recurrent_activation):  # the Keras 2 meaning: tf-keras
        return oracle.run_tf_keras_gru_cell([kernel, rk] + ([bias] if bias is not None else []), xs, h0, **kwargs)
    return oracle.run_keras3_gru_cell(kernel, rk, bias, xs, h0, **kwargs)


def test_every_activation_matches_keras_in_every_code_target(tmp_path):
    from gruinspect.convert import convert_cells
    from gruinspect.store import MemoryStore

    cc = cc_or_skip()
    cells, arrays = _activation_cells()
    store = MemoryStore(arrays)
    results = {t: convert_cells(store, cells, t, str(tmp_path / t)) for t in CODE_TARGETS}
    for target, result in results.items():
        assert result.status == "written", (target, result.to_json())
        assert {c.verdict.kind for c in result.cells} == {"exact"}, target
    report = json.loads((tmp_path / "c" / "conversion.json").read_text())
    c_step = harness(cc, tmp_path / "c", report, tmp_path)
    gru_numpy = import_file(tmp_path / "numpy" / "gru_numpy.py", "gru_numpy_activations")
    modules = import_file(tmp_path / "pytorch-module" / "gru_modules.py", "gru_modules_activations").load(
        str(tmp_path / "pytorch-module"))
    for index, cell in enumerate(cells):
        xs, h0 = inputs(100 + index, cell.input_size, cell.units)
        want = _keras_states(cell, arrays, xs, h0)
        what = f"{cell.recurrent_activation} / {cell.activation}"
        np.testing.assert_allclose(c_step(index, xs, h0), want, atol=ATOL, rtol=0, err_msg=f"C {what}")
        np.testing.assert_allclose(gru_numpy.run(xs, h0, name=cell.name), want, atol=ATOL, rtol=0,
                                   err_msg=f"numpy {what}")
        with torch.no_grad():
            out, _ = modules[cell.name](torch.from_numpy(xs), torch.from_numpy(h0[None]))
        np.testing.assert_allclose(out.numpy(), want, atol=ATOL, rtol=0, err_msg=f"module {what}")


# ------------------------------------------------------------------------------ float32 read back bit-exact


def test_float32_values_read_back_bit_exact(tmp_path):
    from gruinspect.convert import convert_cells
    from gruinspect.store import MemoryStore

    cc = cc_or_skip()
    rng = np.random.default_rng(5)
    kernel = rng.uniform(-1, 1, (3, 12)).astype(np.float32)
    tricky = np.array([1 / 3, -0.0, 1e-45, -1.17549435e-38, 3e-39, np.nextafter(np.float32(1), np.float32(2)),
                       0.1, 65504.0, -123456.789, 2.0 ** -20, 7.0, 1e-7], dtype=np.float32)
    kernel[0] = tricky
    rk = rng.uniform(-1, 1, (4, 12)).astype(np.float32)
    rk[1] = tricky[::-1]
    bias = rng.uniform(-1, 1, (2, 12)).astype(np.float32)
    cell, arrays = _keras_cell("tricky", kernel, rk, bias, reset_after=True, activation="tanh",
                               recurrent_activation="sigmoid")
    result = convert_cells(MemoryStore(arrays), [cell], "c", str(tmp_path / "c"))
    assert result.status == "written", result.to_json()
    (report,) = json.loads((tmp_path / "c" / "conversion.json").read_text())["cells"]
    data = dump_arrays(cc, tmp_path / "c", [a["symbol"] for a in report["arrays"]], tmp_path)
    offset = 0
    col = {"update": 0, "reset": 1, "candidate": 2}
    for a in report["arrays"]:
        k = col[a["gate"]]
        source = {"input_kernel": kernel[:, 4 * k:4 * k + 4].T, "recurrent_kernel": rk[:, 4 * k:4 * k + 4].T,
                  "bias": bias[0, 4 * k:4 * k + 4], "recurrent_bias": bias[1, 4 * k:4 * k + 4]}[a["role"]]
        expected = np.ascontiguousarray(source, dtype="<f4").tobytes()
        assert data[offset:offset + len(expected)] == expected, a["symbol"]
        offset += len(expected)
    assert offset == len(data)
    # gruinspect's own reading of the C file (the no-compiler proof) gets the same bits.
    parsed = read_c_arrays((tmp_path / "c" / "gru_weights.c").read_text())
    assert parsed["gru_tricky_W_z"].tobytes() == np.ascontiguousarray(kernel[:, :4].T).tobytes()


def test_too_few_digits_fail_the_proof(tmp_path, monkeypatch):
    from gruinspect.convert import c_emit

    monkeypatch.setattr(c_emit, "c_float", lambda v: f"{float(v):.3g}f")
    result = run_cli("convert", sample_path(entry("tf1_gru_single")), "--to", "c", "--out", tmp_path / "o",
                     exit_code=1)
    assert "proof of the conversion to c failed" in result.stderr and not (tmp_path / "o").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


# ------------------------------------------------------------------------------ quantized C


def _quantized_reference(block, qmax, per_row):
    """This test's own symmetric quantization of a [units][inputs] kernel: (integers, scales)."""
    peak = np.abs(block).max(axis=1) if per_row else np.array([np.abs(block).max()])
    scale = (peak / qmax).astype(np.float32)
    divisor = scale[:, None].astype(np.float64) if per_row else float(scale[0])
    return np.clip(np.rint(block / divisor), -qmax, qmax), scale


@pytest.mark.parametrize("dtype,per_row", [("int8", False), ("int8", True), ("int16", False)])
def test_quantized_c_reports_its_error_and_saturation(dtype, per_row, converted, tmp_path):
    cc = cc_or_skip()
    name = "tfkeras_full_h5"  # reset after, reset before with hard_sigmoid, relu
    extra = ("--quantize", dtype) + (("--per-row",) if per_row else ())
    out, report = converted(name, "c", *extra)
    exact_out, exact_report = converted(name, "c")
    assert report["status"] == "written"
    qmax = {"int8": 127, "int16": 32767}[dtype]
    # The arrays as the compiler reads them, against this test's own quantization of the exact arrays.
    exact_symbols = [a["symbol"] for c in exact_report["cells"] for a in c["arrays"]]
    floats = np.frombuffer(dump_arrays(cc, exact_out, exact_symbols, tmp_path), "<f4")
    exact, offset = {}, 0
    for c in exact_report["cells"]:
        for a in c["arrays"]:
            n = int(np.prod(a["shape"]))
            exact[(c["name"], a["name"])] = floats[offset:offset + n].reshape(a["shape"])
            offset += n
    errors = []
    for cell, exact_cell in zip(report["cells"], exact_report["cells"]):
        assert cell["verdict"] == "approximate" and cell["lossy"][0]["short"] == f"{dtype} kernels"
        q = cell["quantization"]
        kernels = [a for a in cell["arrays"] if a["role"].endswith("kernel")]
        assert {a["dtype"] for a in kernels} == {dtype}
        assert {a["dtype"] for a in cell["arrays"] if a["role"].endswith("bias")} <= {"float32"}
        assert q["weights"] == 3 * cell["units"] * (cell["input_size"] + cell["units"])
        assert q["saturated"] == 0  # max-abs scales never clip
        itemsize = np.dtype(dtype).itemsize
        build = tmp_path / cell["symbol"]
        build.mkdir()
        data = dump_arrays(cc, out, [s for a in kernels for s in (a["symbol"], a["scale_symbol"])], build)
        offset = 0
        for a in kernels:
            want_q, want_scale = _quantized_reference(exact[(cell["name"], a["name"])].astype(np.float64), qmax,
                                                      per_row)
            n = int(np.prod(a["shape"]))
            got_q = np.frombuffer(data[offset:offset + n * itemsize], f"<i{itemsize}").reshape(a["shape"])
            offset += n * itemsize
            got_scale = np.frombuffer(data[offset:offset + 4 * want_scale.size], "<f4")
            offset += 4 * want_scale.size
            np.testing.assert_array_equal(got_q, want_q, err_msg=a["symbol"])
            np.testing.assert_array_equal(got_scale, want_scale, err_msg=a["scale_symbol"])
        proof = cell["proof"]
        assert proof["passed"] and proof["max_abs_error"] <= q["error_bound"] == proof["tolerance"]
        assert proof["max_abs_error"] > exact_cell["proof"]["max_abs_error"]  # really not exact, and said so
        errors.append(proof["max_abs_error"])
    (record,) = [f for f in report["files"] if f["file"] == "test_gru.c"]
    assert record["golden_test"]["exit_code"] == 0
    bound = {"int8": 5e-2, "int16": 5e-4}[dtype]
    assert max(errors) < bound
    if dtype == "int8" and per_row:
        # The quantized C against the framework's own cells, within the error it reports (plus float32).
        framework = Framework(entry(name))
        c_step = harness(cc, out, report, tmp_path)
        for index, cell in enumerate(report["cells"]):
            xs, h0 = inputs(index, cell["input_size"], cell["units"])
            seq = xs[::-1] if cell["direction"] == "backward" else xs
            err = np.abs(c_step(index, seq, h0) - framework.states(cell["name"], seq, h0)).max()
            assert err <= cell["quantization"]["error_bound"] * 4 + ATOL, (cell["name"], err)


def test_quantize_counts_what_a_given_scale_saturates():
    w = np.array([[1.0, -2.0, 0.5], [3.0, 300.0, -400.0]])
    q, scale, saturated = c_target.quantize(w, "int8", per_row=False, scale=np.array([1.0]))
    assert saturated == 2 and q.tolist() == [[1, -2, 0], [3, 127, -127]] and q.dtype == np.int8
    q, scale, saturated = c_target.quantize(w, "int8", per_row=True)
    assert saturated == 0
    np.testing.assert_array_equal(scale, np.float32([2.0 / 127, 400.0 / 127]))
    assert q.tolist() == [[64, -127, 32], [1, 95, -127]]
    q, _, _ = c_target.quantize(w, "int16", per_row=False)
    assert q.dtype == np.int16 and q[1, 2] == -32767


# ------------------------------------------------------------------------------ proof: fallback and failures


def test_without_a_compiler_a_numpy_transcription_proves_it_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(c_target, "compiler", lambda: None)
    result = run_cli("convert", sample_path(entry("tf1_bidirectional")), "--to", "c", "--out", tmp_path / "o")
    assert "no C compiler" in result.stderr
    report = json.loads((tmp_path / "o" / "conversion.json").read_text())
    for cell in report["cells"]:
        assert cell["proof"]["implementation"].startswith("numpy transcription of the emitted C")
        assert cell["proof"]["passed"] and cell["proof"]["max_abs_error"] <= ATOL
    (record,) = [f for f in report["files"] if f["file"] == "test_gru.c"]
    assert record["golden_test"]["run"] is False and "no C compiler" in record["golden_test"]["reason"]
    # The transcription reads the C file back, so a wrong value there still fails the proof.
    from gruinspect.convert import c_emit

    monkeypatch.setattr(c_emit, "c_float", lambda v: f"{float(v) * 1.001:.9g}f")
    run_cli("convert", sample_path(entry("tf1_gru_single")), "--to", "c", "--out", tmp_path / "p", exit_code=1)
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("target,module,table,name,wrong", [
    ("c", "c_emit", "C_ACTIVATIONS", "sigmoid", "return v > 0.0f ? 1.0f : 0.0f;"),
    ("numpy", "numpy_code", "PY_ACTIVATIONS", "tanh", "tanh = np.sin"),
    ("pytorch-module", "pytorch_module", "TORCH_ACTIVATIONS", "tanh", "torch.sin"),
])
def test_wrong_code_fails_the_proof_and_writes_nothing(target, module, table, name, wrong, tmp_path, monkeypatch):
    import importlib

    activations = dict(getattr(importlib.import_module(f"gruinspect.convert.{module}"), table))
    activations[name] = wrong
    monkeypatch.setattr(f"gruinspect.convert.{module}.{table}", activations)
    result = run_cli("convert", sample_path(entry("tf1_gru_single")), "--to", target, "--out", tmp_path / "o",
                     exit_code=1)
    assert f"proof of the conversion to {target} failed" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == []  # no output, no temporary folder


def test_a_c_warning_fails_the_proof(tmp_path, monkeypatch):
    from gruinspect.convert import c_emit

    activations = dict(c_emit.C_ACTIVATIONS)
    activations["tanh"] = "int unused; return tanhf(v);"  # -Wunused-variable under -Werror
    monkeypatch.setattr(c_emit, "C_ACTIVATIONS", activations)
    result = run_cli("convert", sample_path(entry("tf1_gru_single")), "--to", "c", "--out", tmp_path / "o",
                     exit_code=1)
    assert "unused" in result.stderr and not (tmp_path / "o").exists()


def test_the_step_writes_no_global_and_weights_are_read_only(converted, tmp_path):
    cc = cc_or_skip()
    nm = shutil.which("nm")
    if nm is None:
        require_or_skip("nm (binutils) is needed to list the object's symbols")
    out, _ = converted("tfkeras_full_h5", "c")
    for source, allowed in (("gru_step.c", set("TtUr")), ("gru_weights.c", set("Rr"))):
        obj = tmp_path / (source[:-2] + ".o")
        subprocess.run([cc, "-std=c99", "-O2", "-I", str(out), "-c", str(out / source), "-o", str(obj)], check=True)
        symbols = [line.split() for line in subprocess.run([nm, "-P", str(obj)], capture_output=True, text=True,
                                                           check=True).stdout.splitlines()]
        kinds = {s[1] for s in symbols if len(s) > 1}
        assert kinds <= allowed, (source, symbols)  # no data or bss: nothing writable outside the stack
    assert "malloc" not in (out / "gru_step.c").read_text()


@pytest.mark.parametrize("args,message", [
    (("--to", "numpy", "--quantize", "int8"), "--quantize applies only to --to c"),
    (("--to", "pytorch-module", "--prefix", "x"), "--prefix applies only to --to c"),
    (("--to", "c", "--per-row"), "--per-row needs --quantize"),
    (("--to", "c", "--prefix", "9lives"), "Invalid --prefix"),
    (("--to", "c", "--quantize", "int4"), "int4"),
])
def test_option_errors_are_exit_2_and_write_nothing(args, message, tmp_path):
    result = run_cli("convert", sample_path(entry("tf1_gru_single")), *args, "--out", tmp_path / "o", exit_code=2)
    assert message in result.stderr and not (tmp_path / "o").exists()


def test_prefix_names_every_symbol_and_guard(converted, tmp_path):
    cc = cc_or_skip()
    out, report = converted("tf1_multi_rnn", "c", "--prefix", "kws")
    assert [c["symbol"] for c in report["cells"]] == ["kws_rnn_multi_rnn_cell_cell_0_gru_cell",
                                                      "kws_rnn_multi_rnn_cell_cell_1_gru_cell"]
    assert "#ifndef KWS_WEIGHTS_H" in (out / "gru_weights.h").read_text()
    assert all(a["symbol"].startswith("kws_") for c in report["cells"] for a in c["arrays"])
    # Two conversions with different prefixes link into one program.
    other, _ = converted("tf1_gru_single", "c")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    objects = []
    for folder, tag in ((out, "a"), (other, "b")):
        for source in ("gru_step.c", "gru_weights.c"):
            obj = tmp_path / tag / (source[:-2] + ".o")
            subprocess.run([cc, "-std=c99", "-I", str(folder), "-c", str(folder / source), "-o", str(obj)],
                           check=True)
            objects.append(str(obj))
    main = tmp_path / "main.c"
    main.write_text("void kws_rnn_multi_rnn_cell_cell_0_gru_cell_step(const float *, const float *, float *);\n"
                    "void gru_rnn_gru_cell_step(const float *, const float *, float *);\n"
                    "int main(void) { float x[4] = {0}, h[5] = {0}, y[3] = {0};\n"
                    "  kws_rnn_multi_rnn_cell_cell_0_gru_cell_step(x, h, h); gru_rnn_gru_cell_step(y, h, h);"
                    " return 0; }\n")
    subprocess.run([cc, "-std=c99", str(main), *objects, "-o", str(tmp_path / "both"), "-lm"], check=True)


# ------------------------------------------------------------------------------ the modules' interface


def _stacked_bidirectional_cells():
    rng = np.random.default_rng(21)
    cells, arrays = [], {}
    for layer, input_size in (("l0", 3), ("l1", 8)):
        for direction in ("forward", "backward"):
            k = rng.uniform(-0.8, 0.8, (input_size, 12)).astype(np.float32)
            rk = rng.uniform(-0.8, 0.8, (4, 12)).astype(np.float32)
            b = rng.uniform(-0.5, 0.5, (2, 12)).astype(np.float32)
            cell, a = _keras_cell(f"stack/{layer}/{direction}_gru", k, rk, b, reset_after=True, activation="tanh",
                                  recurrent_activation="sigmoid")
            cells.append(cell)
            arrays.update(a)
    return cells, arrays


def test_modules_are_shaped_like_nn_gru_and_equal_it(tmp_path):
    """Where nn.GRU can hold the cells (reset after, sigmoid / tanh), the module must equal nn.GRU itself,
    stacked and bidirectional, time-major and batch-first, batched and not, with and without h0."""
    from safetensors.torch import load_file

    from gruinspect.convert import convert_cells
    from gruinspect.store import MemoryStore

    cells, arrays = _stacked_bidirectional_cells()
    store = MemoryStore(arrays)
    assert convert_cells(store, cells, "pytorch", str(tmp_path / "pt")).status == "written"
    assert convert_cells(store, cells, "pytorch-module", str(tmp_path / "pm")).status == "written"
    gru = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    gru.load_state_dict(load_file(str(tmp_path / "pt" / "model.safetensors")))
    loader = import_file(tmp_path / "pm" / "gru_modules.py", "gru_modules_stack")
    (name, module), = loader.load(str(tmp_path / "pm")).items()
    for attr in ("input_size", "hidden_size", "num_layers", "bidirectional", "batch_first"):
        assert getattr(module, attr) == getattr(gru, attr), attr
    assert isinstance(module, torch.nn.Module) and name == " + ".join(c.name for c in cells)
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((5, 2, 3)).astype(np.float32))
    h0 = torch.from_numpy((0.5 * np.random.default_rng(4).standard_normal((4, 2, 4))).astype(np.float32))
    with torch.no_grad():
        for args in ((x,), (x, h0)):
            want, got = gru(*args), module(*args)
            for w, g in zip(want, got):
                assert w.shape == g.shape
                np.testing.assert_allclose(g.numpy(), w.numpy(), atol=ATOL, rtol=0)
        want = gru(x[:, 0], h0[:, 0])  # unbatched
        got = module(x[:, 0], h0[:, 0])
        for w, g in zip(want, got):
            assert w.shape == g.shape
            np.testing.assert_allclose(g.numpy(), w.numpy(), atol=ATOL, rtol=0)
        batch_first = loader.load(str(tmp_path / "pm"), batch_first=True)[name]
        gru.batch_first = True
        want, got = gru(x.transpose(0, 1), h0), batch_first(x.transpose(0, 1), h0)
        for w, g in zip(want, got):
            assert w.shape == g.shape
            np.testing.assert_allclose(g.numpy(), w.numpy(), atol=ATOL, rtol=0)
    assert batch_first.batch_first is True
    assert sum(p.numel() for p in module.parameters()) == sum(p.numel() for p in gru.parameters())


def test_a_lone_backward_cell_becomes_a_go_backwards_module(converted, tmp_path):
    framework = Framework(entry("tf1_bidirectional"))
    result = run_cli("convert", sample_path(entry("tf1_bidirectional")), "--to", "pytorch-module", "--cell",
                     "*/bw/*", "--out", tmp_path / "o", "--json")
    (cell,) = json.loads(result.stdout)["cells"]
    assert cell["direction"] == "backward" and cell["notes"][0]["short"] == "go_backwards"
    module = import_file(tmp_path / "o" / "gru_modules.py", "gru_modules_bw").load(str(tmp_path / "o"))[cell["name"]]
    xs, h0 = inputs(9, 3, 4)
    with torch.no_grad():
        out, h_n = module(torch.from_numpy(xs.copy()), torch.from_numpy(h0[None]))
    want = framework.states(cell["name"], xs[::-1], h0)  # the cell reads the last input first
    np.testing.assert_allclose(out.numpy()[::-1], want, atol=ATOL, rtol=0)
    np.testing.assert_allclose(h_n.numpy()[0], want[-1], atol=ATOL, rtol=0)


def test_numpy_module_holds_the_blocks_by_short_name(converted):
    out, report = converted("tfkeras_weights_h5", "numpy")
    gru_numpy = import_file(out / "gru_numpy.py", "gru_numpy_weights")
    assert gru_numpy.names() == ["nobias", "classic"]
    with np.load(out / "nobias.npz") as npz:
        assert sorted(npz.files) == ["U_h", "U_r", "U_z", "W_h", "W_r", "W_z"]  # no bias: none written
        assert npz["W_r"].shape == (3, 4) and npz["U_h"].shape == (4, 4)
    with np.load(out / "classic.npz") as npz:
        assert sorted(npz.files) == ["U_h", "U_r", "U_z", "W_h", "W_r", "W_z", "b_h", "b_r", "b_z"]
    xs, h0 = inputs(1, 4, 3)
    hs = gru_numpy.run(xs, h0, name="classic")
    np.testing.assert_array_equal(gru_numpy.step(xs[0], h0, name="classic"), hs[0])
    assert gru_numpy.run(xs[:, 0], name="classic").shape == (STEPS, 3)  # unbatched, zero initial state
    with pytest.raises(ValueError, match="pass name="):
        gru_numpy.step(xs[0], h0)
    with pytest.raises(KeyError, match="no cell"):
        gru_numpy.run(xs, h0, name="nope")
    assert "import torch" not in (out / "gru_numpy.py").read_text()


def test_pytorch_refusal_points_to_pytorch_module(tmp_path):
    result = run_cli("convert", sample_path(entry("keras3_archive")), "--to", "pytorch", "--out", tmp_path / "o",
                     exit_code=1)
    assert "--to pytorch-module" in result.stderr and not (tmp_path / "o").exists()


def test_onnx_clip_is_written_by_every_code_target(converted):
    """ONNX clip bounds every activation's input: the code writes the bound, and it matters here."""
    from gruinspect.blocks import read_blocks
    from gruinspect.gru import run
    from gruinspect.listing import open_cells

    path = sample_path(entry("onnx_helper_scan_clip"))
    with open_cells(path) as (store, inventory):
        (cell,) = inventory.cells
        blocks = read_blocks(store, cell)
    assert cell.config["clip"] == 0.5
    for target in CODE_TARGETS:
        out, report = converted("onnx_helper_scan_clip", target)
        assert report["cells"][0]["proof"]["passed"] and report["cells"][0]["verdict"] != "not-representable"
    assert "gru_clip(" in (converted("onnx_helper_scan_clip", "c")[0] / "gru_step.c").read_text()
    gru_numpy = import_file(converted("onnx_helper_scan_clip", "numpy")[0] / "gru_numpy.py", "gru_numpy_clip")
    xs, h0 = inputs(3, cell.input_size, cell.units)
    kwargs = dict(reset_after=True, activation_name="tanh", recurrent_activation_name="sigmoid")
    clipped, free = run(blocks, xs, h0, clip=0.5, **kwargs), run(blocks, xs, h0, **kwargs)
    assert np.abs(clipped - free).max() > 1e-2  # the bound is active on these inputs
    np.testing.assert_allclose(gru_numpy.run(xs, h0, name=cell.name), clipped, atol=1e-12, rtol=0)
