"""`convert --to c | numpy | pytorch-module`: the written code against the source file's own framework.

Each sample convention (TF1 GRUCell reset before, Keras reset after, CuDNN, Keras 1, hard_sigmoid in
both Keras forms, relu, use_bias=False, bidirectional) is converted once per target. The written code
is then run the way a user would run it (the C through a separate program of this file linking
``gru_step.c`` and ``gru_weights.c``, built with sanitizers; ``gru_numpy.py`` imported; the modules of
``gru_modules.py`` called in torch) and compared with the source file's own framework cell: the TF1
GRUCell on the tensors ``tf.train.load_checkpoint`` reads, tf-keras or Keras 3 cells on the weights
their own loaders read. The bounds below are this file's (1e-5 in float32), not the converter's.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import warnings

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TF1 GRUCell for the oracle; Keras 3 is imported by name
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from conftest import ROOT, SAMPLES, manifest, require_or_skip, run_cli, sample_path, samples
from gruinspect.convert import c as c_target
from gruinspect.convert.c_build import read_c_arrays
from gruinspect.inventory import open_cells

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

ATOL = 1e-5  # float32 code against the framework's float32 cell
STEPS, BATCH = 6, 2
CODE_TARGETS = ("c", "numpy", "pytorch-module")
SANITIZE = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O1", "-g", "-fno-omit-frame-pointer",
            "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]

# The sample for each convention the issue lists, and what it stands for.
ORACLE_SAMPLES = {
    "tf1_gru_single": "TF1 GRUCell: reset before, sigmoid / tanh",
    "tf1_bidirectional": "TF1 bidirectional GRUCells",
    "cudnn_compatible": "CudnnCompatibleGRUCell: reset after, summed r/z biases (equations only: contrib is gone)",
    "tfkeras_cudnn_gru": "Keras 2 CuDNNGRU, read through tf-keras' own converter",
    "tfkeras_full_h5": "tf-keras reset after; Bidirectional hard_sigmoid (Keras 2) reset before; relu",
    "keras1_gru": "Keras 1 per-gate arrays, hard_sigmoid (Keras 2)",
    "keras3_archive": "Keras 3: reset after; hard_sigmoid (Keras 3) with relu, reset before",
    "tfkeras_weights_h5": "tf-keras use_bias=False, reset after; reset before",
    "keras3_weights_h5": "Keras 3 Bidirectional reset before; use_bias=False",
}
# Other dtypes and layouts, checked through the converter's proof only.
MORE_C_SAMPLES = ("tf1_float16", "tf1_float64", "keras3_folder_bf16", "gru_block_cell", "tf1_multi_rnn")
TWINS = ("tfkeras_cudnn_gru", "keras1_gru")  # read by tf-keras' converters into a plain GRU


def _entry(name):
    return next(e for e in manifest() if e["name"] == name)


def _cc():
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        require_or_skip("no C compiler on PATH (.ci/run installs gcc)")
    return cc


# ------------------------------------------------------------------------------ the framework oracle


class Framework:
    """The states of a sample's cell computed by the framework that wrote the file."""

    def __init__(self, entry):
        self.entry, self.path = entry, sample_path(entry)
        self._layers = None

    def states(self, cell: str, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
        """States [T, B, H] of ``cell`` reading ``xs`` [T, B, I] in the given order from ``h0``."""
        xs, h0 = xs.astype(np.float32), h0.astype(np.float32)
        fmt = self.entry["format"]
        if fmt.startswith("tf-checkpoint"):
            tf = pytest.importorskip("tensorflow")
            from gruinspect.oracle import tf1

            reader = tf.train.load_checkpoint(self.path)
            if self.entry["name"] == "cudnn_compatible":
                roles = ("gates/kernel", "gates/bias", "candidate/input_projection/kernel",
                         "candidate/input_projection/bias", "candidate/hidden_projection/kernel",
                         "candidate/hidden_projection/bias")
                return tf1.cudnn_compatible_gru_cell_reference(*[reader.get_tensor(f"{cell}/{r}") for r in roles],
                                                               xs, h0)
            roles = ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return tf1.run_tf_gru_cell(*[reader.get_tensor(f"{cell}/{r}") for r in roles], xs, h0)
        from gruinspect.oracle import keras as oracle

        layer = self._keras_layers()[cell]
        config, weights = layer.get_config(), [np.asarray(w) for w in layer.get_weights()]
        kwargs = dict(units=config["units"], reset_after=config["reset_after"], activation=config["activation"],
                      recurrent_activation=config["recurrent_activation"], use_bias=config["use_bias"])
        if type(layer).__module__.startswith("keras."):  # Keras 3 (hard_sigmoid means x/6 + 0.5 there)
            bias = weights[2] if config["use_bias"] else None
            return oracle.run_keras3_gru_cell(weights[0], weights[1], bias, xs, h0, **kwargs)
        return oracle.run_tf_keras_gru_cell(weights, xs, h0, **kwargs)

    def _keras_layers(self):
        if self._layers is None:
            sys.path.insert(0, str(SAMPLES))
            try:
                import keras
                import samples_keras
                import tf_keras
            finally:
                sys.path.remove(str(SAMPLES))
            name, fmt = self.entry["name"], self.entry["format"]
            if fmt in ("keras3-archive", "keras3-folder"):
                model = keras.saving.load_model(self.path)
            elif fmt.startswith("keras3"):
                model = samples_keras.build(name, keras)
                model.load_weights(self.path)
            elif fmt == "keras-h5" and name not in TWINS:
                model = tf_keras.models.load_model(self.path, compile=False)
            else:
                model = samples_keras.build(name, tf_keras, twin=name in TWINS)
                model.load_weights(self.path)
            self._layers = dict(samples_keras.gru_layers(model))
        return self._layers


def _inputs(seed, input_size, units):
    rng = np.random.default_rng(seed)
    xs = (1.5 * rng.standard_normal((STEPS, BATCH, input_size))).astype(np.float32)
    h0 = (0.5 * rng.standard_normal((BATCH, units))).astype(np.float32)
    return xs, h0


# ------------------------------------------------------------------------------ conversions, once per sample


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """{(sample, target): (folder, report)}, each converted once through the command line."""
    cache = {}

    def get(name, target, *extra):
        key = (name, target) + extra
        if key not in cache:
            out = tmp_path_factory.mktemp(f"{name}-{target}") / "out"
            result = run_cli("convert", sample_path(_entry(name)), "--to", target, "--out", out, "--json", *extra)
            cache[key] = (out, json.loads(result.stdout))
        return cache[key]

    return get


def _compile(cc, out, sources, exe, flags):
    proc = subprocess.run([cc, *flags, "-I", str(out), *map(str, sources), "-o", str(exe), "-lm"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr  # -Werror: any warning fails here
    return exe


HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "gru_step.h"

typedef void (*step_fn)(const float *x, const float *h, float *h_out);
static const step_fn steps[] = {%(steps)s};
static const int inputs[] = {%(inputs)s};
static const int units[] = {%(units)s};

/* argv: cell, steps, batch; stdin per batch row: h0 then each x; stdout: each state. Steps in place. */
int main(int argc, char **argv)
{
    int cell, t, n, batch, b;
    float *x, *h;
    if (argc != 4)
        return 2;
    cell = atoi(argv[1]);
    n = atoi(argv[2]);
    batch = atoi(argv[3]);
    x = malloc(sizeof(float) * (size_t)inputs[cell]);
    h = malloc(sizeof(float) * (size_t)units[cell]);
    for (b = 0; b < batch; ++b) {
        if (fread(h, sizeof(float), (size_t)units[cell], stdin) != (size_t)units[cell])
            return 3;
        for (t = 0; t < n; ++t) {
            if (fread(x, sizeof(float), (size_t)inputs[cell], stdin) != (size_t)inputs[cell])
                return 3;
            steps[cell](x, h, h);
            fwrite(h, sizeof(float), (size_t)units[cell], stdout);
        }
    }
    free(x);
    free(h);
    return 0;
}
"""


def _harness(cc, out, report, build):
    cells = report["cells"]
    src = build / "harness.c"
    src.write_text(HARNESS % {"steps": ", ".join(c["step"] for c in cells),
                              "inputs": ", ".join(str(c["input_size"]) for c in cells),
                              "units": ", ".join(str(c["units"]) for c in cells)})
    exe = _compile(cc, out, [src, out / "gru_step.c", out / "gru_weights.c"], build / "harness", SANITIZE)

    def run(index, xs, h0):
        payload = b"".join(h0[b].astype("<f4").tobytes() + xs[:, b].astype("<f4").tobytes()
                           for b in range(xs.shape[1]))
        proc = subprocess.run([str(exe), str(index), str(xs.shape[0]), str(xs.shape[1])], input=payload,
                              capture_output=True)
        assert proc.returncode == 0, proc.stderr.decode()
        states = np.frombuffer(proc.stdout, "<f4").reshape(xs.shape[1], xs.shape[0], h0.shape[1])
        return np.swapaxes(states, 0, 1)

    return run


def _import(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", list(ORACLE_SAMPLES))
def test_written_code_reproduces_the_framework_cell(name, converted, tmp_path):
    cc = _cc()
    framework = Framework(_entry(name))
    c_out, c_report = converted(name, "c")
    np_out, np_report = converted(name, "numpy")
    pt_out, pt_report = converted(name, "pytorch-module")
    c_step = _harness(cc, c_out, c_report, tmp_path)
    gru_numpy = _import(np_out / "gru_numpy.py", f"gru_numpy_{name}")
    modules = _import(pt_out / "gru_modules.py", f"gru_modules_{name}").load(str(pt_out))

    by_module: dict[str, list] = {}
    for index, cell in enumerate(c_report["cells"]):
        xs, h0 = _inputs(index, cell["input_size"], cell["units"])
        seq = xs[::-1] if cell["direction"] == "backward" else xs
        want = framework.states(cell["name"], seq, h0)
        got_c = c_step(index, seq, h0)
        np.testing.assert_allclose(got_c, want, atol=ATOL, rtol=0, err_msg=f"C {cell['name']}")
        got_np = gru_numpy.run(seq, h0, name=cell["name"])
        np.testing.assert_allclose(got_np, want, atol=ATOL, rtol=0, err_msg=f"numpy {cell['name']}")
        pt_cell = next(c for c in pt_report["cells"] if c["name"] == cell["name"])
        by_module.setdefault(pt_cell["written_as"]["module"], []).append((cell, xs, h0, want))

    # The modules through nn.GRU's forward: a pair runs both directions over the same input.
    for module_name, members in by_module.items():
        module = modules[module_name]
        xs = members[0][1]
        if module.bidirectional:
            (fw, _, h_fw, _), (bw, _, h_bw, _) = members
            want_fw = framework.states(fw["name"], xs, h_fw)
            want_bw = framework.states(bw["name"], xs[::-1], h_bw)[::-1]  # aligned to input time
            want, h0 = np.concatenate([want_fw, want_bw], -1), np.stack([h_fw, h_bw])
        else:
            ((_, _, h, want),) = members
            h0 = h[None]
        with torch.no_grad():
            out, h_n = module(torch.from_numpy(xs.copy()), torch.from_numpy(h0))
        np.testing.assert_allclose(out.numpy(), want, atol=ATOL, rtol=0, err_msg=f"module {module_name}")
        assert h_n.shape == h0.shape


@pytest.mark.parametrize("name", list(ORACLE_SAMPLES))
def test_golden_test_compiles_warning_free_and_passes_under_sanitizers(name, converted, tmp_path):
    cc = _cc()
    out, report = converted(name, "c")
    exe = _compile(cc, out, [out / "test_gru.c", out / "gru_step.c", out / "gru_weights.c"], tmp_path / "t",
                   SANITIZE)
    proc = subprocess.run([str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert set(lines) == {c["symbol"] for c in report["cells"]}
    for symbol, text in lines.items():
        words = text.split()
        assert words[-1] == "ok" and float(words[1]) <= ATOL, (symbol, text)
    # The converter ran the same program (without sanitizers) and recorded it.
    (record,) = [f for f in report["files"] if f["file"] == "test_gru.c"]
    assert record["golden_test"]["exit_code"] == 0 and record["golden_test"]["run"] is True


def _expected_refusal(path) -> bool:
    with open_cells(path) as (_, inventory):
        return any(c.config.get("clip") for c in inventory.cells)


C_CASES = [pytest.param(n, "c", id=f"{n}-c") for n in list(ORACLE_SAMPLES) + list(MORE_C_SAMPLES)]
NP_CASES = [pytest.param(p.id, t, id=f"{p.id}-{t}") for p in samples(with_cells=True) for t in CODE_TARGETS[1:]]


@pytest.mark.parametrize("name,target", C_CASES + NP_CASES)
def test_every_sample_converts_exactly_and_is_proven(name, target, converted, tmp_path):
    if _expected_refusal(sample_path(_entry(name))):  # ONNX clip: no code target bounds the activations
        result = run_cli("convert", sample_path(_entry(name)), "--to", target, "--out", tmp_path / "o",
                         exit_code=1)
        assert "clip" in result.stderr and not (tmp_path / "o").exists()
        return
    out, report = converted(name, target)
    assert report["status"] == "written"
    assert sorted(c["name"] for c in report["cells"]) == sorted(c["name"] for c in _entry(name)["cells"])
    for cell in report["cells"]:
        assert cell["verdict"] in ("exact", "exact-with-note"), cell
        proof = cell["proof"]
        assert proof["passed"] and proof["fallback_reason"] is None, proof
        bound = 1e-10 if proof["compute_dtype"] == "float64" else ATOL
        assert proof["max_abs_error"] <= bound, proof
    for record in report["files"]:
        assert (out / record["file"]).is_file()
    assert not (out / ".build").exists()


# ------------------------------------------------------------------------------ every activation, against Keras


def _keras_cell(name, kernel, recurrent_kernel, bias, *, reset_after, activation, recurrent_activation):
    """A Keras GRU cell over its stored arrays (z | r | h columns, FORMATS.md §6.1), cut by hand."""
    from gruinspect.cell import GruCell, stacked_blocks, vector_blocks

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
                   dtype=str(kernel.dtype), tensors=tensors, shapes={t: a.shape for t, a in arrays.items()},
                   blocks=blocks, activation=activation, recurrent_activation=recurrent_activation,
                   config_source="test")
    return cell, arrays


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

    cc = _cc()
    cells, arrays = _activation_cells()
    store = MemoryStore(arrays)
    results = {t: convert_cells(store, cells, t, str(tmp_path / t)) for t in CODE_TARGETS}
    for target, result in results.items():
        assert result.status == "written", (target, result.to_json())
        assert {c.verdict.kind for c in result.cells} == {"exact"}, target
    report = json.loads((tmp_path / "c" / "conversion.json").read_text())
    c_step = _harness(cc, tmp_path / "c", report, tmp_path)
    gru_numpy = _import(tmp_path / "numpy" / "gru_numpy.py", "gru_numpy_activations")
    modules = _import(tmp_path / "pytorch-module" / "gru_modules.py", "gru_modules_activations").load(
        str(tmp_path / "pytorch-module"))
    for index, cell in enumerate(cells):
        xs, h0 = _inputs(100 + index, cell.input_size, cell.units)
        want = _keras_states(cell, arrays, xs, h0)
        what = f"{cell.recurrent_activation} / {cell.activation}"
        np.testing.assert_allclose(c_step(index, xs, h0), want, atol=ATOL, rtol=0, err_msg=f"C {what}")
        np.testing.assert_allclose(gru_numpy.run(xs, h0, name=cell.name), want, atol=ATOL, rtol=0,
                                   err_msg=f"numpy {what}")
        with torch.no_grad():
            out, _ = modules[cell.name](torch.from_numpy(xs), torch.from_numpy(h0[None]))
        np.testing.assert_allclose(out.numpy(), want, atol=ATOL, rtol=0, err_msg=f"module {what}")


# ------------------------------------------------------------------------------ float32 read back bit-exact


DUMP = r"""
#include <stdio.h>
#include "gru_weights.h"
int main(void)
{
%(writes)s
    return 0;
}
"""


def _dump_arrays(cc, out, symbols, build):
    """The bytes of each array as the compiler read gru_weights.c."""
    writes = "\n".join(f"    fwrite({s}, 1, sizeof {s}, stdout);" for s in symbols)
    src = build / "dump.c"
    src.write_text(DUMP % {"writes": writes})
    exe = _compile(cc, out, [src, out / "gru_weights.c"], build / "dump", ["-std=c99", "-Wall", "-Werror"])
    return subprocess.run([str(exe)], capture_output=True, check=True).stdout


def test_float32_values_read_back_bit_exact(tmp_path):
    from gruinspect.convert import convert_cells
    from gruinspect.store import MemoryStore

    cc = _cc()
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
    data = _dump_arrays(cc, tmp_path / "c", [a["symbol"] for a in report["arrays"]], tmp_path)
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
    result = run_cli("convert", sample_path(_entry("tf1_gru_single")), "--to", "c", "--out", tmp_path / "o",
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
    cc = _cc()
    name = "tfkeras_full_h5"  # reset after, reset before with hard_sigmoid, relu
    extra = ("--quantize", dtype) + (("--per-row",) if per_row else ())
    out, report = converted(name, "c", *extra)
    exact_out, exact_report = converted(name, "c")
    assert report["status"] == "written"
    qmax = {"int8": 127, "int16": 32767}[dtype]
    # The arrays as the compiler reads them, against this test's own quantization of the exact arrays.
    exact_symbols = [a["symbol"] for c in exact_report["cells"] for a in c["arrays"]]
    floats = np.frombuffer(_dump_arrays(cc, exact_out, exact_symbols, tmp_path), "<f4")
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
        data = _dump_arrays(cc, out, [s for a in kernels for s in (a["symbol"], a["scale_symbol"])], build)
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
        framework = Framework(_entry(name))
        c_step = _harness(cc, out, report, tmp_path)
        for index, cell in enumerate(report["cells"]):
            xs, h0 = _inputs(index, cell["input_size"], cell["units"])
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
    result = run_cli("convert", sample_path(_entry("tf1_bidirectional")), "--to", "c", "--out", tmp_path / "o")
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
    run_cli("convert", sample_path(_entry("tf1_gru_single")), "--to", "c", "--out", tmp_path / "p", exit_code=1)
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
    result = run_cli("convert", sample_path(_entry("tf1_gru_single")), "--to", target, "--out", tmp_path / "o",
                     exit_code=1)
    assert f"proof of the conversion to {target} failed" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == []  # no output, no temporary folder


def test_a_c_warning_fails_the_proof(tmp_path, monkeypatch):
    from gruinspect.convert import c_emit

    activations = dict(c_emit.C_ACTIVATIONS)
    activations["tanh"] = "int unused; return tanhf(v);"  # -Wunused-variable under -Werror
    monkeypatch.setattr(c_emit, "C_ACTIVATIONS", activations)
    result = run_cli("convert", sample_path(_entry("tf1_gru_single")), "--to", "c", "--out", tmp_path / "o",
                     exit_code=1)
    assert "unused" in result.stderr and not (tmp_path / "o").exists()


def test_the_step_writes_no_global_and_weights_are_read_only(converted, tmp_path):
    cc = _cc()
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
    result = run_cli("convert", sample_path(_entry("tf1_gru_single")), *args, "--out", tmp_path / "o", exit_code=2)
    assert message in result.stderr and not (tmp_path / "o").exists()


def test_prefix_names_every_symbol_and_guard(converted, tmp_path):
    cc = _cc()
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
    loader = _import(tmp_path / "pm" / "gru_modules.py", "gru_modules_stack")
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
    framework = Framework(_entry("tf1_bidirectional"))
    result = run_cli("convert", sample_path(_entry("tf1_bidirectional")), "--to", "pytorch-module", "--cell",
                     "*/bw/*", "--out", tmp_path / "o", "--json")
    (cell,) = json.loads(result.stdout)["cells"]
    assert cell["direction"] == "backward" and cell["notes"][0]["short"] == "go_backwards"
    module = _import(tmp_path / "o" / "gru_modules.py", "gru_modules_bw").load(str(tmp_path / "o"))[cell["name"]]
    xs, h0 = _inputs(9, 3, 4)
    with torch.no_grad():
        out, h_n = module(torch.from_numpy(xs.copy()), torch.from_numpy(h0[None]))
    want = framework.states(cell["name"], xs[::-1], h0)  # the cell reads the last input first
    np.testing.assert_allclose(out.numpy()[::-1], want, atol=ATOL, rtol=0)
    np.testing.assert_allclose(h_n.numpy()[0], want[-1], atol=ATOL, rtol=0)


def test_numpy_module_holds_the_blocks_by_short_name(converted):
    out, report = converted("tfkeras_weights_h5", "numpy")
    gru_numpy = _import(out / "gru_numpy.py", "gru_numpy_weights")
    assert gru_numpy.names() == ["nobias", "classic"]
    with np.load(out / "nobias.npz") as npz:
        assert sorted(npz.files) == ["U_h", "U_r", "U_z", "W_h", "W_r", "W_z"]  # no bias: none written
        assert npz["W_r"].shape == (3, 4) and npz["U_h"].shape == (4, 4)
    with np.load(out / "classic.npz") as npz:
        assert sorted(npz.files) == ["U_h", "U_r", "U_z", "W_h", "W_r", "W_z", "b_h", "b_r", "b_z"]
    xs, h0 = _inputs(1, 4, 3)
    hs = gru_numpy.run(xs, h0, name="classic")
    np.testing.assert_array_equal(gru_numpy.step(xs[0], h0, name="classic"), hs[0])
    assert gru_numpy.run(xs[:, 0], name="classic").shape == (STEPS, 3)  # unbatched, zero initial state
    with pytest.raises(ValueError, match="pass name="):
        gru_numpy.step(xs[0], h0)
    with pytest.raises(KeyError, match="no cell"):
        gru_numpy.run(xs, h0, name="nope")
    assert "import torch" not in (out / "gru_numpy.py").read_text()


def test_pytorch_refusal_points_to_pytorch_module(tmp_path):
    result = run_cli("convert", sample_path(_entry("keras3_archive")), "--to", "pytorch", "--out", tmp_path / "o",
                     exit_code=1)
    assert "--to pytorch-module" in result.stderr and not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------ the README's examples


def _readme_section():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("## GRU weights as code", 1)[1].split("\n## ", 1)[0]


def test_readme_c_example_compiles_warning_free_and_follows_the_cell(converted, tmp_path):
    import re

    cc = _cc()
    example = re.search(r"```c\n(.*?)```", _readme_section(), re.S).group(1)
    out, _ = converted("tf1_gru_single", "c")
    program = tmp_path / "example.c"
    program.write_text(example + r"""
#include <math.h>
#include <string.h>
#include "gru_golden.h"

int main(void)
{
    int t, j;
    memcpy(state, gru_rnn_gru_cell_golden_h0[0], sizeof state);
    for (t = 0; t < GRU_GOLDEN_STEPS; ++t) {
        const float *h = gru_on_frame(gru_rnn_gru_cell_golden_x[0][t]);
        for (j = 0; j < GRU_RNN_GRU_CELL_UNITS; ++j)
            if (fabs(h[j] - gru_rnn_gru_cell_golden_out[0][t][j]) > 1e-5)
                return 1;
    }
    return 0;
}
""")
    exe = _compile(cc, out, [program, out / "gru_step.c", out / "gru_weights.c"], tmp_path / "example",
                   ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2"])
    assert subprocess.run([str(exe)]).returncode == 0


def test_readme_pytorch_module_example_runs(tmp_path):
    import re

    example = re.search(r"```python\n(.*?)```", _readme_section(), re.S).group(1)
    run_cli("convert", sample_path(_entry("tf1_gru_single")), "--to", "pytorch-module", "--out",
            tmp_path / "gru_torch")
    code = "import torch\nx = torch.zeros(5, 2, 3)\n" + example + "\nprint(tuple(output.shape), tuple(h_n.shape))\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[-2] == "(5, 2, 4) (1, 2, 4)"
