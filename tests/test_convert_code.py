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

import subprocess
import sys

import numpy as np
import pytest

from code_targets import (ATOL, CODE_TARGETS, MORE_C_SAMPLES, ORACLE_SAMPLES, SANITIZE, SANITIZER_ENV, Framework,
                          cc_or_skip, compile_c, converted, entry, harness, import_file, inputs)
from conftest import ROOT, run_cli, sample_path, samples

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")


@pytest.mark.parametrize("name", list(ORACLE_SAMPLES))
def test_written_code_reproduces_the_framework_cell(name, converted, tmp_path):
    cc = cc_or_skip()
    framework = Framework(entry(name))
    c_out, c_report = converted(name, "c")
    np_out, np_report = converted(name, "numpy")
    pt_out, pt_report = converted(name, "pytorch-module")
    c_step = harness(cc, c_out, c_report, tmp_path)
    gru_numpy = import_file(np_out / "gru_numpy.py", f"gru_numpy_{name}")
    modules = import_file(pt_out / "gru_modules.py", f"gru_modules_{name}").load(str(pt_out))

    by_module: dict[str, list] = {}
    for index, cell in enumerate(c_report["cells"]):
        xs, h0 = inputs(index, cell["input_size"], cell["units"])
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
    cc = cc_or_skip()
    out, report = converted(name, "c")
    exe = compile_c(cc, out, [out / "test_gru.c", out / "gru_step.c", out / "gru_weights.c"], tmp_path / "t",
                   SANITIZE)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, env=SANITIZER_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert set(lines) == {c["symbol"] for c in report["cells"]}
    for symbol, text in lines.items():
        words = text.split()
        assert words[-1] == "ok" and float(words[1]) <= ATOL, (symbol, text)
    # The converter ran the same program (without sanitizers) and recorded it.
    (record,) = [f for f in report["files"] if f["file"] == "test_gru.c"]
    assert record["golden_test"]["exit_code"] == 0 and record["golden_test"]["run"] is True


C_CASES = [pytest.param(n, "c", id=f"{n}-c") for n in list(ORACLE_SAMPLES) + list(MORE_C_SAMPLES)
           + ["onnx_helper_scan_clip"]]
NP_CASES = [pytest.param(p.id, t, id=f"{p.id}-{t}") for p in samples(with_cells=True) for t in CODE_TARGETS[1:]]


@pytest.mark.parametrize("name,target", C_CASES + NP_CASES)
def test_every_sample_converts_exactly_and_is_proven(name, target, converted):
    out, report = converted(name, target)
    assert report["status"] == "written"
    assert sorted(c["name"] for c in report["cells"]) == sorted(c["name"] for c in entry(name)["cells"])
    for cell in report["cells"]:
        assert cell["verdict"] in ("exact", "exact-with-note"), cell
        proof = cell["proof"]
        assert proof["passed"] and proof["fallback_reason"] is None, proof
        bound = 1e-10 if proof["compute_dtype"] == "float64" else ATOL
        assert proof["max_abs_error"] <= bound, proof
    for record in report["files"]:
        assert (out / record["file"]).is_file()
    assert not (out / ".build").exists()


# ------------------------------------------------------------------------------ the README's examples


def _readme_section():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("## GRU weights as code", 1)[1].split("\n## ", 1)[0]


def test_readme_c_example_compiles_warning_free_and_follows_the_cell(converted, tmp_path):
    import re

    cc = cc_or_skip()
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
    exe = compile_c(cc, out, [program, out / "gru_step.c", out / "gru_weights.c"], tmp_path / "example",
                   ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2"])
    assert subprocess.run([str(exe)]).returncode == 0


def test_readme_pytorch_module_example_runs(tmp_path):
    import re

    example = re.search(r"```python\n(.*?)```", _readme_section(), re.S).group(1)
    run_cli("convert", sample_path(entry("tf1_gru_single")), "--to", "pytorch-module", "--out",
            tmp_path / "gru_torch")
    code = "import torch\nx = torch.zeros(5, 2, 3)\n" + example + "\nprint(tuple(output.shape), tuple(h_n.shape))\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[-2] == "(5, 2, 4) (1, 2, 4)"
