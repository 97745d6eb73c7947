"""`gruinspect verify`: every sample verifies against its framework's own cell, and every way an export
or a layout can be wrong is caught, named, and turned into exit code 1.

TensorFlow is imported once for the whole file (by the first framework check); the tests that
simulate a machine without TensorFlow hide it through ``sys.modules`` instead of starting a new
process.
"""
from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from conftest import SAMPLES, manifest, run_cli, sample_path, samples
from gruinspect.export import split
from gruinspect.verify import FAILED, PASSED, SKIPPED, verify

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

SINGLE = SAMPLES / "tf1_gru_single" / "model.ckpt"   # rnn/gru_cell, 3 -> 4, float32
NO_GRU = SAMPLES / "no_gru" / "model.ckpt"
# The bounds this suite holds verify to, stated here rather than read from the code under test:
# float32 cells agree with float64 to ~2e-7 on these sequences, float16 to ~1e-3, bfloat16 to ~1e-2.
BOUNDS = {"float64": (1e-10, 1e-10), "float32": (1e-5, 1e-5), "float16": (1e-2, 1e-2), "bfloat16": (5e-2, 5e-2)}


def _json(result) -> dict:
    return json.loads(result.stdout)


def _checks(cell_json: dict) -> dict[str, dict]:
    """The cell's checks by name, without the entries that repeat a renamed check under its former name."""
    return {c["name"]: c for c in cell_json["checks"] if "alias_of" not in c}


# ------------------------------------------------------------------------- every sample verifies


@pytest.mark.parametrize("entry", samples(with_cells=True))
def test_every_sample_verifies_with_the_framework_oracle(entry):
    pytest.importorskip("tensorflow")
    report = _json(run_cli("verify", sample_path(entry), "--oracle", "framework", "--json"))
    assert report["exit_code"] == 0 and report["status"] == PASSED
    assert report["cells"]  # which cells a file holds is test_list's business; each found one must verify
    for cell in report["cells"]:
        checks = _checks(cell)
        assert [c["status"] for c in checks.values()] == [PASSED] * 3, checks
        framework = checks["framework"]
        atol, rtol = BOUNDS[framework["compute_dtype"]]
        assert framework["max_abs"] <= atol + rtol and (framework["atol"], framework["rtol"]) == (atol, rtol)
        assert checks["equations"]["max_abs"] < 1e-10
        if cell["layout"] == "tf-cudnn-compatible-gru-cell":
            # No runnable cell: the report says plainly that the cell's own equations stood in.
            assert "equations of CudnnCompatibleGRUCell" in framework["oracle"] and "no runnable framework cell" in framework["oracle"]
        elif cell["layout"] == "tf-gru-cell":
            assert framework["oracle"].startswith("tf.compat.v1.nn.rnn_cell.GRUCell")
        elif cell["layout"] == "tf-gru-block-cell":
            assert framework["oracle"].startswith("tf.raw_ops.GRUBlockCell")


def test_terminal_output_is_a_table_per_cell(cli):
    pytest.importorskip("tensorflow")
    out = cli("verify", SAMPLES / "tf1_multi_rnn" / "model.ckpt").stdout
    assert "rnn/multi_rnn_cell/cell_0/gru_cell (tf-gru-cell, 4->5, float32" in out
    assert "rnn/multi_rnn_cell/cell_1/gru_cell (tf-gru-cell, 5->3, float32" in out
    assert out.count("framework  passed") == 2 and out.count("roundtrip  passed") == 2 and "refuse" not in out
    assert out.rstrip().splitlines()[-1].startswith("verified: 7 checks passed, 0 failed, 0 skipped (2 cells")


def test_float16_uses_the_looser_tolerance():
    pytest.importorskip("tensorflow")
    report = verify(str(SAMPLES / "tf1_float16" / "model.ckpt"), oracle="framework")
    framework = report.cells[0].check("framework")
    assert framework.status == PASSED and framework.compute_dtype == "float16"
    assert (framework.atol, framework.rtol) == BOUNDS["float16"]
    assert 1e-4 < framework.max_abs < BOUNDS["float16"][0]  # float16 rounding shows, and stays inside


def test_atol_rtol_override_the_dtype_defaults(cli):
    pytest.importorskip("tensorflow")
    result = cli("verify", SINGLE, "--atol", "0", "--rtol", "0", "--json", exit_code=1)
    checks = _checks(_json(result)["cells"][0])
    # float32 TensorFlow never equals float64 numpy exactly; the float64 equations almost never do either.
    assert checks["framework"]["status"] == FAILED and checks["framework"]["atol"] == 0
    assert checks["roundtrip"]["status"] == PASSED


def test_the_library_returns_a_report_and_prints_nothing(capsys):
    pytest.importorskip("tensorflow")
    report = verify(str(SINGLE), steps=2, batch=1, seed=7)
    assert capsys.readouterr() == ("", "")
    assert report.exit_code == 0 and report.ok
    assert report.settings == {"steps": 2, "batch": 1, "seed": 7, "atol": None, "rtol": None}
    assert [k.name for k in report.cells[0].checks] == ["roundtrip", "equations", "framework"]
    again = verify(str(SINGLE), steps=2, batch=1, seed=7)
    assert again.cells[0].check("framework").max_abs == report.cells[0].check("framework").max_abs  # seeded


# ------------------------------------------------------------------------------ exit codes, usage


def test_no_cell_fails_unless_allow_empty(cli):
    result = cli("verify", NO_GRU, exit_code=1)
    assert "No GRU cell found" in result.stdout
    cli("verify", NO_GRU, "--allow-empty", exit_code=0)
    report = _json(cli("verify", NO_GRU, "--json", exit_code=1))
    assert report["summary"]["cells"] == 0 and report["checks"][0]["status"] == FAILED


def test_unreadable_input_and_bad_usage_exit_2(cli, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a checkpoint at all")
    assert cli("verify", junk, exit_code=2).stderr.startswith("gruinspect: error: ")
    cli("verify", tmp_path / "absent.ckpt", exit_code=2)
    cli("verify", SINGLE, "--exported", tmp_path / "no_such_dir", exit_code=2)
    empty = tmp_path / "empty_export"
    empty.mkdir()
    assert "manifest.json" in cli("verify", SINGLE, "--exported", empty, exit_code=2).stderr
    cli("verify", SINGLE, "--atol", "-1", exit_code=2)
    cli("verify", SINGLE, "--oracle", "psychic", exit_code=2)


# ------------------------------------------------------------------------- without TensorFlow


@pytest.fixture
def no_tensorflow(monkeypatch):
    """Make TensorFlow (and both Kerases) look uninstalled: find_spec says None, import raises."""
    for name in ("tensorflow", "tf_keras", "keras"):
        monkeypatch.setitem(sys.modules, name, None)


def test_without_tensorflow_the_framework_check_is_skipped(cli, no_tensorflow):
    result = cli("verify", SINGLE)
    notes = [line for line in result.stderr.splitlines() if line]
    assert len(notes) == 1 and notes[0].startswith("gruinspect: note: TensorFlow is not installed")
    assert "framework  skipped" in result.stdout
    report = _json(cli("verify", SINGLE, "--json"))
    checks = _checks(report["cells"][0])
    assert (checks["roundtrip"]["status"], checks["equations"]["status"], checks["framework"]["status"]) == (
        PASSED, PASSED, SKIPPED)
    assert report["notes"] == [notes[0][len("gruinspect: note: "):]]


def test_without_tensorflow_oracle_framework_exits_2(cli, no_tensorflow):
    result = cli("verify", SINGLE, "--oracle", "framework", exit_code=2)
    assert "TensorFlow is not installed" in result.stderr and "--oracle framework" in result.stderr
    assert result.stdout == ""


def test_without_tensorflow_cudnn_compatible_still_gets_its_equations(cli, no_tensorflow):
    report = _json(cli("verify", SAMPLES / "cudnn_compatible" / "model.ckpt", "--oracle", "framework", "--json"))
    for cell in report["cells"]:
        assert _checks(cell)["framework"]["status"] == PASSED  # numpy equations need no TensorFlow


def test_oracle_numpy_runs_no_framework(cli):
    report = _json(cli("verify", SINGLE, "--oracle", "numpy", "--json"))
    framework = _checks(report["cells"][0])["framework"]
    assert framework["status"] == SKIPPED and "--oracle numpy" in framework["message"]


# ------------------------------------------------------------------ a wrong layout is caught


def _swap_sources(cell, a, b, role):
    """Simulate a layout bug: blocks (a, role) and (b, role) point at each other's slices."""
    first, second = cell.block(a, role), cell.block(b, role)
    cell.blocks = [x._replace(source=second.source) if x is first else x._replace(source=first.source)
                   if x is second else x for x in cell.blocks]


def test_a_misnamed_block_fails_the_numpy_and_framework_checks():
    pytest.importorskip("tensorflow")
    report = verify(str(SINGLE), adjust=lambda cell: _swap_sources(cell, "reset", "update", "input_kernel"))
    cell = report.cells[0]
    assert report.exit_code == 1
    assert cell.check("roundtrip").status == PASSED  # the split is still a bijection...
    assert cell.check("equations").status == FAILED  # ...but it names the slices wrongly
    assert cell.check("framework").status == FAILED
    assert "differs from tf.compat.v1.nn.rnn_cell.GRUCell" in cell.check("framework").message


def test_a_block_that_does_not_cover_its_tensor_fails_roundtrip():
    def drop(cell):
        cell.blocks = [b for b in cell.blocks if (b.gate, b.role) != ("update", "bias")]

    report = verify(str(SINGLE), oracle="numpy", adjust=drop)
    roundtrip = report.cells[0].check("roundtrip")
    assert roundtrip.status == FAILED and "do not cover all of rnn/gru_cell/gates/bias" in roundtrip.message
    assert report.cells[0].check("refuse") is roundtrip  # the former name, kept for one release


def test_a_reset_convention_error_is_caught():
    pytest.importorskip("tensorflow")

    def reset_after(cell):
        cell.reset_after = True

    report = verify(str(SINGLE), adjust=reset_after)
    assert report.cells[0].check("framework").status == FAILED


# ---------------------------------------------------------------------------- exported folders


@pytest.fixture(scope="module")
def export_npy(tmp_path_factory):
    out = tmp_path_factory.mktemp("exports") / "single"
    split(str(SINGLE), str(out))
    return out


@pytest.fixture
def export(export_npy, tmp_path):
    """A fresh, writable copy of the split of tf1_gru_single."""
    import shutil

    out = tmp_path / "blocks"
    shutil.copytree(export_npy, out)
    return out


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def _save_manifest(folder, data):
    (folder / "manifest.json").write_text(json.dumps(data, indent=2))


def _record(data, gate, role):
    return next(a for a in data["cells"][0]["arrays"] if (a["gate"], a["role"]) == (gate, role))


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_clean_export_verifies(cli, export):
    pytest.importorskip("tensorflow")
    report = _json(cli("verify", SINGLE, "--exported", export, "--oracle", "framework", "--json"))
    checks = _checks(report["cells"][0])
    assert list(checks) == ["roundtrip", "equations", "framework", "export-files", "export-blocks", "export-step"]
    # roundtrip's former name, repeated last for one release, with the same result, and counted once
    former = [c for c in report["cells"][0]["checks"] if c["name"] == "refuse"]
    same = {k: v for k, v in checks["roundtrip"].items() if k != "aliases"}
    assert former == [{**same, "name": "refuse", "alias_of": "roundtrip", "deprecated": True}]
    assert checks["roundtrip"]["aliases"] == ["refuse"] and report["summary"]["passed"] == 6 + 3
    assert all(c["status"] == PASSED for c in checks.values())
    assert [c["name"] for c in report["checks"]] == ["export-cells", "export-extra-files", "cells"]
    assert report["exported"] == str(export)


def test_an_npz_export_verifies(cli, tmp_path):
    out = tmp_path / "npz"
    split(str(SAMPLES / "tf1_bidirectional" / "model.ckpt"), str(out), fmt="npz")
    cli("verify", SAMPLES / "tf1_bidirectional" / "model.ckpt", "--exported", out)
    # A member nudged inside the archive, sha256 fixed up: the values give it away.
    data = _manifest(out)
    rec = data["cells"][1]["arrays"][0]
    archive = out / rec["file"]
    with zipfile.ZipFile(archive) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    import io

    values = np.lib.format.read_array(io.BytesIO(members[rec["member"]]))
    values.flat[0] += 1e-3
    buf = io.BytesIO()
    np.lib.format.write_array(buf, values)
    members[rec["member"]] = buf.getvalue()
    with zipfile.ZipFile(archive, "w") as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)
    rec["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    _save_manifest(out, data)
    result = cli("verify", SAMPLES / "tf1_bidirectional" / "model.ckpt", "--exported", out, exit_code=1)
    cell = data["cells"][1]["name"]
    assert f"FAILED {cell}: export-blocks: {rec['gate']} {rec['role']} ({rec['code_name']}, {rec['file']}:" in result.stdout


def test_swapped_gate_files_are_caught_even_with_matching_sha256(cli, export):
    data = _manifest(export)
    a, b = _record(data, "reset", "input_kernel"), _record(data, "update", "input_kernel")
    pa, pb = export / a["file"], export / b["file"]
    ra, rb = pa.read_bytes(), pb.read_bytes()
    pa.write_bytes(rb)
    pb.write_bytes(ra)
    a["sha256"], b["sha256"] = _sha(pa), _sha(pb)
    _save_manifest(export, data)
    result = cli("verify", SINGLE, "--exported", export, "--json", exit_code=1)
    checks = _checks(_json(result)["cells"][0])
    assert checks["export-files"]["status"] == PASSED  # the sha256 cannot see it...
    assert checks["export-blocks"]["status"] == FAILED  # ...the values and the maths can
    assert checks["export-step"]["status"] == FAILED  # the step from the swapped files is another GRU
    failures = checks["export-blocks"]["failures"]
    assert failures[0].startswith("reset input_kernel (W_r, rnn__gru_cell/reset_input_kernel.npy) differs from "
                                  "rnn/gru_cell/gates/kernel[0:3, 0:4]")
    assert "it holds the values of update input_kernel (gates swapped?)" in failures[0]
    assert failures[1].startswith("update input_kernel (W_z,")
    text = cli("verify", SINGLE, "--exported", export, exit_code=1).stdout
    assert "FAILED rnn/gru_cell: export-blocks: reset input_kernel" in text


def test_swapped_gates_fail_the_maths_against_tensorflow(export):
    pytest.importorskip("tensorflow")
    data = _manifest(export)
    a, b = _record(data, "reset", "input_kernel"), _record(data, "update", "input_kernel")
    pa, pb = export / a["file"], export / b["file"]
    ra, rb = pa.read_bytes(), pb.read_bytes()
    pa.write_bytes(rb)
    pb.write_bytes(ra)
    a["sha256"], b["sha256"] = _sha(pa), _sha(pb)
    _save_manifest(export, data)
    step = verify(str(SINGLE), exported=str(export)).cells[0].check("export-step")
    assert step.status == FAILED and "differs from tf.compat.v1.nn.rnn_cell.GRUCell" in step.message


def test_a_bias_nudged_by_1e_3_is_caught(cli, export):
    data = _manifest(export)
    rec = _record(data, "candidate", "bias")
    path = export / rec["file"]
    values = np.load(path)
    values[1] += np.float32(1e-3)
    np.save(path, values)
    rec["sha256"] = _sha(path)
    _save_manifest(export, data)
    result = cli("verify", SINGLE, "--exported", export, exit_code=1)
    assert ("FAILED rnn/gru_cell: export-blocks: candidate bias (b_h, rnn__gru_cell/candidate_bias.npy) differs "
            "from rnn/gru_cell/candidate/bias[0:4] in 1 of 4 values") in result.stdout
    assert "FAILED rnn/gru_cell: export-step: the per-gate GRU from the exported files differs" in result.stdout


def test_an_edited_file_with_the_old_sha256_is_caught(cli, export):
    data = _manifest(export)
    path = export / _record(data, "update", "recurrent_kernel")["file"]
    values = np.load(path)
    np.save(path, values * 2)
    result = cli("verify", SINGLE, "--exported", export, exit_code=1)
    assert ("export-files: update recurrent_kernel (U_z): the sha256 of rnn__gru_cell/update_recurrent_kernel.npy "
            "does not match the manifest") in result.stdout


def test_an_alias_file_out_of_step_is_caught(cli, tmp_path):
    out = tmp_path / "named"
    split(str(SINGLE), str(out), names=True)
    cli("verify", SINGLE, "--exported", out, "--oracle", "numpy")
    alias = out / "rnn__gru_cell" / "W_h.npy"
    alias.unlink()  # split hard-links aliases when it can: replace, do not edit in place
    np.save(alias, np.zeros((3, 4), np.float32))
    result = cli("verify", SINGLE, "--exported", out, "--oracle", "numpy", exit_code=1)
    assert ("candidate input_kernel (W_h): its alias file rnn__gru_cell/W_h.npy differs from "
            "rnn__gru_cell/candidate_input_kernel.npy") in result.stdout


def test_a_missing_file_is_caught(cli, export):
    (export / "rnn__gru_cell" / "update_bias.npy").unlink()
    result = cli("verify", SINGLE, "--exported", export, "--json", exit_code=1)
    checks = _checks(_json(result)["cells"][0])
    assert checks["export-files"]["message"] == "update bias (b_z): rnn__gru_cell/update_bias.npy is missing"
    assert checks["export-step"]["status"] == FAILED and "update bias" in checks["export-step"]["message"]


def test_an_extra_file_is_caught(cli, export):
    (export / "rnn__gru_cell" / "stray.npy").write_bytes(b"")
    result = cli("verify", SINGLE, "--exported", export, exit_code=1)
    assert "FAILED export-extra-files: 1 file not in the manifest: rnn__gru_cell/stray.npy" in result.stdout


def test_a_wrong_dtype_is_caught(cli, export):
    data = _manifest(export)
    rec = _record(data, "reset", "bias")
    path = export / rec["file"]
    np.save(path, np.load(path).astype(np.float64))  # same values, wrong dtype
    rec["sha256"] = _sha(path)
    _save_manifest(export, data)
    result = cli("verify", SINGLE, "--exported", export, exit_code=1)
    assert ("FAILED rnn/gru_cell: export-files: reset bias (b_r): rnn__gru_cell/reset_bias.npy holds float64, "
            "expected float32") in result.stdout


def test_a_manifest_entry_that_lies_about_its_source_is_caught(cli, export):
    data = _manifest(export)
    _record(data, "reset", "bias")["source"]["slice"] = "[4:8]"
    _save_manifest(export, data)
    result = cli("verify", SINGLE, "--exported", export, exit_code=1)
    assert ("reset bias (b_r): the manifest says it came from rnn/gru_cell/gates/bias[4:8], the source cell has "
            "rnn/gru_cell/gates/bias[0:4]") in result.stdout


def test_an_export_of_another_file_is_caught(cli, export):
    result = cli("verify", SAMPLES / "tf1_multi_rnn" / "model.ckpt", "--exported", export, exit_code=1)
    assert "FAILED export-cells: the manifest lists cell rnn/gru_cell, which the source does not hold" in result.stdout


def test_an_export_path_outside_the_folder_is_refused(cli, export):
    data = _manifest(export)
    _record(data, "reset", "bias")["file"] = "../../etc/passwd"
    _save_manifest(export, data)
    result = cli("verify", SINGLE, "--exported", export, exit_code=1)
    assert "reset bias (b_r): its file '../../etc/passwd' is not a path inside the export" in result.stdout


# ---------------------------------------------------------------------------------------- JUnit


def test_junit_has_one_testcase_per_cell_and_check(cli, export, tmp_path):
    (export / "rnn__gru_cell" / "update_bias.npy").unlink()
    junit = tmp_path / "reports" / "verify.xml"
    cli("verify", SINGLE, "--exported", export, "--oracle", "numpy", "--junit", junit, exit_code=1)
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == str(SINGLE)
    cases = [(c.get("classname"), c.get("name")) for c in suite.findall("testcase")]
    assert cases == [(str(SINGLE), "export-cells"), (str(SINGLE), "export-extra-files"), (str(SINGLE), "cells")] + [
        ("rnn/gru_cell", name) for name in
        ("roundtrip", "equations", "framework", "export-files", "export-blocks", "export-step")]
    failed = {c.get("name"): c.find("failure") for c in suite.findall("testcase") if c.find("failure") is not None}
    assert set(failed) == {"export-files", "export-blocks", "export-step"}
    assert "update bias (b_z): rnn__gru_cell/update_bias.npy is missing" in failed["export-files"].get("message")
    skipped = [c.get("name") for c in suite.findall("testcase") if c.find("skipped") is not None]
    assert skipped == ["framework"]
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("9", "3", "1")


def test_junit_is_written_for_an_empty_file_too(cli, tmp_path):
    junit = tmp_path / "empty.xml"
    cli("verify", NO_GRU, "--junit", junit, exit_code=1)
    (case,) = ET.parse(junit).getroot().iter("testcase")
    assert case.get("name") == "cells" and "No GRU cell found" in case.find("failure").get("message")


# ---------------------------------------------------------------------------------------- Keras
# Keras cells built in memory with the layer records a Keras reader produces, so each oracle is
# exercised whatever sample files exist; the Keras samples themselves go through the parametrized
# test at the top.


def _keras_store(generation: str, *, recurrent_activation="hard_sigmoid", reset_after=False, use_bias=True,
                 input_size=3, units=4, dtype=np.float32, seed=0):
    from gruinspect.store import LayerInfo, MemoryStore

    rng = np.random.default_rng(seed)
    tensors = {"g/kernel": rng.normal(size=(input_size, 3 * units)).astype(dtype),
               "g/recurrent_kernel": rng.normal(size=(units, 3 * units)).astype(dtype)}
    if use_bias:
        tensors["g/bias"] = rng.normal(size=(2, 3 * units) if reset_after else (3 * units,)).astype(dtype)
    config = {"units": units, "activation": "tanh", "recurrent_activation": recurrent_activation,
              "reset_after": reset_after, "use_bias": use_bias, "keras_generation": generation,
              "keras_version": {"keras3": "3.15.1", "keras2": "2.21.0"}[generation]}
    return MemoryStore(tensors, layers=[LayerInfo("g", "GRU", config, list(tensors))])


@pytest.mark.parametrize("generation, oracle", [("keras3", "keras.layers.GRUCell"), ("keras2", "tf_keras GRUCell")])
@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("use_bias", [True, False])
def test_keras_cells_verify_against_their_own_generation(generation, oracle, reset_after, use_bias):
    pytest.importorskip("tensorflow")
    from gruinspect.verify import verify_store

    report = verify_store(_keras_store(generation, reset_after=reset_after, use_bias=use_bias), oracle="framework")
    (cell,) = report.cells
    assert cell.recurrent_activation == f"hard_sigmoid_{generation}"
    assert [k.status for k in cell.checks] == [PASSED] * 3, [k.message for k in cell.checks]
    assert cell.check("framework").oracle.startswith(oracle)


@pytest.mark.parametrize("generation, wrong", [("keras3", "hard_sigmoid_keras2"), ("keras2", "hard_sigmoid_keras3")])
def test_the_other_generations_hard_sigmoid_is_caught(generation, wrong):
    """Keras 2's hard_sigmoid is clip(0.2x + 0.5), Keras 3's clip(x/6 + 0.5) (docs/keras-files.md): a
    layout that mapped "hard_sigmoid" to the wrong one passes every numpy check, and the framework
    cell of the file's own generation catches it."""
    pytest.importorskip("tensorflow")
    from gruinspect.verify import verify_store

    def confuse(cell):
        cell.recurrent_activation = wrong

    report = verify_store(_keras_store(generation), adjust=confuse)
    (cell,) = report.cells
    assert report.exit_code == 1
    assert cell.check("equations").status == PASSED  # the numpy side cannot know which formula is right
    framework = cell.check("framework")
    assert framework.status == FAILED and framework.max_abs > 1e-2
    assert "differs from " + ("keras.layers.GRUCell" if generation == "keras3" else "tf_keras GRUCell") in \
        framework.message


def test_weights_only_keras_cells_say_their_activations_are_assumed():
    pytest.importorskip("tensorflow")
    from gruinspect.store import LayerInfo, MemoryStore
    from gruinspect.verify import verify_store

    rng = np.random.default_rng(3)
    tensors = {"gru/gru_cell/kernel:0": rng.normal(size=(3, 12)).astype(np.float32),
               "gru/gru_cell/recurrent_kernel:0": rng.normal(size=(4, 12)).astype(np.float32),
               "gru/gru_cell/bias:0": rng.normal(size=(2, 12)).astype(np.float32)}
    report = verify_store(MemoryStore(tensors, layers=[LayerInfo("gru", "", {}, list(tensors))]))
    (cell,) = report.cells
    assert cell.activations_assumed and (cell.recurrent_activation, cell.activation) == ("sigmoid", "tanh")
    assert "activations unknown (the file does not store them); assumed sigmoid/tanh" in cell.notes
    assert report.ok


def _cudnn_store(seed=0, input_size=3, units=4):
    from gruinspect.store import LayerInfo, MemoryStore

    rng = np.random.default_rng(seed)
    tensors = {"cudnn/kernel:0": rng.normal(size=(input_size, 3 * units)).astype(np.float32),
               "cudnn/recurrent_kernel:0": rng.normal(size=(units, 3 * units)).astype(np.float32),
               "cudnn/bias:0": rng.normal(size=(6 * units,)).astype(np.float32)}
    config = {"units": units, "keras_generation": "keras2", "keras_version": "2.2.4"}
    return MemoryStore(tensors, layers=[LayerInfo("cudnn", "CuDNNGRU", config, list(tensors))])


def test_cudnn_gru_is_checked_through_tf_keras_own_converter():
    pytest.importorskip("tensorflow")
    from gruinspect.verify import verify_store

    report = verify_store(_cudnn_store(), oracle="framework")
    (cell,) = report.cells
    assert cell.cell.layout == "keras-cudnn-gru"
    assert [k.status for k in cell.checks] == [PASSED] * 3, [k.message for k in cell.checks]
    framework = cell.check("framework")
    assert "_convert_rnn_weights" in framework.oracle
    assert any("cuDNN cannot run on this machine" in note for note in cell.notes)

    def forget_transform(cell):  # read the cuDNN kernel blocks as if they were Keras-ordered
        cell.blocks = [b._replace(source=b.source._replace(transform=None)) if b.source.transform else b
                       for b in cell.blocks]

    broken = verify_store(_cudnn_store(), adjust=forget_transform).cells[0]
    assert broken.check("framework").status == FAILED and broken.check("equations").status == FAILED


def test_keras1_nine_arrays_are_checked_through_tf_keras_own_converter():
    pytest.importorskip("tensorflow")
    from gruinspect.store import LayerInfo, MemoryStore
    from gruinspect.verify import verify_store

    rng = np.random.default_rng(1)
    tensors = {}
    for gate in "zrh":
        tensors[f"gru_1/gru_1_W_{gate}:0"] = rng.normal(size=(3, 4)).astype(np.float32)
        tensors[f"gru_1/gru_1_U_{gate}:0"] = rng.normal(size=(4, 4)).astype(np.float32)
        tensors[f"gru_1/gru_1_b_{gate}:0"] = rng.normal(size=(4,)).astype(np.float32)
    config = {"name": "gru_1", "output_dim": 4, "activation": "tanh", "inner_activation": "hard_sigmoid",
              "keras_generation": "keras1"}
    store = MemoryStore(tensors, layers=[LayerInfo("gru_1", "GRU", config, list(tensors))])
    report = verify_store(store, oracle="framework")
    (cell,) = report.cells
    assert (cell.cell.layout, cell.recurrent_activation) == ("keras1-gru", "hard_sigmoid_keras2")
    assert [k.status for k in cell.checks] == [PASSED] * 3, [k.message for k in cell.checks]
    assert "Keras 1 weight conversion" in cell.check("framework").oracle


def _hard_sigmoid_samples():
    out = []
    for entry in manifest():
        for cell in entry["cells"]:
            if str(cell.get("recurrent_activation", "")).startswith("hard_sigmoid") and \
                    cell.get("config_source") == "file":
                out.append(pytest.param(entry, cell["name"], id=f"{entry['name']}:{cell['name']}"))
    return out


@pytest.mark.parametrize("entry, cell_name", _hard_sigmoid_samples())
def test_hard_sigmoid_of_the_wrong_generation_is_caught_on_samples(entry, cell_name):
    pytest.importorskip("tensorflow")
    flip = {"hard_sigmoid_keras2": "hard_sigmoid_keras3", "hard_sigmoid_keras3": "hard_sigmoid_keras2"}

    def confuse(cell):
        cell.recurrent_activation = flip[cell.recurrent_activation]

    import fnmatch

    pattern = "".join(f"[{ch}]" if ch in "*?[" else ch for ch in cell_name)
    assert fnmatch.fnmatchcase(cell_name, pattern)
    right = verify(sample_path(entry), patterns=[pattern], oracle="framework")
    assert right.ok, right.failures()
    wrong = verify(sample_path(entry), patterns=[pattern], oracle="framework", adjust=confuse)
    (cell,) = [c for c in wrong.cells if c.cell.name == cell_name]
    assert cell.check("equations").status == PASSED and cell.check("framework").status == FAILED


# ------------------------------------------------------------------------------ NaN and Inf weights


def test_nan_weights_are_never_verified(cli, tmp_path):
    """Every output NaN compared with NaN proves nothing: verify names the blocks and fails."""
    from gruinspect.layouts import find_cells
    from gruinspect.store import MemoryStore
    from gruinspect.verify import verify_store

    rng = np.random.default_rng(0)
    gates = rng.normal(size=(7, 8)).astype(np.float32)
    gates[0, 1] = np.nan  # reset input kernel
    store = MemoryStore({"gru/gates/kernel": gates, "gru/gates/bias": np.zeros(8, np.float32),
                         "gru/candidate/kernel": rng.normal(size=(7, 4)).astype(np.float32),
                         "gru/candidate/bias": np.full(4, np.inf, np.float32)})
    assert find_cells(store).cells
    report = verify_store(store, oracle="numpy")
    assert report.exit_code == 1
    cell = report.cells[0]
    finite = cell.check("finite")
    assert finite.status == FAILED
    assert "reset input_kernel (W_r): 1 of 12 values NaN or Inf" in finite.message
    assert "candidate bias (b_h): 4 of 4 values NaN or Inf" in finite.message
    assert cell.check("equations").status == FAILED  # NaN outputs never "match"
