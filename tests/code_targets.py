"""What the code-target tests share: a sample per convention, the source file's own framework as the
oracle, conversions made once per test module, and C programs of the tests' own that link the written C.

The bounds here are the tests' own (1e-5 in float32), not the converter's.
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

from conftest import SAMPLES, manifest, require_or_skip, run_cli, sample_path

ATOL = 1e-5  # float32 code against the framework's float32 cell
STEPS, BATCH = 6, 2
CODE_TARGETS = ("c", "numpy", "pytorch-module")
# LeakSanitizer needs ptrace, which some CI containers forbid; the step allocates nothing anyway.
SANITIZER_ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1")
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


def entry(name):
    return next(e for e in manifest() if e["name"] == name)


def cc_or_skip():
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


def inputs(seed, input_size, units):
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
            result = run_cli("convert", sample_path(entry(name)), "--to", target, "--out", out, "--json", *extra)
            cache[key] = (out, json.loads(result.stdout))
        return cache[key]

    return get


def compile_c(cc, out, sources, exe, flags):
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


def harness(cc, out, report, build):
    cells = report["cells"]
    src = build / "harness.c"
    src.write_text(HARNESS % {"steps": ", ".join(c["step"] for c in cells),
                              "inputs": ", ".join(str(c["input_size"]) for c in cells),
                              "units": ", ".join(str(c["units"]) for c in cells)})
    exe = compile_c(cc, out, [src, out / "gru_step.c", out / "gru_weights.c"], build / "harness", SANITIZE)

    def run(index, xs, h0):
        payload = b"".join(h0[b].astype("<f4").tobytes() + xs[:, b].astype("<f4").tobytes()
                           for b in range(xs.shape[1]))
        proc = subprocess.run([str(exe), str(index), str(xs.shape[0]), str(xs.shape[1])], input=payload,
                              env=SANITIZER_ENV, capture_output=True)
        assert proc.returncode == 0, proc.stderr.decode()
        states = np.frombuffer(proc.stdout, "<f4").reshape(xs.shape[1], xs.shape[0], h0.shape[1])
        return np.swapaxes(states, 0, 1)

    return run


def import_file(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DUMP = r"""
#include <stdio.h>
#include "gru_weights.h"
int main(void)
{
%(writes)s
    return 0;
}
"""


def dump_arrays(cc, out, symbols, build):
    """The bytes of each array as the compiler read gru_weights.c."""
    writes = "\n".join(f"    fwrite({s}, 1, sizeof {s}, stdout);" for s in symbols)
    src = build / "dump.c"
    src.write_text(DUMP % {"writes": writes})
    exe = compile_c(cc, out, [src, out / "gru_weights.c"], build / "dump", ["-std=c99", "-Wall", "-Werror"])
    return subprocess.run([str(exe)], capture_output=True, check=True).stdout
